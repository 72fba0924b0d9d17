"""`planllm bench quality`: the table the project's quality claims rest on.

For every dataset x horizon, at the preset's operating point (tabletop-tiny: 4800 training and
1000 val / test samples; crosstask-tiny: every window), one table holds:

- the full model and each ablation of the paper's Tables 4-6 (training.benchmarks.runs VARIANTS),
  one training run per seed, scored on test as deployed (Viterbi with the train transition
  matrix, its best plans re-ranked by the LLM at the weight the run chose on val), and, for
  models that can re-rank, the same runs' plain Viterbi (decoding.llm_weight = 0, from the
  same candidates);
- tabletop only: the simple planners of training.tabletop.baselines, fit on the same seed's
  training split and scored on the same test samples; the exact ceiling, the optimal planner's
  expected score (no data enters it, so it is the same for every seed); and that very planner
  scored on each seed's samples, which a finite draw puts above or below the expectation.

A seed S sets train.seed=S and data.seed=S, so seeds differ in training data and test samples.
Beside the test metrics every row shows its val SR, what development compares. Verdicts pair
systems per sample within each seed, on val (what a design is kept or dropped on) and on test:
the full model vs each ablation, vs its own plain Viterbi and vs the simple planner with the
best val SR, each with a paired bootstrap 95 % interval that resamples seeds and, within a
seed, episodes (every window of an episode is a sample, and they are correlated:
training.benchmarks.stats). Per-sample success and episode ids are kept beside each run
(bench-quality.json: keyed by the training config, the weights' SHA-256 and the code version) and beside the runs
for the simple planners (keyed by the data config and the code version), so a rerun re-scores
only what changed. Test is reported once per final configuration: this benchmark is not a tool
for choosing designs, which are compared on val (docs/evaluation.md). --jobs N trains N runs at
once, each in its own process with one torch thread; scoring runs in this process.

CrossTask runs on simulated features (training.datasets.simulate) unless
--crosstask-features names real ones: simulated numbers exercise the real-annotation path and
do not compare with published results.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader

from planllm_ros.export.model_card import describe_training, read_training_record
from planllm_ros.model.folder import MODEL_DIR, WEIGHTS_FILE
from planllm_ros.model.pipeline import plan_batch
from training.benchmarks.report import REPO, Table, code_version, mean_std, write_report
from training.benchmarks.runs import (QUICK_OVERRIDES, VARIANT_TITLES, VARIANTS, add_set_argument, check_config,
                                 in_processes, is_trained, run_config, run_directory, seed_overrides, train_record,
                                 train_timed)
from training.benchmarks.stats import RESAMPLES, per_sample_success, verdict
from training.datasets.base import ProcedureDataset, collate
from training.evaluation.evaluate import METRIC_TITLES, METRICS, EvalModel, load_for_eval
from training.evaluation.metrics import procedure_metrics
from training.train.config import DataConfig, RunConfig
from training.train.splits import load_split

DATASETS = ("tabletop", "crosstask")
SCORES_FILE = "bench-quality.json"  # a run's scores and per-sample success, beside the run
DEFAULT_CROSSTASK_ROOT = REPO.parent / "shared" / "data" / "crosstask"
PLAIN = ", plain Viterbi"  # title suffix of a re-ranking model's weight-0 row
CEILING_TITLE = "Exact ceiling: expected score of the optimal planner reading the true states"
OPTIMAL_TITLE = "The same optimal planner on these samples (reads the true states)"


def _simple_planners() -> dict[str, tuple[str, Callable]]:
    """{key: (title, fit)}: fit(train split) gives the planner, a function from a split to its plans."""
    from training.tabletop.baselines import fit_first_last_frequent, nearest_neighbour

    return {"first-last": ("Simple: first/last step + most frequent sequence", fit_first_last_frequent),
            "nearest": ("Simple: nearest neighbour over [start, goal, goal - start]",
                        lambda train: functools.partial(nearest_neighbour, train))}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description, parser.formatter_class = __doc__, argparse.RawDescriptionHelpFormatter
    add_set_argument(parser)
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=None,
                        help="default: tabletop and crosstask (quick: tabletop)")
    parser.add_argument("--horizons", nargs="+", type=int, default=None, help="default: 3 4 (quick: 3)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=None,
                        help="each seed S sets train.seed=S and data.seed=S (default: 0 1 2; quick: 0)")
    parser.add_argument("--jobs", type=_positive, default=1,
                        help="training runs at once, each its own process with one torch thread (default 1: in "
                             "this process); scoring runs in this process")
    parser.add_argument("--work-dir", type=Path, default=Path("runs/bench"),
                        help="where the training runs go (finished runs are reused, interrupted ones resumed)")
    parser.add_argument("--crosstask-root", type=Path, default=DEFAULT_CROSSTASK_ROOT,
                        help="CrossTask annotation release (the real files)")
    parser.add_argument("--crosstask-features", type=Path, default=None,
                        help="CrossTask feature files (default: simulated into WORK_DIR/crosstask-simulated)")
    parser.add_argument("--score-only", action="store_true",
                        help="train nothing: score the runs already trained under --work-dir (on another machine, "
                             "or by an earlier invocation); a variant is left out of a table unless all its seeds "
                             "are trained, and the report lists what was left out")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def fill_defaults(args: argparse.Namespace) -> None:
    """Quick mode: tabletop, T=3, one seed, CI-sized runs; full mode: both datasets, T=3 and 4,
    three seeds, the presets' sizes."""
    args.datasets = args.datasets or (["tabletop"] if args.quick else list(DATASETS))
    args.horizons = args.horizons or ([3] if args.quick else [3, 4])
    args.seeds = args.seeds if args.seeds is not None else ([0] if args.quick else [0, 1, 2])


