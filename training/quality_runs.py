"""Does the full PlanLLM beat the no-MIM/no-LLM baseline on the tabletop world? Writes the answer.

    python -m training.quality_runs [--seeds 0 1 2] [--config tabletop-tiny] [--work runs/quality]
                                    [--out bench/results/tabletop-quality.md] [--jobs 2]

For every seed it trains the config twice through the normal trainer (`train.seed=S`; the
baseline adds `variant.use_mim=false variant.use_llm=false`, which trains stage 2 only), then
scores each selected model on the *test* split with `planllm eval`'s code (closed set, Viterbi
with the train transition matrix; open vocabulary for the full model). Model selection inside
each run used only the val split. The table gives every seed and mean +- sample std.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from training.config import load_config
from training.evaluate import evaluate, load_for_eval
from training.splits import load_split
from training.trainer import train

BASELINE = ["variant.use_mim=false", "variant.use_llm=false"]
VARIANTS = {"PlanLLM (full)": [], "baseline (no MIM, no LLM)": BASELINE}
METRICS = ("sr", "macc", "miou", "miou_set")


def run_one(config_name: str, overrides: list[str], out: Path, threads: int = 1) -> tuple[dict, float | None]:
    """Train (or reuse a finished run in `out`) and evaluate on test; (result, train seconds or
    None for a reused run). For a model that re-ranks with its LLM, result["viterbi_only"] holds
    the closed-set metrics with decoding.llm_weight = 0 as well, so the table can show both."""
    torch.set_num_threads(threads)
    config = load_config(config_name, [*overrides, "train.progress=false"])
    started = time.monotonic()
    seconds = None
    if not (out / "model" / "train_config.json").is_file():
        train(config, out, resume=(out / "checkpoint").exists())
        seconds = time.monotonic() - started
    loaded = load_for_eval(out)
    test = load_split(loaded.config.data, "test", loaded.config.visual())
    result = evaluate(loaded, test, "viterbi")
    result["llm_weight"] = loaded.model.config.decoding.llm_weight if loaded.model.reranks_with_llm else None
    if result["llm_weight"]:
        loaded.model.config.decoding.llm_weight = 0.0
        result["viterbi_only"] = evaluate(loaded, test, "viterbi")["closed"]
    return result, seconds


def _seconds(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    return f"{np.mean(known):.0f}" if known else "reused run"


def _cell(values: list[float]) -> str:
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return f"{np.mean(values):.2f} +- {std:.2f}"


def write_report(path: Path, config_name: str, seeds: list[int], results: dict[str, list[tuple[dict, float | None]]],
                 jobs: int) -> None:
    lines = [
        "# Tabletop quality: PlanLLM vs the no-MIM/no-LLM baseline",
        "",
        f"Produced by `python -m training.quality_runs --config {config_name} --seeds {' '.join(map(str, seeds))}"
        f" --jobs {jobs}` on {platform.node()} ({os.cpu_count()} CPUs, {jobs} run(s) at a time, torch threads 1 each),"
        f" {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "Test split, horizon T=3, closed set with Viterbi (train transition matrix); a model with an LLM re-ranks",
        "Viterbi's 10 best plans with the LLM's likelihood at the weight it chose on val (decoding.llm_weight;",
        "the \"Viterbi only\" column is the same model at weight 0). Model selection on val only.",
        "Metrics in percent; mIoU (peer) is the published tables' bitwise form, mIoU (set) the set IoU.",
        "",
        "| variant | " + " | ".join(f"SR seed {s}" for s in seeds) + " | SR mean +- std | mAcc | mIoU (peer) | mIoU (set) "
        "| SR, Viterbi only | LLM weight (val) | open-vocab SR | train s (mean) |",
        "|---|" + "---|" * (len(seeds) + 8),
    ]
    for name, runs in results.items():
        closed = [r["closed"] for r, _ in runs]
        opened = [r["open"]["sr"] for r, _ in runs if r["open"] is not None]
        plain = [r.get("viterbi_only", r["closed"])["sr"] for r, _ in runs]
        weights = [r["llm_weight"] for r, _ in runs]
        lines.append(
            f"| {name} | " + " | ".join(f"{c['sr']:.2f}" for c in closed)
            + " | " + " | ".join(_cell([c[m] for c in closed]) for m in METRICS)
            + f" | {_cell(plain)} | {', '.join('n/a' if w is None else f'{w:g}' for w in weights)}"
            + f" | {_cell(opened) if opened else 'n/a'} | {_seconds([s for _, s in runs])} |"
        )
    full, base = ([r["closed"]["sr"] for r, _ in results[k]] for k in VARIANTS)
    verdict = "beats" if np.mean(full) > np.mean(base) else "does NOT beat"
    lines += ["", f"Mean test SR: PlanLLM {np.mean(full):.2f} vs baseline {np.mean(base):.2f}: the full model {verdict} "
              f"the baseline over {len(seeds)} seed(s).", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="tabletop-tiny")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--work", type=Path, default=Path("runs/quality"), help="run directories (finished runs are reused)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/tabletop-quality.md"))
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once, one process and one torch thread each")
    args = parser.parse_args()
    jobs = [(seed, name, overrides) for seed in args.seeds for name, overrides in VARIANTS.items()]
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no forked torch thread pools
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=context) as pool:
        futures = [pool.submit(run_one, args.config, [*overrides, f"train.seed={seed}"],
                               args.work / f"{'full' if not overrides else 'baseline'}-seed{seed}")
                   for seed, name, overrides in jobs]
        results: dict[str, list[tuple[dict, float | None]]] = {name: [] for name in VARIANTS}
        for (seed, name, _), future in zip(jobs, futures):
            result = future.result()
            results[name].append(result)
            print(f"seed {seed} {name}: test SR {result[0]['closed']['sr']:.2f}", flush=True)
    write_report(args.out, args.config, args.seeds, results, args.jobs)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
