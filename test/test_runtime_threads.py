"""Threads per op: what planllm_ros.runtime.threads decides from the usable cores and an
explicit count, and that a planner loaded with the defaults runs on exactly those (onnxruntime's
sessions as configured, torch's count set in the thread that plans). Speed is measured by
`planllm bench latency`, not here."""
from __future__ import annotations

import os
import threading

import numpy as np
import pytest
import torch

from planllm_ros.runtime.cli import default_model_dir
from planllm_ros.runtime.errors import PlannerError
from planllm_ros.runtime.planner import Planner
from planllm_ros.runtime.threads import DEFAULT_THREADS, thread_settings, usable_cores


@pytest.fixture(scope="module")
def bundled():
    """The bundled model: bundled graphs included, as a user first loads it."""
    return default_model_dir()


def test_counts_come_from_the_argument_and_the_usable_cores():
    for threads in (None, 0):
        default = thread_settings(threads, cores=8)
        assert (default.torch, default.onnxruntime, default.onnxruntime_spinning) == (DEFAULT_THREADS, DEFAULT_THREADS, False)
    explicit = thread_settings(3, cores=8)
    assert (explicit.torch, explicit.onnxruntime) == (3, 3)
    capped = thread_settings(8, cores=2)  # more threads than cores would only queue
    assert (capped.cores, capped.torch, capped.onnxruntime) == (2, 2, 2)
    with pytest.raises(ValueError, match=">= 0"):
        thread_settings(-1)


def test_usable_cores_follow_the_affinity():
    """A node pinned to one core (taskset, a container's cpuset) plans on one thread per op."""
    allowed = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(allowed)})
        assert usable_cores() == 1
        assert thread_settings(4).torch == thread_settings().onnxruntime == 1
    finally:
        os.sched_setaffinity(0, allowed)
    assert usable_cores() == len(allowed)


def test_default_planners_run_on_the_configured_threads(bundled):
    expected = thread_settings()
    for backend in ("torch", "onnxruntime"):
        planner = Planner.from_dir(bundled, backend=backend)  # no other argument: what a user gets
        assert planner.threads == expected
        for session in getattr(planner.backend, "sessions", {}).values():
            options = session.get_session_options()
            assert options.intra_op_num_threads == expected.onnxruntime
            assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
        seen = []

        def plan_here() -> None:  # the node plans on a worker thread, not where it loaded
            torch.set_num_threads(expected.torch + 1)
            planner.plan(np.zeros((64, 64, 3), np.uint8), np.full((64, 64, 3), 255, np.uint8))
            seen.append(torch.get_num_threads())

        worker = threading.Thread(target=plan_here)
        worker.start()
        worker.join()
        assert seen == [expected.torch]


def test_an_explicit_count_reaches_both(bundled):
    planner = Planner.from_dir(bundled, backend="onnxruntime", threads=2)
    count = min(2, usable_cores())
    assert (planner.threads.torch, planner.threads.onnxruntime) == (count, count)
    assert all(s.get_session_options().intra_op_num_threads == count for s in planner.backend.sessions.values())
    with pytest.raises(PlannerError, match="threads must be >= 0"):
        Planner.from_dir(bundled, backend="onnxruntime", threads=-2)