@dataclass(frozen=True)
class Run:
    dataset: str
    horizon: int
    variant: str
    seed: int
    config: RunConfig
    run_dir: Path


def _crosstask_overrides(args: argparse.Namespace) -> list[str]:
    features = args.crosstask_features
    if features is None:
        from training.datasets.features import SIMULATED_MARKER
        from training.datasets.simulate import simulate

        features = args.work_dir / "crosstask-simulated"
        if not (features / SIMULATED_MARKER).is_file():
            simulate("crosstask", args.crosstask_root, features, progress=False)
    return [f"data.root={args.crosstask_root.resolve()}", f"data.features_dir={Path(features).resolve()}"]


def planned_runs(args: argparse.Namespace) -> list[Run]:
    """Every training run of the table: dataset x horizon x variant x seed."""
    runs = []
    for dataset in args.datasets:
        # quick CrossTask keeps its real windows (no sample cap exists for benchmarks) but trains one epoch per stage
        quick = [o for o in QUICK_OVERRIDES if dataset == "tabletop" or o.startswith("train.")] if args.quick else []
        base = [*quick, *args.overrides]
        if dataset == "crosstask":
            base += _crosstask_overrides(args)
        for horizon in args.horizons:
            for variant in args.variants:
                for seed in args.seeds:
                    config = run_config(f"{dataset}-tiny",
                                        [*base, f"data.horizon={horizon}", *seed_overrides(seed), *VARIANTS[variant]])
                    runs.append(Run(dataset, horizon, variant, seed, config,
                                    run_directory(args.work_dir, args.quick, dataset, horizon, variant, seed)))
    return runs


# ------------------------------------------------------------------ data
def baseline_splits(data: DataConfig) -> dict[str, ProcedureDataset]:
    """The tabletop train / val / test splits of `data` (the same samples the models see) with
    the simple planners' features: training.tabletop.baselines' own, the frozen backbone's last
    block, which that module average-pools to one vector per image."""
    from training.tabletop.dataset import load_tabletop

    sizes = {"train": data.train_samples, "val": data.eval_samples, "test": data.eval_samples}
    return {split: load_tabletop(split, data.horizon, data.seed, size, cache_dir=data.cache_dir)
            for split, size in sizes.items()}


