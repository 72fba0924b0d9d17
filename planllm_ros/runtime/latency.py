"""Per-stage planning latency (p50 / p95 at batch 1) and peak memory of one backend.

`measure_latency` is the function the benchmark CLI calls; `write_latency_table` runs each
backend in its own child process (so each peak-RSS figure belongs to one backend alone) and
writes the Markdown table. Run by hand:

    python -m planllm_ros.runtime.latency --model models/tabletop-tiny --out bench/results/latency-cpu.md
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

STAGES = ("backbone", "heads", "captions", "decode", "total")


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


def measure_latency(planner, start: np.ndarray, goal: np.ndarray, runs: int = 20, warmup: int = 3) -> dict:
    """Plan `warmup + runs` times; per-stage p50/p95 of the timed runs, peak RSS, and the
    CUDA peak when the planner runs on a GPU."""
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    for _ in range(warmup):
        planner.plan(start, goal)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    timings = [planner.plan(start, goal).timings_ms for _ in range(runs)]
    result = {"runs": runs, "stages_ms": percentile_table(timings), "peak_rss_mb": peak_rss_mb()}
    if torch.cuda.is_available() and planner.device.type == "cuda":
        result["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def _sample_images(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two random 224x224 RGB frames: latency does not depend on what the images show."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
            rng.integers(0, 256, (224, 224, 3), dtype=np.uint8))


def _child(model: str, backend: str, device: str, runs: int, threads: int) -> dict:
    from planllm_ros.runtime.planner import Planner

    torch.set_num_threads(threads)
    options = {"threads": threads} if backend == "onnxruntime" else {}
    planner = Planner.from_dir(model, backend=backend, device=device, **options)
    start, goal = _sample_images()
    result = measure_latency(planner, start, goal, runs=runs)
    planner.close()
    return result


def machine_description() -> str:
    """CPU model, core count and the load average at the time of measuring (a shared machine's
    load inflates every number)."""
    import os

    cpu = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, load average {load}"


def write_latency_table(model: str, out: Path, backends: list[str], device: str, runs: int, threads: int) -> str:
    """Measure each backend in a fresh child process and write the Markdown table to `out`."""
    rows = []
    for backend in backends:
        command = [sys.executable, "-m", "planllm_ros.runtime.latency", "--model", model, "--backend", backend,
                   "--device", device, "--runs", str(runs), "--threads", str(threads), "--child"]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        rows.append((backend, json.loads(done.stdout.strip().splitlines()[-1])))
    lines = [
        f"# Planning latency on {device.upper()} (batch 1)",
        "",
        f"- model: `{model}`",
        f"- machine: {machine_description()}; torch / onnxruntime threads {threads}",
        f"- date: {datetime.date.today().isoformat()}",
        f"- command: `python -m planllm_ros.runtime.latency --model {model} --device {device} "
        f"--backends {' '.join(backends)} --runs {runs} --threads {threads} --out {out}`",
        f"- {runs} timed runs after 3 warm-up runs; inputs: two 224x224 RGB frames. Stages: backbone "
        "(frozen image encoder, torch in every backend), heads (projection, state interaction, "
        "Q-Former, LLM forward for h, step decoder / fusion / refiner), captions (LLM generation), total.",
        "",
        "| backend | " + " | ".join(f"{s} p50 / p95 (ms)" for s in STAGES) + " | peak RSS (MB) |",
        "|---|" + "---|" * (len(STAGES) + 1),
    ]
    for backend, result in rows:
        cells = [f"{result['stages_ms'][s]['p50']:.1f} / {result['stages_ms'][s]['p95']:.1f}" for s in STAGES]
        lines.append(f"| {backend} | " + " | ".join(cells) + f" | {result['peak_rss_mb']:.0f} |")
    text = "\n".join(lines) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--backends", nargs="+", default=["torch", "onnxruntime"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("bench/results/latency-cpu.md"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.model, args.backend, args.device, args.runs, args.threads)))
        return 0
    print(write_latency_table(args.model, args.out, args.backends, args.device, args.runs, args.threads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
