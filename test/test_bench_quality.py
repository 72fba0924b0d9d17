"""`planllm bench quality` and `planllm bench openvocab` end to end in quick mode: real training
runs of two variants (two at once, each in its own process; shared by both benchmarks through
the work directory), real scoring, the simple planners and the exact ceiling, and the score
caches that a rerun reuses or refreshes."""
from __future__ import annotations

import argparse
import itertools
import json
import re
from pathlib import Path

import numpy as np
import pytest

from planllm_ros.cli import main
from planllm_ros.export.model_card import describe_training, read_training_record
from training.benchmarks.quality import SCORES_FILE, ceiling, planned_runs
from training.benchmarks.runs import in_processes
from training.cli.bench import add_arguments
from training.tabletop.baselines import best_sequences, window_distribution
from training.tabletop.dataset import windows
from training.tabletop.tasks import SEEN_TASKS, TASKS

pytestmark = pytest.mark.slow
CELL = re.compile(r"^(\d+\.\d\d) ± (\d+\.\d\d)$")
INTERVAL = re.compile(r"([+-]\d+\.\d\d)(?: SR)?,? \(?95 % CI \[([+-]\d+\.\d\d), ([+-]\d+\.\d\d)\]")
FULL, PLAIN, NO_LLM = "Full (fused, progressive)", "Full (fused, progressive), plain Viterbi", "w/o LLM"
FIRST_LAST = "Simple: first/last step + most frequent sequence"
NEAREST = "Simple: nearest neighbour over [start, goal, goal - start]"
CEILING = "Exact ceiling: expected score of the optimal planner reading the true states"
OPTIMAL = "The same optimal planner on these samples (reads the true states)"
SEED = 1  # not the data seed's default, so the run shows that the seed reached it