def prepare_data(config: RunConfig) -> None:
    """Load (so build the feature caches of) every split a run and its scoring read, before
    several runs that share them start at once."""
    for split in ("train", "val", "test"):
        load_split(config.data, split, config.visual())
    if config.data.dataset == "tabletop":
        baseline_splits(config.data)


# ------------------------------------------------------------------ scoring
def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array, dtype=np.int64).tobytes()).hexdigest()


def split_scores(pred: np.ndarray, gt: np.ndarray, episodes: list[str]) -> dict:
    """Metrics (percent), per-sample success (1: the whole plan right), each sample's episode
    (what the bootstrap resamples) and the ground truth's digest, which pairs two systems' samples."""
    if len(episodes) != len(gt):
        raise ValueError(f"{len(episodes)} episode ids for {len(gt)} samples")
    return {"metrics": {k: float(v) for k, v in procedure_metrics(pred, gt).items()},
            "success": [int(v > 0) for v in per_sample_success(pred, gt)], "episodes": list(episodes),
            "gt_sha256": _digest(gt)}


def _ground_truth(dataset: ProcedureDataset) -> np.ndarray:
    return np.stack(dataset.sequences()).astype(np.int64)


def episode_ids(dataset: ProcedureDataset) -> list[str]:
    """The episode (tabletop episode, benchmark video) of every sample: its windows are correlated."""
    return [s.video for s in dataset.samples]


def _scores_of(pred: np.ndarray, dataset: ProcedureDataset) -> dict:
    return split_scores(pred, _ground_truth(dataset), episode_ids(dataset))


def model_plans(loaded: EvalModel, dataset: ProcedureDataset, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray | None]:
    """The closed-set plans as deployed (decoding.llm_weight as chosen on val) and, for models
    that can re-rank with their LLM, the plain Viterbi plans from the same candidates (weight 0):
    one pass of the inference pipeline, start and goal only."""
    chosen, plain = [], []
    policy = loaded.policy(captions=False)
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate):
        out = plan_batch(loaded.model, loaded.graphs, batch["start"], batch["goal"], policy, keep_candidates=True)
        chosen.append(out.step_ids)
        if out.candidates is not None:
            plain.append(out.candidates.choose(0.0))
    return np.concatenate(chosen), (np.concatenate(plain) if plain else None)


def score_model(loaded: EvalModel, splits: dict[str, ProcedureDataset]) -> dict:
    """{"deployed": {split: scores}, "plain": {split: scores} | None, "llm_weight": float | None}
    on the val and test splits."""
    scores: dict = {"deployed": {}, "plain": None, "llm_weight": None}
    for name in ("test", "val"):
        chosen, plain = model_plans(loaded, splits[name])
        scores["deployed"][name] = _scores_of(chosen, splits[name])
        if plain is not None:
            scores["plain"] = {**(scores["plain"] or {}), name: _scores_of(plain, splits[name])}
            scores["llm_weight"] = float(loaded.policy().llm_weight)
    return scores


def score_baselines(data: DataConfig) -> dict:
    """{planner: {"test": scores, "val": scores, "fit_s": seconds}} for the simple planners, fit on
    the training split of `data` and scored on its val and test samples (fit_s: fitting and
    planning the test split)."""
    splits = baseline_splits(data)
    out = {}
    for key, (_, fit) in _simple_planners().items():
        started = time.perf_counter()
        planner = fit(splits["train"])
        test = planner(splits["test"])
        out[key] = {"test": _scores_of(test, splits["test"]), "fit_s": time.perf_counter() - started,
                    "val": _scores_of(planner(splits["val"]), splits["val"])}
    return out


@functools.lru_cache(maxsize=None)
def ceiling(horizon: int) -> dict[str, float]:
    """The exact ceiling's expected metrics at `horizon` (data-independent, so computed once)."""
    from training.tabletop.baselines import exact_ceiling, seen_window_table

    return {k: float(v) for k, v in exact_ceiling(seen_window_table(horizon)).items()}


