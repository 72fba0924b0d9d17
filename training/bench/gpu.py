"""`planllm bench gpu`: what the production LLM and the exported graphs cost on a GPU.

1. Caption generation with a Vicuna-7B-shaped Llama (random fp16 weights: speed does not depend
   on their values): decode tokens/s (greedy, KV cache) against the memory-bandwidth floor. Each
   decoded token reads every weight once, so tokens/s cannot exceed measured bandwidth /
   weight bytes; the table gives both and their ratio. Bandwidth is measured here with a large
   device-to-device copy (bytes read + written / time).
2. Q-Former and heads latency (the Planner's "heads" stage, batch 1) for torch, onnxruntime with
   the CUDA and TensorRT execution providers, and the TensorRT backend, on a model folder with
   ONNX graphs (default: the bundled tabletop-tiny).

Where CUDA is absent the benchmark measures nothing and writes a results file that says so.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from training.bench.latency import planner_latency
from training.bench.report import Table, bar_plot, environment, write_report

# Vicuna-7B v1.5 (Llama-2-7B architecture)
VICUNA_7B = {"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
             "num_key_value_heads": 32, "vocab_size": 32000, "max_position_embeddings": 4096}
PROMPT_TOKENS = 48  # prompt prefix + 2 visual tokens + T query tokens + suffix, as the PlanLLM LLM input
GRAPH_BACKENDS = (("torch", {}), ("onnxruntime", {"provider": "cuda"}), ("onnxruntime", {"provider": "tensorrt"}),
                  ("tensorrt", {}))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=None,
                        help="model folder with onnx/ for the graph latency (default: the bundled tabletop-tiny)")
    parser.add_argument("--layers", type=int, default=None, help="Llama layers (default 32 as Vicuna-7B; quick 2)")
    parser.add_argument("--new-tokens", type=int, default=None, help="tokens generated per run (default 64; quick 16)")
    parser.add_argument("--runs", type=int, default=None, help="timed runs (default 10; quick 3)")


def bandwidth_gb_s(gib: float = 2.0, repeats: int = 10) -> float:
    """Device memory bandwidth from a large copy: (read + write bytes) / time, in GB/s."""
    import torch

    src = torch.empty(int(gib * 2**30) // 2, dtype=torch.float16, device="cuda")
    dst = torch.empty_like(src)
    dst.copy_(src)
    torch.cuda.synchronize()
    began = time.perf_counter()
    for _ in range(repeats):
        dst.copy_(src)
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - began) / repeats
    moved = 2 * src.numel() * src.element_size()
    del src, dst
    torch.cuda.empty_cache()
    return moved / seconds / 1e9


def llm_decode(layers: int, new_tokens: int, runs: int) -> dict[str, float]:
    """Decode tokens/s of a Vicuna-7B-shaped Llama with `layers` layers (random fp16 weights)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**{**VICUNA_7B, "num_hidden_layers": layers}, torch_dtype="float16")
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).half().eval()
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    embeds = torch.randn(1, PROMPT_TOKENS, config.hidden_size, dtype=torch.float16, device="cuda")

    def timed(tokens: int) -> float:
        torch.cuda.synchronize()
        began = time.perf_counter()
        with torch.no_grad():
            model.generate(inputs_embeds=embeds, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False,
                           use_cache=True, pad_token_id=0, eos_token_id=None)
        torch.cuda.synchronize()
        return time.perf_counter() - began

    timed(new_tokens)  # warm-up (kernels, allocator)
    prefill = sorted(timed(1) for _ in range(runs))[runs // 2]
    full = sorted(timed(new_tokens) for _ in range(runs))[runs // 2]
    result = {"layers": layers, "weight_gb": weight_bytes / 1e9, "prefill_ms": prefill * 1000.0,
              "decode_tokens_per_s": (new_tokens - 1) / (full - prefill), "peak_cuda_gb": torch.cuda.max_memory_allocated() / 1e9}
    del model
    torch.cuda.empty_cache()
    return result


def not_run(args: argparse.Namespace, command: str, reason: str) -> list[Path]:
    """The results file of a machine without CUDA: nothing measured, and why."""
    stem = "gpu-quick" if args.quick else "gpu"
    notes = [f"NOT RUN: {reason}. No number in this file was measured; nothing was estimated either.",
             "to run it: `planllm bench gpu` on a machine with an NVIDIA GPU, CUDA-enabled torch and onnxruntime-gpu "
             "(TensorRT rows need the tensorrt Python package)",
             "what it measures: Vicuna-7B-shaped Llama (random fp16 weights) decode tokens/s vs the bandwidth floor "
             "(weight bytes / measured bandwidth per token); Q-Former + heads latency for torch, onnxruntime-CUDA, "
             "onnxruntime-TensorRT and TensorRT"]
    table = Table("Measurements", ["measurement", "result"],
                  [["7B-shaped LLM decode tokens/s", "not run"], ["memory-bandwidth floor", "not run"],
                   ["Q-Former + heads latency per backend", "not run"]])
    return [write_report(args.out / f"{stem}.md", "GPU: 7B-shaped LLM decoding and graph latency", command,
                         "n/a", [table], notes)]


def run(args: argparse.Namespace, command: str) -> list[Path]:
    import torch

    if not torch.cuda.is_available():
        return not_run(args, command, f"no CUDA device on this machine ({environment()['machine']}; "
                                      "torch.cuda.is_available() is False); this session was lent no GPU machine")
    from planllm_ros.paths import models_dir

    layers = args.layers or (2 if args.quick else VICUNA_7B["num_hidden_layers"])
    new_tokens = args.new_tokens or (16 if args.quick else 64)
    runs = args.runs or (3 if args.quick else 10)
    bandwidth = bandwidth_gb_s()
    llm = llm_decode(layers, new_tokens, runs)
    floor = bandwidth / llm["weight_gb"]  # tokens/s if every token only streamed the weights once
    llm_table = Table(f"Vicuna-7B-shaped Llama, {layers} layer(s), fp16, batch 1, prompt {PROMPT_TOKENS} embeddings, "
                      f"{new_tokens} new tokens, median of {runs}",
                      ["weights (GB)", "measured bandwidth (GB/s)", "prefill (ms)", "decode tokens/s",
                       "bandwidth floor tokens/s", "share of the floor", "peak CUDA memory (GB)"],
                      [[f"{llm['weight_gb']:.2f}", f"{bandwidth:.0f}", f"{llm['prefill_ms']:.1f}",
                        f"{llm['decode_tokens_per_s']:.1f}", f"{floor:.1f}",
                        f"{100 * llm['decode_tokens_per_s'] / floor:.0f} %", f"{llm['peak_cuda_gb']:.1f}"]])
    model = args.model or models_dir() / "tabletop-tiny"
    graphs = planner_latency(model, runs * 5, device="cuda", backends=GRAPH_BACKENDS, captions=False)
    graph_table = Table(f"Q-Former + heads (the Planner's heads stage), batch 1, `{model}` (ms)",
                        ["backend", "heads p50", "heads p95", "note"])
    for label, result in graphs.items():
        if isinstance(result, str):
            graph_table.rows.append([label, "n/a", "n/a", result])
        else:
            heads = result["stages_ms"]["heads"]
            graph_table.rows.append([label, f"{heads['p50']:.2f}", f"{heads['p95']:.2f}", ""])
    stem = "gpu-quick" if args.quick else "gpu"
    measured = {k: v for k, v in graphs.items() if not isinstance(v, str)}
    plot = bar_plot(args.out / f"{stem}.png", "Q-Former + heads latency p50 (GPU, batch 1)", list(measured),
                    {"heads p50": [v["stages_ms"]["heads"]["p50"] for v in measured.values()]}, "ms")
    notes = ["random fp16 weights: decoding speed does not depend on their values",
             "bandwidth floor: a decoded token reads all weights once, so tokens/s <= bandwidth / weight bytes",
             "the heads stage includes the model's own LLM forward for h (the tiny built-in Llama for tabletop-tiny)"]
    report = write_report(args.out / f"{stem}.md", "GPU: 7B-shaped LLM decoding and graph latency", command,
                          "0 (torch default generator for the random weights)", [llm_table, graph_table], notes, plot)
    return [report, plot]