def rows(markdown: str, caption_part: str) -> dict[str, list[str]]:
    """{first cell: other cells} of the table whose caption contains `caption_part`."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("**") and caption_part in line)
    out = {}
    for line in lines[start + 4:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        out[cells[0]] = cells[1:]
    return out


def check_cell(cell: str) -> float:
    match = CELL.match(cell)
    assert match, cell
    mean = float(match.group(1))
    assert 0.0 <= mean <= 100.0 and float(match.group(2)) == 0.0  # one seed: std 0
    return mean


def quality(work: Path, out: Path, *extra: str) -> str:
    assert main(["bench", "quality", "--quick", "--seeds", str(SEED), "--out", str(out), "--work-dir", str(work / "runs"),
                 *extra]) == 0
    return (out / "quality-quick.md").read_text()


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bench")


@pytest.fixture(scope="module")
def report(work: Path) -> str:
    return quality(work, work / "results", "--variants", "full", "no-llm", "--jobs", "2")


def run_dir(work: Path, variant: str) -> Path:
    return work / "runs" / "quick" / "tabletop-T3" / f"{variant}-seed{SEED}"


def test_a_seed_sets_the_training_and_the_data_seed() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["quality", "--quick", "--variants", "full", "--seeds", "4", "7"])
    args.datasets, args.horizons = ["tabletop"], [3]
    runs = planned_runs(args)
    assert [(r.seed, r.config.train.seed, r.config.data.seed) for r in runs] == [(4, 4, 4), (7, 7, 7)]
    # so two seeds are scored on different test samples
    plans = [[eps[e].plan[k:k + 3] for e, k in picked] for eps, picked in (windows("test", 3, s, 24) for s in (4, 7))]
    assert plans[0] != plans[1]


def test_quality_quick(work: Path, report: str) -> None:
    assert "- command: `planllm bench quality --quick" in report and f"- seeds: {SEED}" in report
    assert "train.seed=S and data.seed=S" in report and "not for choosing designs" in report
    table = rows(report, "tabletop, T=3: test split")
    assert list(table) == [FULL, PLAIN, NO_LLM, FIRST_LAST, NEAREST, OPTIMAL, CEILING]
    for name in (FULL, PLAIN, NO_LLM, FIRST_LAST, NEAREST, OPTIMAL):
        cells = table[name]
        assert len(cells) == 9
        sr, macc, *_ = [check_cell(c) for c in cells[:4]]
        assert sr <= macc  # a fully right sequence has every position right: SR <= mAcc
        assert cells[4] == f"{sr:.2f}"  # one seed: its SR is the mean
        check_cell(cells[5])  # val SR
    assert table[FULL][6] != "—" and table[PLAIN][6] == "0" and table[NO_LLM][6] == "—"
    assert table[FULL][7].endswith("2 at once") and table[NO_LLM][7].endswith("2 at once")
    assert table[CEILING][:4] == [f"{ceiling(3)[m]:.2f} (expected)" for m in ("sr", "macc", "miou", "miou_set")]
    # the optimal planner on this seed's 24 test samples: computed here from the sampler, not from the table
    best = best_sequences(window_distribution([TASKS[i] for i in SEEN_TASKS], 3))
    eps, picked = windows("test", 3, SEED, 24)
    hits = [best[tuple(tuple(sorted(eps[e].states[j].items())) for j in (k, k + 3))] == eps[e].plan[k:k + 3]
            for e, k in picked]
    assert table[OPTIMAL][4] == f"{100 * np.mean(hits):.2f}" and table[OPTIMAL][7] == "no training"
    # each trained row names the commit its runs were trained at, as their model folders record it
    for name, variant in ((FULL, "full"), (PLAIN, "full"), (NO_LLM, "no-llm")):
        record = read_training_record(run_dir(work, variant) / "model")
        assert record["commit"] and table[name][8] == describe_training(record)
    assert table[FIRST_LAST][8] == table[OPTIMAL][8] == "—"
    assert (work / "results" / "quality-quick.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    for split, sr_column in (("val", 5), ("test", 0)):
        verdicts = list(rows(report, f"tabletop, T=3: verdicts on {split} SR"))
        assert len(verdicts) == 3 and all(FULL in v for v in verdicts)
        assert NO_LLM in verdicts[0] and PLAIN in verdicts[1] and "the simple planner with the best val SR" in verdicts[2]
        best_simple = FIRST_LAST if FIRST_LAST in verdicts[2] else NEAREST
        for line, other in zip(verdicts, (NO_LLM, PLAIN, best_simple)):
            match = INTERVAL.search(line)
            assert match, line
            mean, low, high = (float(v) for v in match.groups())
            assert low <= mean <= high
            assert ("not distinguishable" in line) == (low <= 0.0 <= high)
            # one seed: the verdict's mean difference is the difference of the split's own SR cells
            difference = check_cell(table[FULL][sr_column]) - check_cell(table[other][sr_column])
            difference *= -1 if line.startswith(f"{other} beats") else 1  # the winner is named first
            assert abs(mean - difference) <= 0.011, (split, line)

    for variant in ("full", "no-llm"):
        trained = json.loads((run_dir(work, variant) / "model" / "train_config.json").read_text())
        assert trained["train"]["seed"] == SEED and trained["data"]["seed"] == SEED
        record = json.loads((run_dir(work, variant) / "bench-train.json").read_text())
        assert record["jobs"] == 2 and record["threads"] == 1 and not record["resumed"]
        assert record["wall_s"] > 0 and record["cpu_s"] > 0
    saved = json.loads((run_dir(work, "full") / SCORES_FILE).read_text())
    success = saved["scores"]["deployed"]["test"]["success"]
    assert len(success) == 24 and set(success) <= {0, 1}
    # every sample's episode, as the split sampler drew them: what the verdicts' bootstrap resamples
    assert saved["scores"]["deployed"]["test"]["episodes"] == [f"tabletop-test-s{SEED}-e{e}" for e, _ in picked]
    assert f"{100 * np.mean(success):.2f}" == table[FULL][4]


def _tamper(path: Path, edit) -> None:
    saved = json.loads(path.read_text())
    edit(saved)
    path.write_text(json.dumps(saved))


def _all_right(scores: dict) -> None:
    """Mark cached test scores: every plan right (what no quick run gets)."""
    scores["test"]["metrics"]["sr"] = 100.0
    scores["test"]["success"] = [1] * len(scores["test"]["success"])


def test_cached_scores_reused_while_weights_data_and_code_are_unchanged(work: Path, report: str) -> None:
    scores, baselines = run_dir(work, "full") / SCORES_FILE, run_dir(work, "full").parent / f"baselines-seed{SEED}.json"
    _tamper(scores, lambda s: _all_right(s["scores"]["deployed"]))
    _tamper(baselines, lambda s: _all_right(s["scores"]["first-last"]))
    again = work / "again"
    table = rows(quality(work, again, "--variants", "full"), "test split")
    assert table[FULL][0] == "100.00 ± 0.00" and table[FIRST_LAST][0] == "100.00 ± 0.00"  # both caches were reused

    # the weights changed (as if retrained) and the code that scored the simple planners: both scored afresh
    _tamper(scores, lambda s: s["key"].update(weights_sha256="0" * 64))
    _tamper(baselines, lambda s: s["key"].update(code_version="0" * 40 + "+" + "0" * 16))
    table = rows(quality(work, again, "--variants", "full"), "test split")
    assert table[FULL][0] != "100.00 ± 0.00" and table[FIRST_LAST][0] != "100.00 ± 0.00"
    assert json.loads(baselines.read_text())["scores"]["first-last"]["test"]["metrics"]["sr"] < 100.0

    # scored by other code: scored afresh
    _tamper(scores, lambda s: (_all_right(s["scores"]["deployed"]),
                               s["key"].update(code_version="0" * 40 + "+" + "0" * 16)))
    table = rows(quality(work, again, "--variants", "full"), "test split")
    assert table[FULL][0] != "100.00 ± 0.00"
    assert json.loads(scores.read_text())["scores"]["deployed"]["test"]["metrics"]["sr"] < 100.0


def test_score_only_trains_nothing_and_says_what_it_left_out(work: Path, report: str) -> None:
    text = quality(work, work / "score-only", "--variants", "full", "no-mim", "--score-only")
    assert not run_dir(work, "no-mim").exists()  # nothing was trained
    assert list(rows(text, "test split")) == [FULL, PLAIN, FIRST_LAST, NEAREST, OPTIMAL, CEILING]
    assert "not run here (--score-only: not every seed trained under the work directory): tabletop T=3: no-mim" in text
    assert "this invocation trained no run (--score-only)" in text and "runs trained one at a time" not in text
    assert rows(text, "test split")[FULL] == rows(report, "test split")[FULL]  # the same run, the same scores


def test_a_failing_run_in_a_process_surfaces() -> None:
    with pytest.raises(ValueError, match="invalid literal"):
        in_processes(2, [(int, [("x",)], "a failing item")])


def test_openvocab_quick_reuses_the_runs(work: Path, report: str) -> None:
    """The open-vocabulary benchmark scores the quality benchmark's own run (not retrained) on its
    own test samples: its closed-set row repeats the quality table's; ratios, intervals and the
    paraphrase sets' measured difficulty are what they say."""
    from training.benchmarks.openvocab import ROW_TITLES, ROWS
    from training.tabletop.paraphrases import label_words_kept

    model = run_dir(work, "full") / "model" / "model.safetensors"
    trained_at = model.stat().st_mtime_ns
    out = work / "results"
    assert main(["bench", "openvocab", "--quick", "--seeds", str(SEED), "--out", str(out),
                 "--work-dir", str(work / "runs")]) == 0
    assert model.stat().st_mtime_ns == trained_at  # the quality run's model was reused, not retrained
    text = (out / "openvocab-quick.md").read_text()
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if "test episodes and novel tasks" in line)
    table = [[c.strip() for c in line.strip("|").split("|")] for line in
             itertools.takewhile(lambda line: line.startswith("|"), lines[start + 4:])]
    methods = [ROW_TITLES[r] for r in ROWS]
    assert [row[:2] for row in table] == [
        ["closed set (test)", ROW_TITLES["closed"]], *[["paraphrased labels (test)", m] for m in methods],
        ["novel tasks", ROW_TITLES["closed"]], *[["novel tasks + paraphrased labels", m] for m in methods]]
    for row in table:
        [check_cell(c) for c in row[2:5]]  # SR, mAcc, mIoU (set)
        assert row[5] == "n/a" or float(row[5]) >= 0
    # the very run and samples of the quality table: the same closed-set test scores, the same mAcc
    quality_full = rows(report, "tabletop, T=3: test split")[FULL]
    assert table[0][2:4] == quality_full[:2]
    methods_rows = {row[1]: row for row in table if row[0] == "paraphrased labels (test)"}
    for method, row in methods_rows.items():  # each method's ratio is its SR over the closed-set SR
        sr, closed = float(row[2].split(" ")[0]), float(table[0][2].split(" ")[0])
        assert row[5] == ("n/a" if closed == 0 else f"{sr / closed:.2f}"), method
    verdicts = rows(text, "Targets and method comparisons")
    assert len(verdicts) >= 3 and all("95 % CI" in v[0] for v in verdicts.values())
    for line in (v[0] for v in verdicts.values()):
        match = INTERVAL.search(line)
        assert match, line
        mean, low, high = (float(v) for v in match.groups())
        assert low <= mean <= high
    (tuned,) = rows(text, "joint settings chosen on paraphrase-val").items()
    assert tuned[0] == str(SEED) and tuned[1][0] in ("assign", "soft")
    assert all(0 <= float(x) <= 100 for x in tuned[1][-1].split(" / "))
    (diagnostics,) = rows(text, "Why novel tasks fail").items()
    assert diagnostics[0] == str(SEED) and diagnostics[1][3] == quality_full[1].split(" ")[0]  # test mAcc, deployed
    assert f"keep {100 * label_words_kept('val'):.0f} % of the training labels' content words against " \
           f"{100 * label_words_kept('test'):.0f} %" in text  # how much easier paraphrase-val is, measured
    assert (out / "openvocab-quick.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_cell_leaves_resumed_runs_out_of_the_mean() -> None:
    from training.benchmarks.quality import Row, SeedResult, _train_cell

    def seed(wall: float, resumed: bool) -> SeedResult:
        return SeedResult(0, {}, 0.0, {}, {"wall_s": wall, "cpu_s": wall, "jobs": 2, "resumed": resumed})

    assert _train_cell(Row("a", "model", [seed(1000, False), seed(60, True), seed(1200, False)])) == \
        "1100 (CPU 1100), 2 at once; 1 resumed run(s) not counted"
    assert _train_cell(Row("b", "model", [seed(60, True)])) == \
        "60 (CPU 60), 2 at once; every run resumed: seconds after the resume only"