def score_optimal(data: DataConfig) -> dict:
    """{"test": scores, "val": scores} of the ceiling's planner (it reads the true states) on the
    very val and test samples of `data`: what it scores on them, not its expectation. No images
    or training enter it, so it is computed afresh every time."""
    from training.tabletop.baselines import seen_window_table, state_planner

    out = {}
    for split in ("test", "val"):
        plans = state_planner(split, data.horizon, data.seed, data.eval_samples, seen_window_table(data.horizon))
        out[split] = split_scores(plans.pred, plans.gt, [f"e{e}" for e in plans.episodes.tolist()])
    return out


# ------------------------------------------------------------------ the score caches
def _canonical(value):
    return json.loads(json.dumps(value))


def read_cache(path: Path, key: dict) -> dict | None:
    """The scores stored at `path` under exactly `key`, else None."""
    if not path.is_file():
        return None
    saved = json.loads(path.read_text(encoding="utf-8"))
    return saved["scores"] if saved.get("key") == _canonical(key) else None


def write_cache(path: Path, key: dict, scores: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"key": key, "scores": scores}), encoding="utf-8")
    os.replace(tmp, path)


def run_key(run: Run, version: str) -> dict:
    """What a run's scores depend on: its training config, its weights and the code (`version`,
    training.benchmarks.report.code_version)."""
    weights = hashlib.sha256((run.run_dir / MODEL_DIR / WEIGHTS_FILE).read_bytes()).hexdigest()
    return {"config": run.config.to_dict(), "weights_sha256": weights, "code_version": version}


def baselines_path(run: Run) -> Path:
    """The simple planners' scores of a run's data (dataset x horizon x seed), beside its runs."""
    return run.run_dir.parent / f"baselines-seed{run.seed}.json"


def baselines_key(data: DataConfig, version: str) -> dict:
    """What the simple planners' scores depend on: the data config and the code."""
    return {"data": dataclasses.asdict(data), "code_version": version}


# ------------------------------------------------------------------ results
@dataclass(frozen=True)
class Paired:
    """What pairs one system's samples of a split with another's: per-sample success (100 where
    the whole plan is right, else 0), each sample's episode (the bootstrap's unit) and the digest
    of the split's ground truth (two systems are paired only on the same samples)."""

    success: np.ndarray
    episodes: list[str]
    gt_sha256: str


@dataclass
class SeedResult:
    """One system on one seed."""

    seed: int
    test: dict[str, float]
    val_sr: float
    paired: dict[str, Paired]  # "test" and "val"
    train: dict | None = None  # the run's bench-train.json (simple planners: their fit time)
    llm_weight: float | None = None
    commit: str | None = None  # the commit the run was trained at (training.train.logging_utils)


@dataclass
class Row:
    title: str
    kind: str  # "model" | "plain" (a model's weight-0 decoding) | "simple" (a simple planner) | "optimal"
    seeds: list[SeedResult] = field(default_factory=list)

    def mean(self, metric: str = "sr") -> float:
        return float(np.mean([s.test[metric] for s in self.seeds]))


@dataclass
class Group:
    """One table: a dataset at one horizon."""

    dataset: str
    horizon: int
    rows: dict[str, Row] = field(default_factory=dict)
    ceiling: dict[str, float] | None = None

    def add(self, title: str, kind: str, result: SeedResult) -> None:
        self.rows.setdefault(title, Row(title, kind)).seeds.append(result)


def _seed_result(seed: int, scores: dict, train: dict | None = None, llm_weight: float | None = None,
                 commit: str | None = None) -> SeedResult:
    paired = {split: Paired(100.0 * np.asarray(scores[split]["success"], dtype=np.float64),
                            list(scores[split]["episodes"]), scores[split]["gt_sha256"]) for split in ("test", "val")}
    return SeedResult(seed, scores["test"]["metrics"], scores["val"]["metrics"]["sr"], paired, train, llm_weight, commit)


