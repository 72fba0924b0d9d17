"""`planllm bench textenc`: the text side's ceiling on open vocabulary, per candidate text encoder.

Open-vocabulary plans retrieve, for each caption, the most similar candidate label. Even a
perfect caption (the training label itself) retrieves the wrong paraphrase when the encoder
confuses two steps, so each encoder caps open-vocabulary SR. Measured per packaged encoder
(planllm_ros.model.text_encoder.PACKAGED) on the tabletop world's 81 steps:

- top-1: the share of steps whose training label (or "label. description") retrieves its own
  paraphrase among all 81 paraphrases, for the test set and the independent val set;
- SR ceiling: the share of samples at the preset's horizon and eval size (tabletop-tiny) whose T
  true labels all retrieve their own paraphrase: test episodes with the test set
  ("paraphrase") and val episodes with the val set ("paraphrase-val"). Step ids come from the
  splits' windows; nothing is rendered;
- size: parameters and MB of weights on disk;
- CPU latency with this process's threads (--threads, default 1), median over repeats: 100
  labels in one batch; one caption; and one robot-path plan: T captions encoded and scored
  against 100 cached label embeddings (labels are embedded once per label file). Each is given
  as wall time and as the process's CPU time: on a shared machine other jobs stretch the wall
  time, while the CPU time is what the work itself costs (the two agree on an idle machine).

The default is chosen on val only: the highest val SR ceiling among encoders whose plan CPU
time is within --budget-ms; a candidate displaces the current default only by more than the
largest change one step's retrieval can make to that ceiling (printed as the margin).
"""
from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from training.benchmarks.report import Table, bar_plot, write_report

CURRENT_DEFAULT = "minilm"
CANDIDATES = 100  # candidate labels scored per plan (the robot path's budget is stated for 100)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from planllm_ros.model.text_encoder import PACKAGED

    parser.add_argument("--encoders", nargs="+", default=None, choices=list(PACKAGED),
                        help="text encoder kinds (default: every packaged kind; missing packages are reported)")
    parser.add_argument("--open-clip-checkpoint", type=Path, default=None,
                        help="a local open_clip checkpoint file, to measure the CLIP text tower too")
    parser.add_argument("--open-clip-model", default="ViT-B-32")
    parser.add_argument("--samples", type=int, default=None, help="samples per split (default: the preset's eval size; quick 100)")
    parser.add_argument("--repeats", type=int, default=None, help="latency repeats (default 30; quick 3)")
    parser.add_argument("--budget-ms", type=float, default=20.0,
                        help="CPU time one plan may spend scoring its captions against 100 labels")


def retrieval_hits(encoder, queries: list[str], candidates: list[str]) -> np.ndarray:
    """hits[i]: query i retrieves candidate i (the candidates are in the queries' order)."""
    similarity = encoder.encode(queries) @ encoder.encode(candidates).t()
    return (similarity.argmax(dim=1) == torch.arange(len(queries))).numpy()


def split_steps(split: str, horizon: int, seed: int, samples: int) -> np.ndarray:
    """(samples, horizon) global step ids of a tabletop split's windows, without rendering."""
    from training.tabletop.dataset import windows

    episodes, picked = windows(split, horizon, seed, samples)
    return np.array([episodes[e].plan[k:k + horizon] for e, k in picked], dtype=np.int64)


def ceiling(hits: np.ndarray, steps: np.ndarray) -> float:
    """Percent of samples whose every true step retrieves its own paraphrase."""
    return float(hits[steps].all(axis=1).mean() * 100)


def flip_margin(steps: np.ndarray) -> float:
    """The largest ceiling change (points) one step's retrieval turning right or wrong can make."""
    return float(max((steps == i).any(axis=1).mean() for i in np.unique(steps)) * 100)


