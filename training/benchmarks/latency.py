"""The planner's share of `planllm bench latency` (planllm_ros/tools/latency.py drives the node
and writes the results): what an in-process Planner costs, with no ROS in sight.

- per-stage p50 / p95 at batch 1 for every backend that loads here, as Planner.from_dir gives it
  (measure_latency; a backend that cannot load is listed with why), torch and ONNX Runtime again
  with --threads per op when that is not the default, and the ONNX Runtime / torch speed-up;
  "steps" is the time to the step ids, which the planner hands out before the captions;
- open vocabulary: the torch planner given 100 candidate labels, by the model's
  decoding.open_vocab method: the first plan with the list (it embeds the labels and builds
  the label mapping) and the open_vocab stage of every later plan, against the 20 ms budget.
"""
from __future__ import annotations

import resource
from pathlib import Path

import numpy as np
import torch

# (row label, backend, Planner.from_dir options): each backend as Planner.from_dir gives it to a user
CPU_BACKENDS = (("torch", "torch", {}), ("onnxruntime", "onnxruntime", {}), ("tensorrt", "tensorrt", {}))
STAGES = ("backbone", "heads", "decode", "steps", "captions", "open_vocab", "total")
OPEN_VOCAB_LABELS = 100  # candidate labels per plan in the open-vocabulary measurement
OPEN_VOCAB_BUDGET_MS = 20.0  # what naming a plan from 100 labels may add on the CPU


def percentile_table(timings: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """{stage: {"p50": ms, "p95": ms}} over repeated runs."""
    table = {}
    for stage in STAGES:
        values = np.array([t[stage] for t in timings if stage in t], dtype=np.float64)
        if values.size:
            table[stage] = {"p50": float(np.percentile(values, 50)), "p95": float(np.percentile(values, 95))}
    return table


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure_latency(planner, start: np.ndarray, goal: np.ndarray, runs: int = 20, warmup: int = 3,
                    labels: list[str] | None = None, horizon: int | None = None) -> dict:
    """Plan `warmup + runs` times (with candidate `labels`, if given); per-stage p50/p95 of the
    timed runs (with "steps": from the start of a plan to its step ids, when captions follow
    them), peak RSS, and the CUDA peak when the planner runs on a GPU."""
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    for _ in range(warmup):
        planner.plan(start, goal, labels=labels, horizon=horizon)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    timings = []
    for _ in range(runs):
        steps: dict[str, float] = {}
        plan = planner.plan(start, goal, labels=labels, horizon=horizon,
                            on_steps=lambda first: steps.update(steps=first.timings_ms["total"]))
        timings.append({**plan.timings_ms, **steps})
    result = {"runs": runs, "stages_ms": percentile_table(timings), "peak_rss_mb": peak_rss_mb()}
    if torch.cuda.is_available() and planner.device.type == "cuda":
        result["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def cpu_backends(threads: int) -> tuple[tuple[str, str, dict], ...]:
    """CPU_BACKENDS (what Planner.from_dir gives a user), and torch and ONNX Runtime again with
    `threads` per op (the benchmark's --threads), side by side, unless those are the defaults."""
    from planllm_ros.runtime.threads import thread_settings

    tuned = thread_settings(threads)
    if tuned == thread_settings():
        return CPU_BACKENDS
    return CPU_BACKENDS + tuple((f"{name}, {tuned.torch} thread(s)", name, {"threads": threads})
                                for name in ("torch", "onnxruntime"))


def planner_latency(model: Path, runs: int, device: str = "cpu", backends=CPU_BACKENDS,
                    captions: bool = True) -> dict[str, dict | str]:
    """{row label: measure_latency(...) result, or the reason it did not load here}.
    `backends`: (row label, backend, Planner.from_dir options) triples."""
    from planllm_ros.runtime.errors import PlannerError
    from planllm_ros.runtime.planner import Planner

    rng = np.random.default_rng(0)
    start, goal = (rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(2))
    results: dict[str, dict | str] = {}
    for label, backend, options in backends:
        try:
            planner = Planner.from_dir(model, backend=backend, device=device, captions=captions, **options)
        except (PlannerError, ImportError, RuntimeError) as error:
            results[label] = f"not available here: {error}".splitlines()[0]
            continue
        try:
            # at the model's own T, where every stage runs (captions included); a model that
            # chooses T would pick some number for random images, and skip captions at any other
            results[label] = {**measure_latency(planner, start, goal, runs=runs, horizon=planner.horizon),
                              "threads": planner.threads.describe()}
        finally:
            planner.close()
    return results


def speedup_line(planner: dict[str, dict | str]) -> str:
    """How much faster the ONNX Runtime planner's p50 total is than torch's, both as
    Planner.from_dir gives them (the rows named by the backend alone), in this one run."""
    torch_result, ort_result = planner.get("torch"), planner.get("onnxruntime")
    if not isinstance(torch_result, dict) or not isinstance(ort_result, dict):
        return "ONNX Runtime vs torch: not both measured here"
    slow, fast = (r["stages_ms"]["total"]["p50"] for r in (torch_result, ort_result))
    return (f"**ONNX Runtime planner p50 total {fast:.1f} ms vs torch {slow:.1f} ms: {slow / fast:.2f}x faster** "
            f"(Planner.from_dir's defaults: {ort_result['threads']})")


def open_vocab_latency(model: Path, runs: int) -> dict:
    """The torch planner with OPEN_VOCAB_LABELS candidate labels (the tabletop paraphrases, both
    sets): ms of the first plan's open_vocab stage (embeds the labels, builds the mapping) and
    p50/p95 of the stage in `runs` later plans, with the method that named them."""
    from planllm_ros.runtime.planner import Planner
    from training.tabletop.paraphrases import paraphrase_labels

    labels = [*paraphrase_labels("test"), *paraphrase_labels("val")][:OPEN_VOCAB_LABELS]
    rng = np.random.default_rng(0)
    start, goal = (rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(2))
    planner = Planner.from_dir(model, backend="torch")
    try:
        planner.plan(start, goal)  # warm the model itself first: only the labels' cost is wanted below
        first = planner.plan(start, goal, labels=labels)
        result = measure_latency(planner, start, goal, runs=runs, warmup=1, labels=labels)
    finally:
        planner.close()
    return {"first_ms": first.timings_ms["open_vocab"], "method": first.open_vocab_method,
            "labels": len(labels), **result}