def train_missing(runs: list[Run], jobs: int) -> None:
    """Train the runs that have no finished model, `jobs` at once. Their data is prepared first,
    so that runs sharing a split do not build its feature cache twice at the same time, and no
    run's training time includes building it."""
    missing = [r for r in runs if not is_trained(r.run_dir)]
    if not missing:
        return
    shared = {(r.dataset, r.horizon, r.seed): r.config for r in missing}
    in_processes(jobs, [(prepare_data, [(config,) for config in shared.values()], "preparing data"),
                        (train_timed, [(r.config, r.run_dir, jobs) for r in missing], "training runs")])


def _score_runs(group: Group, runs: list[Run], version: str) -> None:
    splits: dict[str, dict[str, ProcedureDataset]] = {}  # loaded once per data config, only on a cache miss
    for run in runs:
        key = run_key(run, version)
        scores = read_cache(run.run_dir / SCORES_FILE, key)
        if scores is None:
            data = json.dumps([dataclasses.asdict(run.config.data), str(run.config.visual())], sort_keys=True)
            if data not in splits:
                splits[data] = {s: load_split(run.config.data, s, run.config.visual()) for s in ("test", "val")}
            scores = score_model(check_config(load_for_eval(run.run_dir), run.config, run.run_dir), splits[data])
            write_cache(run.run_dir / SCORES_FILE, key, scores)
        title = VARIANT_TITLES[run.variant]
        commit = describe_training(read_training_record(run.run_dir / MODEL_DIR))
        group.add(title, "model", _seed_result(run.seed, scores["deployed"], train_record(run.run_dir), scores["llm_weight"],
                                               commit))
        line = f"test SR {scores['deployed']['test']['metrics']['sr']:.2f}"
        if scores["plain"] is not None:
            group.add(title + PLAIN, "plain", _seed_result(run.seed, scores["plain"], llm_weight=0.0, commit=commit))
            line += f" (plain Viterbi {scores['plain']['test']['metrics']['sr']:.2f})"
        print(f"quality {run.dataset} T={run.horizon} {run.variant} seed {run.seed}: {line}, "
              f"val SR {scores['deployed']['val']['metrics']['sr']:.2f}", flush=True)


def _score_simple(group: Group, runs: list[Run], seeds: list[int], version: str) -> None:
    planners = _simple_planners()
    for seed in seeds:
        run = next(r for r in runs if r.seed == seed)
        key = baselines_key(run.config.data, version)
        scores = read_cache(baselines_path(run), key)
        if scores is None:
            scores = score_baselines(run.config.data)
            write_cache(baselines_path(run), key, scores)
        for name, (title, _) in planners.items():
            group.add(title, "simple", _seed_result(seed, scores[name], {"wall_s": scores[name]["fit_s"], "jobs": 1}))


def _score_optimal(group: Group, runs: list[Run], seeds: list[int]) -> None:
    """The optimal planner's row: its scores on each seed's test samples, which must be the
    samples the models were scored on."""
    models = {s.seed: s.paired["test"].gt_sha256 for row in group.rows.values() if row.kind == "model" for s in row.seeds}
    for seed in seeds:
        scores = score_optimal(next(r for r in runs if r.seed == seed).config.data)
        if models.get(seed, scores["test"]["gt_sha256"]) != scores["test"]["gt_sha256"]:
            raise ValueError(f"{group.dataset} T={group.horizon} seed {seed}: the optimal planner's test samples are "
                             "not the models' (the split sampler and the dataset disagree)")
        group.add(OPTIMAL_TITLE, "optimal", _seed_result(seed, scores))


def left_out(runs: list[Run]) -> list[Run]:
    """The runs of every dataset x horizon x variant that has a seed not trained yet: a variant is
    scored with all its seeds or not at all, so that every verdict pairs the same seeds."""
    incomplete = {(r.dataset, r.horizon, r.variant) for r in runs if not is_trained(r.run_dir)}
    return [r for r in runs if (r.dataset, r.horizon, r.variant) in incomplete]


