"""`planllm bench quality`: the full model against each ablation of the paper's Tables 4-6.

For every dataset x horizon x variant x seed one model is trained (training.bench.runs) and
scored on the test split with argmax and with Viterbi decoding (scores are kept beside each run
and reused while its weights are unchanged); the table gives mean ± std over seeds of SR, mAcc
and both mIoU forms. CrossTask runs on simulated features (written on demand
by training.datasets.simulate from the real annotations): those numbers exercise the real-data
path and are not comparable with published results.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from planllm_ros.model.folder import TRAIN_CONFIG_FILE, WEIGHTS_FILE, load_train_config
from training.bench.report import REPO, Table, bar_plot, code_version, mean_std, write_report
from training.bench.runs import (QUICK_OVERRIDES, add_set_argument, VARIANT_TITLES, VARIANTS, closed_set_metrics, run_config,
                                 run_directory, trained_model)
from training.config import RunConfig, from_tree
from training.evaluate import METRIC_TITLES, METRICS
from training.splits import load_split
from training.trainer import MODEL_DIR

DATASETS = ("tabletop", "crosstask")
DECODES = ("argmax", "viterbi")
SCORES_FILE = "bench-quality.json"  # a finished run's test scores, reused while its weights are unchanged
DEFAULT_CROSSTASK_ROOT = REPO.parent / "shared" / "data" / "crosstask"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_set_argument(parser)
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=None,
                        help="default: tabletop and crosstask (quick: tabletop)")
    parser.add_argument("--horizons", nargs="+", type=int, default=None, help="default: 3 4 (quick: 3)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="training seeds (default: 0 1 2; quick: 0)")
    parser.add_argument("--work-dir", type=Path, default=Path("runs/bench"),
                        help="where the training runs go (finished runs are reused, interrupted ones resumed)")
    parser.add_argument("--crosstask-root", type=Path, default=DEFAULT_CROSSTASK_ROOT,
                        help="CrossTask annotation release (the real files)")
    parser.add_argument("--crosstask-features", type=Path, default=None,
                        help="CrossTask feature files (default: simulated into WORK_DIR/crosstask-simulated)")


def fill_defaults(args: argparse.Namespace) -> None:
    """Quick mode: tabletop, T=3, one seed; full mode: both datasets, T=3 and 4, three seeds."""
    args.datasets = args.datasets or (["tabletop"] if args.quick else list(DATASETS))
    args.horizons = args.horizons or ([3] if args.quick else [3, 4])
    args.seeds = args.seeds if args.seeds is not None else ([0] if args.quick else [0, 1, 2])


def _crosstask_overrides(args: argparse.Namespace) -> list[str]:
    features = args.crosstask_features
    if features is None:
        from training.datasets.features import SIMULATED_MARKER
        from training.datasets.simulate import simulate

        features = args.work_dir / "crosstask-simulated"
        if not (features / SIMULATED_MARKER).is_file():
            simulate("crosstask", args.crosstask_root, features, progress=False)
    return [f"data.root={args.crosstask_root.resolve()}", f"data.features_dir={Path(features).resolve()}"]


def measure(args: argparse.Namespace) -> dict[tuple[str, int, str, str], list[dict[str, float]]]:
    """{(dataset, horizon, variant, decode): [metrics per seed]}, training what is missing."""
    results: dict[tuple[str, int, str, str], list[dict[str, float]]] = {}
    for dataset in args.datasets:
        # quick CrossTask keeps its real windows (no sample cap exists for benchmarks) but trains one epoch per stage
        quick = [o for o in QUICK_OVERRIDES if dataset == "tabletop" or o.startswith("train.")] if args.quick else []
        base = [*quick, *args.overrides]
        if dataset == "crosstask":
            base += _crosstask_overrides(args)
        for horizon in args.horizons:
            for variant in args.variants:
                for seed in args.seeds:
                    overrides = [*base, f"data.horizon={horizon}", f"train.seed={seed}", *VARIANTS[variant]]
                    config = run_config(f"{dataset}-tiny", overrides)
                    run_dir = run_directory(args.work_dir, args.quick, dataset, horizon, variant, seed)
                    scores = cached_scores(run_dir, config)
                    if scores is None:
                        loaded = trained_model(config, run_dir)
                        test = load_split(config.data, "test", config.visual())
                        scores = {decode: closed_set_metrics(loaded, test, decode) for decode in DECODES}
                        save_scores(run_dir, scores)
                    for decode in DECODES:
                        metrics = scores[decode]
                        results.setdefault((dataset, horizon, variant, decode), []).append(metrics)
                        print(f"quality {dataset} T={horizon} {variant} seed {seed} {decode}: "
                              + ", ".join(f"{k} {v:.2f}" for k, v in metrics.items()), flush=True)
    return results


def _weights_digest(run_dir: Path) -> str:
    return hashlib.sha256((run_dir / MODEL_DIR / WEIGHTS_FILE).read_bytes()).hexdigest()


def cached_scores(run_dir: Path, config: RunConfig) -> dict[str, dict[str, float]] | None:
    """The test scores a finished run already has (RUN/bench-quality.json), or None. Valid only
    for the same training config, weights file and code version, so a retrained run, or one
    scored by other code, is re-scored."""
    path = run_dir / SCORES_FILE
    tree = load_train_config(run_dir / MODEL_DIR)
    if not path.is_file() or tree is None:
        return None
    saved = json.loads(path.read_text(encoding="utf-8"))
    trained = from_tree(tree, TRAIN_CONFIG_FILE)
    if (trained.to_dict() != config.to_dict() or saved.get("weights_sha256") != _weights_digest(run_dir)
            or saved.get("code_version") != code_version()):
        return None
    return saved["scores"]


def save_scores(run_dir: Path, scores: dict[str, dict[str, float]]) -> None:
    tmp = run_dir / (SCORES_FILE + ".tmp")
    tmp.write_text(json.dumps({"weights_sha256": _weights_digest(run_dir), "code_version": code_version(),
                               "scores": scores}, indent=1),
                   encoding="utf-8")
    os.replace(tmp, run_dir / SCORES_FILE)


def tables(args: argparse.Namespace, results) -> list[Table]:
    out = []
    for dataset in args.datasets:
        for horizon in args.horizons:
            for decode in DECODES:
                table = Table(f"{dataset}, T={horizon}, {decode} decoding (test split; mean ± std over seeds, percent)",
                              ["variant", *[METRIC_TITLES[m] for m in METRICS], "seeds"])
                for variant in args.variants:
                    runs = results[(dataset, horizon, variant, decode)]
                    table.rows.append([VARIANT_TITLES[variant], *[mean_std([r[m] for r in runs]) for m in METRICS],
                                       str(len(runs))])
                out.append(table)
    return out


def run(args: argparse.Namespace, command: str) -> list[Path]:
    fill_defaults(args)
    results = measure(args)
    stem = "quality-quick" if args.quick else "quality"
    groups = [VARIANT_TITLES[v] for v in args.variants]
    series, errors = {}, {}
    for dataset in args.datasets:
        for horizon in args.horizons:
            for metric in ("sr", "macc"):
                name = f"{METRIC_TITLES[metric]}, {dataset} T={horizon}"
                runs = [np.array([r[metric] for r in results[(dataset, horizon, v, "viterbi")]]) for v in args.variants]
                series[name] = [float(r.mean()) for r in runs]
                errors[name] = [float(r.std()) for r in runs]
    plot = bar_plot(args.out / f"{stem}.png", "SR and mAcc by variant, Viterbi (mean ± std over seeds)", groups,
                    series, "percent", errors)
    changes = [*(QUICK_OVERRIDES if args.quick else ()), *args.overrides]
    notes = [
        f"training: the `<dataset>-tiny` presets (training/configs/){' with ' + ' '.join(changes) if changes else ''}; "
        f"one model per dataset x horizon x variant x seed (seed = train.seed; the data seed is fixed at 0); runs in "
        f"`{args.work_dir}/`",
        "scores: test split; SR, mAcc, mIoU (peer, bitwise: the published tables' element-wise bitwise AND/OR of "
        "0-based ids) and mIoU (set: per-sample set IoU), in percent; std is the population std over seeds",
        "variants: the paper's Tables 4-6 as config switches (training/bench/runs.py VARIANTS)",
        "decoding: argmax, or Viterbi with the train transition matrix; for variants with an LLM and a step "
        "decoder, Viterbi's 10 best plans are re-ranked with the LLM's plan likelihood at the weight each run chose "
        "on val (model config decoding.llm_weight)",
    ]
    if "crosstask" in args.datasets:
        notes.append("CrossTask here runs on SIMULATED features (training.datasets.simulate): the numbers test the "
                     "real-annotation path and do not compare with published results")
    report = write_report(args.out / f"{stem}.md", "Plan quality: full model vs ablations", command, args.seeds,
                          tables(args, results), notes, plot)
    return [report, plot]
