"""Procedure-planning metrics. Two families, never to be mixed up in a table:

- peer-compatible (as SCHEMA / PlanLLM publish them): `sr`, `macc`, `miou` where `miou` is the
  element-wise *bitwise* AND/OR of 0-based class ids -- not a set IoU, kept only so numbers
  compare with the published tables;
- set-based: `miou_set`, the per-sample IoU of the predicted and true step sets, and
  `batch_set_iou`, the batch-level variant PDPP reports (depends on the batch size).

All values are percentages. Inputs are integer arrays of shape (B, T).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from planllm_ros.model.decoding import argmax_decode, viterbi

__all__ = ["procedure_metrics", "ragged_metrics", "batch_set_iou", "viterbi", "argmax_decode"]

_EPS = 1e-6


def _check(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    if pred.shape != gt.shape or pred.ndim != 2:
        raise ValueError(f"pred and gt must both have shape (B, T); got {pred.shape} and {gt.shape}")
    if not (np.issubdtype(pred.dtype, np.integer) and np.issubdtype(gt.dtype, np.integer)):
        raise ValueError(f"pred and gt must be integer step ids; got {pred.dtype} and {gt.dtype}")
    if pred.shape[0] == 0:
        raise ValueError("no samples to score")
    return pred.astype(np.int64), gt.astype(np.int64)


def procedure_metrics(pred, gt) -> dict[str, float]:
    """SR, mAcc, peer-compatible bitwise mIoU and per-sample set mIoU, in percent."""
    pred, gt = _check(pred, gt)
    correct = pred == gt
    bit_and = (pred & gt).sum(axis=1)
    bit_or = (pred | gt).sum(axis=1)
    miou_bitwise = (bit_and + _EPS) / (bit_or + _EPS)
    miou_set = [len(set(p) & set(g)) / len(set(p) | set(g)) for p, g in zip(pred.tolist(), gt.tolist())]
    return {
        "sr": 100.0 * float(correct.all(axis=1).mean()),
        "macc": 100.0 * float(correct.mean()),
        "miou": 100.0 * float(miou_bitwise.mean()),
        "miou_set": 100.0 * float(np.mean(miou_set)),
    }


def ragged_metrics(pred: Sequence[Sequence[int]], gt: Sequence[Sequence[int]]) -> dict[str, float]:
    """Metrics, in percent, of plans whose length may differ from the truth's (a planner that
    chose the number of steps): horizon accuracy (same length), SR (same length and every step
    right), mAcc (each true position right; one the plan does not reach is wrong) and set mIoU.
    On plans of the true length they are procedure_metrics' SR, mAcc and mIoU (set)."""
    if len(pred) != len(gt) or not len(gt):
        raise ValueError(f"pred and gt must hold the same number (> 0) of plans, got {len(pred)} and {len(gt)}")
    pred, gt = [list(p) for p in pred], [list(g) for g in gt]
    hits = [sum(i < len(p) and p[i] == s for i, s in enumerate(g)) for p, g in zip(pred, gt)]
    return {
        "horizon": 100.0 * float(np.mean([len(p) == len(g) for p, g in zip(pred, gt)])),
        "sr": 100.0 * float(np.mean([p == g for p, g in zip(pred, gt)])),
        "macc": 100.0 * sum(hits) / sum(len(g) for g in gt),
        "miou_set": 100.0 * float(np.mean([len(set(p) & set(g)) / len(set(p) | set(g)) for p, g in zip(pred, gt)])),
    }


def batch_set_iou(pred, gt, batch_size: int) -> float:
    """PDPP-style mIoU: split the samples into consecutive batches of `batch_size`, take the IoU
    of the set of every step id predicted anywhere in the batch with the set of every true id in
    the batch, and average over batches. Larger batches give higher numbers, which is why we
    report it separately and always with its batch size."""
    pred, gt = _check(pred, gt)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    ious = []
    for start in range(0, len(pred), batch_size):
        p = set(pred[start:start + batch_size].ravel().tolist())
        g = set(gt[start:start + batch_size].ravel().tolist())
        ious.append(len(p & g) / len(p | g))
    return 100.0 * float(np.mean(ious))