def measure(args: argparse.Namespace) -> list[Group]:
    """One Group per dataset x horizon, training what is missing (--score-only: leaving it out)
    and scoring what is not cached."""
    runs = planned_runs(args)
    args.left_out = left_out(runs) if args.score_only else []
    runs = [r for r in runs if r not in args.left_out]
    train_missing(runs, args.jobs)
    version = code_version()
    groups = []
    for dataset in args.datasets:
        for horizon in args.horizons:
            group = Group(dataset, horizon)
            mine = [r for r in runs if r.dataset == dataset and r.horizon == horizon]
            if not mine:
                continue
            _score_runs(group, mine, version)
            if dataset == "tabletop":
                _score_simple(group, mine, args.seeds, version)
                _score_optimal(group, mine, args.seeds)
                group.ceiling = ceiling(horizon)
            groups.append(group)
    return groups


# ------------------------------------------------------------------ the report
def strongest_simple(group: Group) -> Row | None:
    """The simple planner with the best mean val SR (chosen on val, never on test)."""
    simple = [r for r in group.rows.values() if r.kind == "simple"]
    return max(simple, key=lambda r: np.mean([s.val_sr for s in r.seeds])) if simple else None


def verdicts(group: Group, split: str = "test") -> list[str]:
    """Full model vs each ablation, vs its own plain Viterbi and vs the strongest simple planner,
    on `split`'s SR ("val": what development keeps or drops a design on; "test": the single report)."""
    full = group.rows.get(VARIANT_TITLES["full"])
    if full is None:
        return []
    others = [r for r in group.rows.values() if r.kind == "model" and r is not full]
    others += [group.rows[full.title + PLAIN]] if full.title + PLAIN in group.rows else []
    best = strongest_simple(group)
    lines = []
    for other in [*others, *([best] if best is not None else [])]:
        for a, b in zip(full.seeds, other.seeds, strict=True):
            if (a.seed, a.paired[split].gt_sha256, a.paired[split].episodes) != (
                    b.seed, b.paired[split].gt_sha256, b.paired[split].episodes):
                raise ValueError(f"{group.dataset} T={group.horizon}: {full.title} (seed {a.seed}) and {other.title} "
                                 f"(seed {b.seed}) were scored on different {split} samples; they cannot be paired")
        line = verdict(full.title, other.title, [s.paired[split].success for s in full.seeds],
                       [s.paired[split].success for s in other.seeds],
                       episodes=[s.paired[split].episodes for s in full.seeds])
        lines.append(line + (" (the simple planner with the best val SR)" if other is best else ""))
    return lines


def _train_cell(row: Row) -> str:
    """Mean training seconds of the row's runs. A resumed run's record covers only the part after
    the resume, so it is counted only when no run of the row trained in one go."""
    if row.kind == "plain":
        return "same runs"
    if row.kind == "optimal":
        return "no training"
    known = [s.train for s in row.seeds if s.train is not None]
    if not known:
        return "n/a (trained elsewhere)"
    whole = [t for t in known if not t.get("resumed")]
    timed = whole or known
    jobs = sorted({int(t["jobs"]) for t in timed})
    text = f"{np.mean([t['wall_s'] for t in timed]):.0f}"
    if all("cpu_s" in t for t in timed):
        text += f" (CPU {np.mean([t['cpu_s'] for t in timed]):.0f})"
    text += f", {'/'.join(map(str, jobs))} at once"
    if len(known) < len(row.seeds):
        text += f"; {len(row.seeds) - len(known)} run(s) trained elsewhere"
    if not whole:
        text += "; every run resumed: seconds after the resume only"
    elif len(whole) < len(known):
        text += f"; {len(known) - len(whole)} resumed run(s) not counted"
    return text


def _weights_cell(row: Row) -> str:
    weights = [s.llm_weight for s in row.seeds]
    return "—" if all(w is None for w in weights) else ", ".join("—" if w is None else f"{w:g}" for w in weights)


HEADERS = ["system", *[METRIC_TITLES[m] for m in METRICS], "SR per seed", "val SR", "LLM weight (val)",
           "train s per run (wall)", "trained at commit"]


def _commit_cell(row: Row) -> str:
    """The commit(s) the row's runs were trained at, once each in seed order ("—": nothing trained)."""
    commits = list(dict.fromkeys(s.commit for s in row.seeds if s.commit is not None))
    return "; ".join(commits) if commits else "—"


