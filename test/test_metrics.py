"""Exact, hand-worked tests of the metrics and of Viterbi decoding."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from planllm_ros.model.decoding import plan_candidates
from training.evaluation.metrics import argmax_decode, batch_set_iou, procedure_metrics, viterbi


def test_metrics_hand_worked():
    pred = np.array([[1, 2, 3], [4, 5, 6]])
    gt = np.array([[1, 2, 3], [4, 6, 5]])
    m = procedure_metrics(pred, gt)
    assert m["sr"] == pytest.approx(50.0)
    assert m["macc"] == pytest.approx(100 * 4 / 6)
    # bitwise: sample 0 -> 6/6; sample 1 -> (4 + 4 + 4) / (4 + 7 + 7) = 12/18
    assert m["miou"] == pytest.approx(100 * (1 + 12 / 18) / 2, rel=1e-6)
    assert m["miou_set"] == pytest.approx(100.0)


def test_set_iou_counts_distinct_steps():
    m = procedure_metrics(np.array([[1, 1, 2]]), np.array([[1, 2, 3]]))
    assert m["miou_set"] == pytest.approx(100 * 2 / 3)
    assert m["sr"] == 0.0
    assert m["macc"] == pytest.approx(100 / 3)


def test_bitwise_miou_of_all_zero_ids_is_one():
    # (0 & 0) = (0 | 0) = 0: the 1e-6 smoothing makes this a perfect score, as peers compute it.
    m = procedure_metrics(np.zeros((1, 3), dtype=int), np.zeros((1, 3), dtype=int))
    assert m["miou"] == pytest.approx(100.0)


def test_bitwise_miou_is_not_a_set_iou():
    # Same step sets in another order: set IoU is perfect, the peers' bitwise form is not.
    m = procedure_metrics(np.array([[1, 2]]), np.array([[2, 1]]))
    assert m["miou_set"] == pytest.approx(100.0)
    assert m["miou"] == pytest.approx(100 * (0 + 1e-6) / (6 + 1e-6))


def test_batch_set_iou_depends_on_batch_size():
    pred = np.array([[1, 2], [3, 4]])
    gt = np.array([[1, 2], [5, 6]])
    assert batch_set_iou(pred, gt, batch_size=1) == pytest.approx(50.0)
    assert batch_set_iou(pred, gt, batch_size=2) == pytest.approx(100 * 2 / 6)


@pytest.mark.parametrize("pred,gt", [
    (np.zeros((2, 3), dtype=int), np.zeros((2, 4), dtype=int)),
    (np.zeros(3, dtype=int), np.zeros(3, dtype=int)),
    (np.zeros((2, 3)), np.zeros((2, 3))),
    (np.zeros((0, 3), dtype=int), np.zeros((0, 3), dtype=int)),
])
def test_metrics_reject_bad_shapes_and_types(pred, gt):
    with pytest.raises(ValueError):
        procedure_metrics(pred, gt)


def test_viterbi_hand_worked_beats_argmax():
    probs = np.array([[0.6, 0.4], [0.5, 0.5]])
    trans = np.array([[0.1, 0.9], [0.8, 0.2]])
    # path scores: (0,0) .03, (0,1) .27, (1,0) .16, (1,1) .04
    assert viterbi(probs, trans).tolist() == [0, 1]
    assert argmax_decode(probs).tolist() == [0, 0]


def test_viterbi_three_steps_hand_worked():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.4, 0.3]])
    trans = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])  # a strict cycle 0->1->2->0
    # feasible paths: 0,1,2 (.7*.1*.3=.021)  1,2,0 (.2*.8*.3=.048)  2,0,1 (.1*.1*.4=.004)
    assert viterbi(probs, trans).tolist() == [1, 2, 0]


def test_viterbi_batched_and_torch_inputs():
    probs = torch.tensor([[[0.6, 0.4], [0.5, 0.5]], [[0.1, 0.9], [0.9, 0.1]]])
    trans = torch.tensor([[0.1, 0.9], [0.8, 0.2]])
    out = viterbi(probs, trans)
    assert out.dtype == np.int64
    assert out.tolist() == [[0, 1], [1, 0]]


def test_viterbi_rejects_mismatched_transition():
    with pytest.raises(ValueError, match="transition"):
        viterbi(np.ones((3, 4)) / 4, np.ones((3, 3)) / 3)


def _brute_force(probs: np.ndarray, trans: np.ndarray) -> float:
    best = -np.inf
    for path in itertools.product(range(probs.shape[1]), repeat=probs.shape[0]):
        score = np.log(probs[0, path[0]]) + sum(
            np.log(probs[t, path[t]]) + np.log(trans[path[t - 1], path[t]]) for t in range(1, len(path)))
        best = max(best, score)
    return best


def _path_score(path, probs, trans) -> float:
    return float(np.log(probs[0, path[0]]) + sum(
        np.log(probs[t, path[t]]) + np.log(trans[path[t - 1], path[t]]) for t in range(1, len(path))))


positive = st.floats(min_value=0.01, max_value=1.0, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(2, 4)), elements=positive), st.data())
def test_viterbi_matches_brute_force(probs, data):
    n = probs.shape[1]
    trans = data.draw(arrays(np.float64, (n, n), elements=positive))
    probs = probs / probs.sum(axis=1, keepdims=True)
    trans = trans / trans.sum(axis=1, keepdims=True)
    path = viterbi(probs, trans)
    assert _path_score(path, probs, trans) == pytest.approx(_brute_force(probs, trans), abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(2, 4)), elements=positive), st.data(),
       st.integers(1, 6))
def test_plan_candidates_are_viterbi_first_then_by_score(probs, data, width):
    n = probs.shape[1]
    trans = data.draw(arrays(np.float64, (n, n), elements=positive))
    probs = probs / probs.sum(axis=1, keepdims=True)
    trans = trans / trans.sum(axis=1, keepdims=True)
    paths, scores = plan_candidates(probs, trans, width)
    every = sorted((_path_score(p, probs, trans) for p in itertools.product(range(n), repeat=probs.shape[0])),
                   reverse=True)
    assert len(paths) == min(width, len(every)) and len({tuple(p) for p in paths}) == len(paths)
    assert paths[0].tolist() == viterbi(probs, trans).tolist()
    assert scores.tolist() == pytest.approx([_path_score(p, probs, trans) for p in paths], abs=1e-9)
    assert all(a >= b - 1e-12 for a, b in zip(scores, scores[1:]))
    if width >= n ** (probs.shape[0] - 1):  # the beam then keeps every prefix: exactly the k best
        assert scores.tolist() == pytest.approx(every[:width], abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(arrays(np.int64, st.tuples(st.integers(1, 6), st.integers(1, 5)), elements=st.integers(0, 7)), st.data())
def test_metric_ranges_and_perfect_prediction(gt, data):
    pred = data.draw(arrays(np.int64, gt.shape, elements=st.integers(0, 7)))
    m = procedure_metrics(pred, gt)
    assert all(0.0 <= v <= 100.0 + 1e-9 for v in m.values())
    assert m["sr"] <= m["macc"] + 1e-9
    perfect = procedure_metrics(gt, gt)
    assert perfect["sr"] == perfect["macc"] == 100.0
    assert perfect["miou"] == pytest.approx(100.0) and perfect["miou_set"] == pytest.approx(100.0)