def median_ms(run: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(wall, CPU) milliseconds of one call, medians over `repeats` calls after a warm-up."""
    run()  # warm-up: first calls allocate
    wall, cpu = [], []
    for _ in range(repeats):
        began, began_cpu = time.perf_counter(), time.process_time()
        run()
        wall.append((time.perf_counter() - began) * 1000)
        cpu.append((time.process_time() - began_cpu) * 1000)
    return float(np.median(wall)), float(np.median(cpu))


def megabytes(path: Path) -> float:
    """Size on disk of a weights file or of every file in a model directory."""
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    return sum(f.stat().st_size for f in files) / 1e6


def measure(encoder, samples: dict[str, np.ndarray], repeats: int, horizon: int) -> dict[str, float]:
    """Retrieval percentages and latencies (ms; "... ms" wall, "... cpu ms" CPU time) of one encoder."""
    from training.tabletop.paraphrases import paraphrase_labels
    from training.tabletop.world import STEPS

    labels = [s.label for s in STEPS]
    described = [f"{s.label}. {s.description}" for s in STEPS]
    out: dict[str, float] = {}
    for name, split in (("test", "paraphrase"), ("val", "paraphrase-val")):
        paraphrases = list(paraphrase_labels(name))
        for query, texts in (("label", labels), ("label+desc", described)):
            hits = retrieval_hits(encoder, texts, paraphrases)
            out[f"{name} {query} top1"] = float(hits.mean() * 100)
            out[f"{name} {query} ceiling"] = ceiling(hits, samples[split])
    hundred = [*paraphrase_labels("test"), *paraphrase_labels("val")][:CANDIDATES]
    cached = encoder.encode(hundred)
    captions = labels[:horizon]
    timed = {"100 labels": (lambda: encoder.encode(hundred, batch_size=CANDIDATES), max(3, repeats // 5)),
             "1 caption": (lambda: encoder.encode(captions[:1]), repeats),
             "plan": (lambda: (encoder.encode(captions) @ cached.t()).argmax(dim=1), repeats)}
    for what, (call, count) in timed.items():
        out[f"{what} ms"], out[f"{what} cpu ms"] = median_ms(call, count)
    return out


def choose_default(results: dict[str, dict[str, float]], budget_ms: float, margin: float) -> str:
    """The val-ceiling winner within the latency budget; the current default keeps its place
    unless beaten by more than `margin` points."""
    within = {k: r for k, r in results.items() if r["plan cpu ms"] <= budget_ms}
    if not within:
        return CURRENT_DEFAULT
    best = max(within, key=lambda k: within[k]["val label ceiling"])
    if CURRENT_DEFAULT in within and \
            within[best]["val label ceiling"] - within[CURRENT_DEFAULT]["val label ceiling"] <= margin:
        return CURRENT_DEFAULT
    return best


def run(args: argparse.Namespace, command: str) -> list[Path]:
    from planllm_ros.model.text_encoder import PACKAGED, TextEncoder
    from training.train.config import load_config

    data = load_config("tabletop-tiny", []).data
    count = args.samples or (100 if args.quick else data.eval_samples)
    repeats = args.repeats or (3 if args.quick else 30)
    samples = {split: split_steps(split, data.horizon, data.seed, count) for split in ("paraphrase", "paraphrase-val")}
    margin = flip_margin(samples["paraphrase-val"])
    kinds = args.encoders or list(PACKAGED)
    if args.open_clip_checkpoint is not None:
        kinds.append("open_clip")
    results: dict[str, dict[str, float]] = {}
    loaded: dict[str, list[str]] = {}
    skipped: list[str] = []
    for kind in kinds:
        try:
            encoder = TextEncoder(kind, args.open_clip_checkpoint if kind == "open_clip" else None, args.open_clip_model)
        except FileNotFoundError as error:
            skipped.append(f"{kind}: not measured, {error}")
            continue
        print(f"text encoder {kind}: measuring", flush=True)
        results[kind] = measure(encoder, samples, repeats, data.horizon)
        pins = PACKAGED[kind].packages if kind in PACKAGED else ("user checkpoint",)
        package = pins[0] + (f" (+ {len(pins) - 1} more parts)" if len(pins) > 1 else "")
        loaded[kind] = [kind, package, f"`{encoder.identity}`", str(encoder.dim), f"{encoder.num_parameters() / 1e6:.1f}",
                        f"{megabytes(encoder.weights):.0f}"]
        del encoder
    if args.open_clip_checkpoint is None:
        skipped.append("open_clip (the paper's CLIP text tower): not measured, it needs a user's checkpoint "
                       "(`text.encoder=open_clip`, `text.checkpoint=FILE`; no PyPI package ships CLIP weights)")
    if not results:
        raise FileNotFoundError("no text encoder could be loaded: " + "; ".join(skipped))
    chosen = choose_default(results, args.budget_ms, margin)

    quality = Table(f"Label -> paraphrase retrieval over the {len(samples['paraphrase'])} samples of each split, "
                    f"T={data.horizon} (percent; SR ceiling = all T true labels retrieve their own paraphrase)",
                    ["encoder", "test top-1", "test SR ceiling", "test top-1 (label+desc)", "test ceiling (label+desc)",
                     "val top-1", "val SR ceiling", "val top-1 (label+desc)", "val ceiling (label+desc)"])
    cost = Table(f"Size and CPU latency ({torch.get_num_threads()} thread(s); ms, wall / CPU time, medians of "
                 f"{repeats} runs, {max(3, repeats // 5)} for 100 labels)",
                 ["encoder", "PyPI package", "identity", "dim", "M params", "MB on disk", f"{CANDIDATES} labels",
                  "1 caption", f"plan: {data.horizon} captions vs {CANDIDATES} cached labels"])
    for kind, r in results.items():
        quality.rows.append([kind] + [f"{r[f'{s} {q} {m}']:.1f}" for s in ("test", "val")
                                      for q in ("label", "label+desc") for m in ("top1", "ceiling")])
        cost.rows.append([*loaded[kind], *(f"{r[f'{what} ms']:.1f} / {r[f'{what} cpu ms']:.1f}"
                                          for what in ("100 labels", "1 caption", "plan"))])
    notes = [f"samples per split: {count} (preset tabletop-tiny: horizon {data.horizon}, data seed {data.seed}); "
             f"label+desc queries are \"label. description\"",
             "load average (1, 5, 15 min) when the run ended: " + ", ".join(f"{x:.1f}" for x in os.getloadavg()),
             f"default rule (val only): the highest val SR ceiling with plan CPU time <= {args.budget_ms:g} ms; "
             f"{CURRENT_DEFAULT} stays unless beaten by more than {margin:.1f} points (the most one step's "
             f"retrieval can move the val ceiling). Chosen: **{chosen}**", *skipped]
    stem = "text-encoders" + ("-quick" if args.quick else "")
    plot = bar_plot(args.out / f"{stem}.png", "Open-vocabulary SR ceiling per text encoder", list(results),
                    {f"{s} SR ceiling": [results[k][f"{s} label ceiling"] for k in results] for s in ("val", "test")},
                    "SR ceiling (%)")
    return [write_report(args.out / f"{stem}.md", "Text encoders: the open-vocabulary ceiling", command,
                         "none (deterministic retrieval; latency is a median)", [quality, cost], notes, plot), plot]
