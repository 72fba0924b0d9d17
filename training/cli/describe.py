"""`planllm describe`: expand step labels into SCHEMA-format descriptions with a local LLM
(training/datasets/describe.py).

    planllm describe --labels steps.json --llm /models/vicuna-7b --out descriptions.json

--labels: a JSON object {task: [step label, ...]}, a JSON list of labels, or a text file with
one "task<TAB>step" (or just "step") per line. --llm: a local directory with any causal LM and
its tokenizer (loaded by the same code as the model's LLM branch; nothing is downloaded).
--out: SCHEMA-format JSON, also the cache an interrupted run resumes from.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from planllm_ros.model.llm import load_local_llm
from training.datasets.describe import describe_all, read_existing, read_labels


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--labels", required=True, type=Path, help="step labels: JSON {task: [steps]}, JSON list, or text")
    parser.add_argument("--llm", required=True, type=Path, help="local directory of a causal LM + tokenizer")
    parser.add_argument("--out", required=True, type=Path, help="SCHEMA-format JSON to write (and resume from)")
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])


def run(args: argparse.Namespace) -> int:
    tasks = read_labels(args.labels)
    described = read_existing(args.out)
    todo = [(t, s) for t, steps in tasks.items() for s in steps if s not in described.get(t, {})]
    total = sum(len(s) for s in tasks.values())
    print(f"describe: {total} steps, {total - len(todo)} already in {args.out}, {len(todo)} to generate")
    if not todo:
        return 0
    model, tokenizer = load_local_llm(args.llm, args.dtype)
    model.to(args.device).eval()
    fallbacks = 0
    steps = describe_all(todo, described, args.out, model, tokenizer, args.max_new_tokens)
    for index, (task, step, entry, fell_back) in enumerate(steps, 1):
        fallbacks += fell_back
        print(f"[{index}/{len(todo)}] {task} / {step}: {entry['description']}")
    print(f"describe: wrote {args.out}; {fallbacks} of {len(todo)} new steps used a fallback field")
    return 0