def table(group: Group) -> Table:
    out = Table(f"{group.dataset}, T={group.horizon}: test split (mean ± std over seeds, percent)", HEADERS)
    for row in group.rows.values():
        out.rows.append([row.title, *[mean_std([s.test[m] for s in row.seeds]) for m in METRICS],
                         ", ".join(f"{s.test['sr']:.2f}" for s in row.seeds), mean_std([s.val_sr for s in row.seeds]),
                         _weights_cell(row), _train_cell(row), _commit_cell(row)])
    if group.ceiling is not None:
        out.rows.append([CEILING_TITLE, *[f"{group.ceiling[m]:.2f} (expected)" for m in METRICS],
                         "an expectation over draws of the split (no data)", "—", "—", "—", "—"])
    return out


def verdict_table(group: Group, split: str = "test") -> Table:
    what = ("what development compares: a design is kept or dropped on these" if split == "val"
            else "the single test report")
    return Table(f"{group.dataset}, T={group.horizon}: verdicts on {split} SR ({what}; paired bootstrap over seeds "
                 f"and, within each, episodes; {RESAMPLES} replicates)", ["verdict"],
                 [[line] for line in verdicts(group, split)])


def plot(path: Path, groups: list[Group]) -> Path:
    """Test SR per model row (mean ± std over seeds), the simple planners and the ceiling as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(2, len(groups))
    panel_rows = -(-len(groups) // columns)
    fig, axes = plt.subplots(panel_rows, columns, figsize=(max(9.0, 7.0 * columns), 5.5 * panel_rows), squeeze=False)
    for ax in axes.flat[len(groups):]:
        ax.set_visible(False)
    for ax, group in zip(axes.flat, groups):
        bars = [r for r in group.rows.values() if r.kind in ("model", "plain")]
        x = np.arange(len(bars))
        means, stds = [r.mean() for r in bars], [float(np.std([s.test["sr"] for s in r.seeds])) for r in bars]
        ax.bar(x, means, yerr=stds, capsize=3, color=["C0" if r.kind == "model" else "C1" for r in bars])
        lines = [(r.title, r.mean()) for r in group.rows.values() if r.kind == "simple"]
        if group.ceiling is not None:
            lines.append(("exact ceiling (expected)", group.ceiling["sr"]))
        for i, (name, value) in enumerate(lines):
            ax.axhline(value, color=f"C{i + 2}", linestyle="--" if name.startswith("Simple") else ":", label=name)
        ax.set_xticks(x, [r.title for r in bars], rotation=40, ha="right", fontsize="small")
        top = max([m + e for m, e in zip(means, stds)] + [value for _, value in lines] + [1.0])
        ax.set_ylim(0, 1.3 * top)  # headroom for the legend
        ax.set_ylabel("test SR (%)")
        ax.set_title(f"{group.dataset}, T={group.horizon}")
        ax.grid(axis="y", alpha=0.3)
        if lines:
            ax.legend(fontsize="x-small", loc="upper right")
    fig.suptitle("Test SR (bars: mean ± std over seeds; orange: the same runs' plain Viterbi; dashed: simple planners; "
                 "dotted: exact ceiling, expected)", fontsize="medium")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def notes(args: argparse.Namespace) -> list[str]:
    changes = [*(QUICK_OVERRIDES if args.quick else ()), *args.overrides]
    out = [
        f"training: the `<dataset>-tiny` presets (training/configs/) at their own sizes"
        f"{' with ' + ' '.join(changes) if changes else ' (tabletop-tiny: 4800 training, 1000 val and 1000 test samples; crosstask-tiny: every window)'}; "
        f"one model per dataset x horizon x variant x seed, in `{args.work_dir}/`; "
        + ("this invocation trained no run (--score-only): the train column gives each run's own record"
           if args.score_only else
           f"{args.jobs} runs trained at once on this machine ({os.cpu_count()} CPUs), each its own process with one "
           "torch thread" if args.jobs > 1 else f"runs trained one at a time with {args.threads} torch thread(s)"),
        "seeds: seed S sets train.seed=S and data.seed=S, so seeds differ in training data and in test samples "
        "(tabletop: the episodes every split draws; CrossTask: the validation carve); every system is scored on the "
        "same seed's test samples, paired sample by sample",
        "test once: the metric columns are test scores, reported once for these configurations; the val SR column and "
        "the val verdicts are what development compares. The test table is not for choosing designs: a configuration "
        "changed after its test "
        "score was seen is a new configuration, chosen on val and given its own, single test report "
        "(docs/evaluation.md)",
        "decoding as deployed: Viterbi with the train transition matrix; for models with an LLM and a step decoder, "
        "Viterbi's best plans re-ranked by the LLM's plan likelihood at the weight each run chose on val (LLM weight "
        "column). The \"plain Viterbi\" rows are the same runs at weight 0, from the same candidates",
        "metrics in percent: SR, mAcc, mIoU (peer, bitwise: the published tables' element-wise bitwise AND/OR of "
        "0-based ids) and mIoU (set: per-sample set IoU); ± is the population std over seeds and describes spread "
        "only: claims rest on the verdicts",
        f"verdicts: mean difference in val or test SR and its 95 % interval from a paired bootstrap ({RESAMPLES} "
        "replicates drawing seeds, and within each drawn seed its episodes, each with all its windows, with replacement: "
        "windows of one episode are correlated, so the episode is the unit resampled; training/benchmarks/stats.py); "
        "\"not distinguishable\" when the interval contains 0",
        "train s per run: wall seconds of each run's training (mean over seeds; CPU seconds of its process in "
        "brackets) and how many runs trained at once; simple planners: fitting and predicting the test split",
        "trained at commit: the commit each run's model folder records as the code that trained it "
        "(training.train.logging_utils), with any uncommitted changes; \"not recorded\" for runs trained before "
        "model folders recorded it",
    ]
    if "tabletop" in args.datasets:
        out += [
            "simple planners (training/tabletop/baselines.py): fit on the same seed's training split, scored on the "
            "same val and test samples as the models, on that module's features (the frozen MobileNetV2's last "
            "block, average-pooled to one vector per image); the verdicts compare the full model with the one with "
            "the best val SR",
            "exact ceiling: the best expected SR of any planner, even one reading the true symbolic start and goal "
            "states (commuting steps leave identical images); computed exactly, with no data and no sampling "
            "(docs/evaluation.md, \"The exact tabletop ceiling\"); its other columns are the expected scores of "
            "the planner that reaches it. It is an expectation over draws of the split, not a bound on these "
            "samples: the row above it runs that very planner on each seed's val and test samples, and a seed's "
            "samples can score above the expectation by chance",
        ]
    if args.left_out:
        variants: dict[tuple[str, int], dict[str, None]] = {}  # in run order, without repeats
        for r in args.left_out:
            variants.setdefault((r.dataset, r.horizon), {})[r.variant] = None
        out.append("not run here (--score-only: not every seed trained under the work directory): " + "; ".join(
            f"{dataset} T={horizon}: {', '.join(names)}" for (dataset, horizon), names in variants.items()))
    if "crosstask" in args.datasets:
        simulated = args.crosstask_features is None
        out.append("CrossTask: " + ("SIMULATED features (training.datasets.simulate): the numbers test the "
                                    "real-annotation path and do not compare with published results" if simulated
                                    else f"features from {args.crosstask_features}"))
    return out


def run(args: argparse.Namespace, command: str) -> list[Path]:
    fill_defaults(args)
    groups = measure(args)
    stem = "quality-quick" if args.quick else "quality"
    figure = plot(args.out / f"{stem}.png", groups)
    tables = [t for group in groups for t in (table(group), verdict_table(group, "val"), verdict_table(group)) if t.rows]
    report = write_report(args.out / f"{stem}.md", "Plan quality: the full model, its ablations, simple planners "
                          "and the exact ceiling", command, args.seeds, tables, notes(args), figure)
    return [report, figure]
