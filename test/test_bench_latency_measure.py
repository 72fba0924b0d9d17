"""Latency measurement (what `planllm bench latency` uses): exact
percentiles, and a real measurement of a tiny planner."""
from __future__ import annotations

import numpy as np
import pytest

from training.benchmarks.latency import STAGES, cpu_backends, measure_latency, percentile_table
from planllm_ros.runtime.planner import Planner
from planllm_ros.runtime.threads import thread_settings
from runtime_helpers import save_tiny_model


def test_percentiles_are_exact():
    timings = [{"backbone": float(v), "heads": 1.0, "captions": 2.0, "decode": 0.5, "total": float(v) + 3.5}
               for v in range(1, 101)]
    table = percentile_table(timings)
    assert table["backbone"] == {"p50": 50.5, "p95": pytest.approx(95.05)}
    assert table["heads"] == {"p50": 1.0, "p95": 1.0}
    assert set(table) == set(STAGES) - {"open_vocab", "steps"}  # a stage no run had is left out


def test_measure_a_tiny_planner(tmp_path):
    planner = Planner.from_dir(save_tiny_model(tmp_path / "model"))
    rng = np.random.default_rng(0)
    start, goal = rng.random(1280).astype(np.float32), rng.random(1280).astype(np.float32)
    result = measure_latency(planner, start, goal, runs=3, warmup=1)
    assert result["runs"] == 3 and set(result["stages_ms"]) == set(STAGES) - {"open_vocab"}  # no labels given
    for stage in result["stages_ms"]:
        assert 0.0 < result["stages_ms"][stage]["p50"] <= result["stages_ms"][stage]["p95"]
    stages = {stage: result["stages_ms"][stage]["p50"] for stage in result["stages_ms"]}
    assert stages["total"] >= stages["steps"] >= stages["backbone"]  # the step ids come before the captions
    assert result["peak_rss_mb"] > 50
    with pytest.raises(ValueError, match="runs"):
        measure_latency(planner, start, goal, runs=0)


def test_rows_compare_the_defaults_with_the_tuned_settings():
    """The backends as Planner.from_dir gives them, and again with --threads where that differs."""
    assert [label for label, _, options in cpu_backends(1) if not options] == ["torch", "onnxruntime", "tensorrt"]
    count = thread_settings(4).torch  # at most the usable cores
    expected = {} if thread_settings(4) == thread_settings() else {
        f"torch, {count} thread(s)": ("torch", {"threads": 4}), f"onnxruntime, {count} thread(s)": ("onnxruntime", {"threads": 4})}
    assert {label: (backend, options) for label, backend, options in cpu_backends(4) if options} == expected
