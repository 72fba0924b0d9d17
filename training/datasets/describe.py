"""Step labels expanded into SCHEMA-format descriptions with a local LLM (Eq. 2), for `planllm describe`.

Labels come as a JSON object {task: [step label, ...]}, a JSON list of labels, or a text file
with one "task<TAB>step" (or just "step") per line. The output is SCHEMA-format JSON,
{task: {step: {"description", "before": [...], "after": [...]}}}.

The out file is also the cache: steps already in it are kept, and it is rewritten atomically
after every step, so an interrupted run resumes where it stopped. The LM is prompted with one
worked example per step and its answer parsed line by line; a field it fails to produce (a
tiny or confused LM emits junk) falls back to the label itself and neutral state sentences,
and the run reports how many steps needed a fallback.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import torch

EXAMPLE = (
    "Task: Make Jello Shots\n"
    "Step: pour water\n"
    "Description: Pour water into the jello mix.\n"
    "Before: The water is in a container.; The jello mix contains no water.\n"
    "After: The water is mixed with the jello mix.; The jello mix contains water.\n\n"
)
_WORDS = re.compile(r"[A-Za-z]{2,}")
DEFAULT_TASK = "default"


def read_labels(path: Path) -> dict[str, list[str]]:
    """task -> step labels, from any of the three accepted formats."""
    if not path.is_file():
        raise FileNotFoundError(f"labels file not found: {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from error
        if isinstance(data, list):
            data = {DEFAULT_TASK: data}
        if not isinstance(data, dict) or not all(
                isinstance(v, list) and all(isinstance(s, str) for s in v) for v in data.values()):
            raise ValueError(f"{path}: expected {{task: [step label, ...]}} or [step label, ...]")
        return {str(task): [s.strip() for s in steps if s.strip()] for task, steps in data.items()}
    tasks: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip():
            task, _, step = line.rpartition("\t")
            tasks.setdefault(task.strip() or DEFAULT_TASK, []).append(step.strip())
    if not tasks:
        raise ValueError(f"{path}: no step labels in it")
    return tasks


def prompt_for(task: str, step: str) -> str:
    return f"{EXAMPLE}Task: {task}\nStep: {step}\nDescription:"


def _sentences(value: str) -> list[str]:
    """Split a "Before:/After:" answer into sentences, dropping junk (no real words)."""
    parts = [p.strip(" -*\t") for p in re.split(r";|\n", value)]
    return [p if p.endswith(".") else p + "." for p in parts if len(_WORDS.findall(p)) >= 2 and len(p) <= 200]


def parse_answer(answer: str, step: str) -> tuple[dict, bool]:
    """The LM's continuation after "Description:" -> (SCHEMA entry, whether a fallback was used)."""
    fields = {"description": "", "before": "", "after": ""}
    current = "description"
    for line in ("Description:" + answer).splitlines():
        if line.startswith("Task:") or line.startswith("Step:"):
            break  # the LM started another example
        key, sep, rest = line.partition(":")
        if sep and key.strip().lower() in fields:
            current = key.strip().lower()
            fields[current] = rest.strip()
        elif line.strip():
            fields[current] += " " + line.strip()
    description = fields["description"].strip()
    before, after = _sentences(fields["before"]), _sentences(fields["after"])
    fallback = False
    if len(_WORDS.findall(description)) < 2 or len(description) > 300:
        description, fallback = step[:1].upper() + step[1:] + ".", True
    if not before:
        before, fallback = [f"The step \"{step}\" has not been done yet."], True
    if not after:
        after, fallback = [f"The step \"{step}\" has been done."], True
    return {"description": description, "before": before, "after": after}, fallback


def _write_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def read_existing(path: Path) -> dict:
    """What an earlier run wrote to `path` (empty when there is none): the steps to keep."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: existing output is not valid JSON ({error}); move it away to start over") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path}: existing output is not a SCHEMA-format object")
    return data


@torch.no_grad()
def describe_step(model, tokenizer, task: str, step: str, max_new_tokens: int) -> tuple[dict, bool]:
    encoded = tokenizer(prompt_for(task, step), return_tensors="pt").to(model.device)
    tokens = model.generate(**encoded, max_new_tokens=max_new_tokens, do_sample=False,
                            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    answer = tokenizer.decode(tokens[0, encoded["input_ids"].shape[1]:], skip_special_tokens=True)
    return parse_answer(answer, step)


def describe_all(todo: list[tuple[str, str]], described: dict, path: Path, model, tokenizer,
                 max_new_tokens: int) -> Iterator[tuple[str, str, dict, bool]]:
    """Describe each (task, step) of `todo` into `described`, rewriting `path` after every step so
    an interrupted run resumes there; yields (task, step, entry, whether a fallback was used)."""
    for task, step in todo:
        entry, fell_back = describe_step(model, tokenizer, task, step, max_new_tokens)
        described.setdefault(task, {})[step] = entry
        _write_atomic(path, described)
        yield task, step, entry, fell_back
