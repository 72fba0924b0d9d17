"""The bundled model's plans on 20 fixed tabletop samples, pinned: restructuring the code must not
change a single plan. Each of the three ways a plan is made is pinned on the same samples: the
Planner on the torch backend and on ONNX Runtime (the robot's paths, one sample at a time, with
captions and open-vocabulary labels from the paraphrased list), and evaluation's batched
predictions (what every results file is scored from).

An intended change of behaviour re-pins with `python test/test_pinned_plans.py --write`, and
its commit says why the plans moved.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

PINNED = Path(__file__).resolve().parent / "data" / "pinned_plans.json"
SAMPLES = dict(split="test", horizon=3, seed=11, num_samples=20)
SCORE_TOLERANCE = 1e-4  # float32 kernels may differ in the last bits between runs; ids and words may not


def samples():
    from training.tabletop import load_tabletop, vocabulary

    dataset = load_tabletop(observation="images", progress=False, **SAMPLES)
    return dataset, list(vocabulary(paraphrase=True).labels)


def planner_plans(backend: str, dataset, labels: list[str]) -> list[dict]:
    from planllm_ros.runtime.cli import default_model_dir
    from planllm_ros.runtime.planner import Planner

    planner = Planner.from_dir(default_model_dir(), backend=backend)
    try:
        plans = [planner.plan(s.start, s.goal, horizon=SAMPLES["horizon"], labels=labels) for s in dataset.samples]
    finally:
        planner.close()
    return [{"step_ids": p.step_ids, "captions": p.captions, "open_vocab_labels": p.open_vocab_labels,
             "scores": [round(x, 6) for x in p.scores]} for p in plans]


def evaluation_plans(dataset) -> dict:
    from planllm_ros.runtime.cli import default_model_dir
    from training.evaluation.evaluate import load_for_eval, predictions

    predicted = predictions(load_for_eval(default_model_dir()), dataset, batch_size=8)
    return {"closed": predicted["closed"].tolist(), "open": predicted["open"].tolist(),
            "captions": predicted["captions"]}


def current() -> dict:
    dataset, labels = samples()
    return {"samples": SAMPLES, "torch": planner_plans("torch", dataset, labels),
            "onnxruntime": planner_plans("onnxruntime", dataset, labels), "evaluation": evaluation_plans(dataset)}


@pytest.fixture(scope="module")
def pinned_and_current():
    return json.loads(PINNED.read_text(encoding="utf-8")), current()


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_planner_plans_are_unchanged(pinned_and_current, backend):
    pinned, now = pinned_and_current
    assert now["samples"] == pinned["samples"]
    for i, (want, got) in enumerate(zip(pinned[backend], now[backend], strict=True)):
        assert got["step_ids"] == want["step_ids"], f"sample {i}"
        assert got["captions"] == want["captions"], f"sample {i}"
        assert got["open_vocab_labels"] == want["open_vocab_labels"], f"sample {i}"
        np.testing.assert_allclose(got["scores"], want["scores"], atol=SCORE_TOLERANCE, err_msg=f"sample {i}")


def test_evaluation_predictions_are_unchanged(pinned_and_current):
    pinned, now = pinned_and_current
    assert now["evaluation"] == pinned["evaluation"]


def test_the_pins_tell_plans_apart(pinned_and_current):
    """Negative control: the pinned samples are not all planned alike, so a planner that ignored
    its inputs (or a broken sample generator) could not match the pins."""
    pinned, _ = pinned_and_current
    assert len({tuple(p["step_ids"]) for p in pinned["torch"]}) >= 10
    assert len({tuple(p["open_vocab_labels"]) for p in pinned["torch"]}) >= 10


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python test/test_pinned_plans.py --write   (re-pins the current plans)")
    PINNED.parent.mkdir(exist_ok=True)
    PINNED.write_text(json.dumps(current(), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {PINNED}")
