"""The model card of an exported model: what it is, what it knows, how good it is, and which
exact files make it up.

model_card.json is read by the runtime (labels, transition matrix for Viterbi, the backbone
that made the features); MODEL_CARD.md is the same for humans. File hashes let a robot's
operator check that a copied model folder is the one that was evaluated, and the training
record (the commit and code version that trained the weights, which the trainer writes into
the model folder) lets anyone check out the code that made them.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from planllm_ros.model.folder import CARD_JSON, CARD_MD, write_text_atomic
from planllm_ros.model.hashing import file_sha256

FORMAT_VERSION = 1
TRAINING_RECORD_FILE = "training_record.json"  # in a model folder: the code that trained it


class ModelCardError(ValueError):
    """model_card.json is missing or malformed; the message names the file and the field."""


def file_hashes(directory: Path) -> dict[str, str]:
    """sha256 of every file under `directory` (relative posix paths), the card itself excluded."""
    return {
        path.relative_to(directory).as_posix(): file_sha256(path)
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.name not in (CARD_JSON, CARD_MD)
    }


def write_model_card(directory: str | Path, *, name: str, config: dict[str, Any], labels: list[str],
                     descriptions: list[str], transition: np.ndarray | None,
                     metrics: dict[str, Any] | None, source: dict[str, Any], parity: dict[str, float]) -> dict:
    """Write model_card.json and MODEL_CARD.md into `directory` (after every other file, so
    the hashes cover them) and return the card."""
    directory = Path(directory)
    if len(descriptions) != len(labels):
        raise ValueError(f"{len(descriptions)} descriptions for {len(labels)} step labels")
    if transition is not None and transition.shape != (len(labels), len(labels)):
        raise ValueError(f"transition matrix {transition.shape} does not fit {len(labels)} step labels")
    card = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "horizon": int(config["horizon"]),
        "feature_source": config["visual"].get("backbone"),
        "feature_dim": int(config["visual"]["feature_dim"]),
        "labels": list(labels),
        "descriptions": list(descriptions),
        "transition": None if transition is None else np.asarray(transition, dtype=float).round(8).tolist(),
        "metrics": metrics or {},
        "parity_max_abs_diff": parity,
        "source": source,
        "training": read_training_record(source["path"]) if source.get("path") else None,
        "config": config,
        "files": file_hashes(directory),
    }
    _write(directory, card)
    return card


def _write(directory: Path, card: dict) -> None:
    write_text_atomic(directory / CARD_JSON, json.dumps(card, indent=1))
    write_text_atomic(directory / CARD_MD, _markdown(card))


def add_metrics(directory: str | Path, name: str, metrics: dict[str, Any]) -> dict:
    """Record evaluation metrics under `name` (e.g. "test", "val onnxruntime") in an exported
    folder's card; the file hashes stay valid (the card files are not hashed)."""
    directory = Path(directory)
    card = read_model_card(directory)
    if card is None:
        raise ModelCardError(f"{directory} has no {CARD_JSON}: export it first (`planllm export`)")
    card["metrics"][name] = metrics
    _write(directory, card)
    return card


def read_training_record(model_dir: str | Path) -> dict | None:
    """The training record of a model folder (commit, code version, uncommitted files), or None
    for a folder written before models recorded it."""
    path = Path(model_dir) / TRAINING_RECORD_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelCardError(f"{path} is corrupt: {error}") from error


def _describe_checkout(record: dict | None) -> str:
    if not record or not record.get("commit"):
        return (record or {}).get("note") or "not recorded"
    text = record["commit"][:7]
    if record.get("uncommitted") is None:
        return text + " (uncommitted changes unknown)"
    return text + (f" with uncommitted changes in {', '.join(record['uncommitted'])}" if record["uncommitted"] else "")


def describe_training(record: dict | None) -> str:
    """The training commit in words: the short commit, and whether the tree had uncommitted
    changes. A run resumed from a checkpoint written by other code says so, with that code:
    its weights are the work of both."""
    text = _describe_checkout(record)
    earlier = dict.fromkeys(_describe_checkout(r) for r in (record or {}).get("earlier_segments") or [])
    earlier.pop(text, None)
    return text + (f" (resumed from a checkpoint trained at {'; '.join(earlier)})" if earlier else "")


def read_model_card(directory: str | Path) -> dict | None:
    """The card of an exported model folder; None for a folder without one (a model saved by
    PlanLLM.save_pretrained only). A card that exists but is broken is an error."""
    path = Path(directory) / CARD_JSON
    if not path.exists():
        return None
    try:
        card = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelCardError(f"{path} is corrupt: {error}") from error
    for key in ("labels", "horizon", "transition", "files"):
        if not isinstance(card, dict) or key not in card:
            raise ModelCardError(f"{path} lacks the field {key!r}")
    return card


def verify_files(directory: str | Path, card: dict) -> list[str]:
    """Files whose content no longer matches the card (missing ones included)."""
    directory = Path(directory)
    bad = []
    for rel, digest in card["files"].items():
        path = directory / rel
        if not path.is_file() or file_sha256(path) != digest:
            bad.append(rel)
    return bad


def _markdown(card: dict) -> str:
    config = card["config"]
    lines = [
        f"# Model card: {card['name']}",
        "",
        f"- horizon T = {card['horizon']}, {len(card['labels'])} steps, hidden_dim {config.get('hidden_dim')}",
        f"- visual features: {card['feature_source'] or 'precomputed'} ({card['feature_dim']}-d); "
        f"text encoder: {config.get('text', {}).get('encoder')}",
        f"- LLM: {config.get('llm', {}).get('path') or 'built-in tiny Llama'} (LoRA merged); "
        f"variant: {config.get('variant')}",
        f"- source: {json.dumps(card['source'])}",
        f"- trained at commit: {describe_training(card.get('training'))}",
        f"- ONNX Runtime vs torch, max |diff| (fp32): {json.dumps(card['parity_max_abs_diff'])}",
        f"- int8 backbone: {json.dumps(card['source'].get('int8'))}",
        "",
        "## Metrics",
        "",
        "Percent. sr: whole sequence right; macc: per position; miou: the peer-compatible bitwise mIoU "
        "(comparable with published tables, not a set IoU); miou_set: set IoU. closed: "
        "closed-set decoding; open: the split's label texts, named by the model's decoding.open_vocab method.",
        "",
    ]
    if card["metrics"]:
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {k} | {_cell(v)} |" for k, v in _flatten(card["metrics"]).items()]
    else:
        lines.append("No evaluation recorded yet (`planllm eval --checkpoint DIR --split test --card`).")
    lines += ["", "## Steps", "", "| id | label | description |", "|---|---|---|"]
    lines += [f"| {i} | {label} | {desc} |" for i, (label, desc) in enumerate(zip(card["labels"], card["descriptions"]))]
    lines += ["", "The train-set transition matrix (Viterbi) is in model_card.json and transition.safetensors.",
              "", "## Files (sha256)", ""]
    lines += [f"- `{rel}` {digest}" for rel, digest in card["files"].items()]
    lines.append("")
    return "\n".join(lines)


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """{"closed": {"sr": 1.0}} -> {"closed sr": 1.0}: one table row per leaf."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + " "))
        else:
            flat[name] = value
    return flat


def _cell(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)
