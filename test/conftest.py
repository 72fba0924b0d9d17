"""Shared test set-up. The ROS environment of every test process lives here and nowhere else.

Importing this sets localhost-only discovery, the repo's Fast DDS profile and a random
ROS_DOMAIN_ID for the pytest process (before anything imports rclpy); the `ros_env` fixture
gives each ROS test a fresh domain, set in os.environ for in-process rclpy and returned as
the environment for child processes (which must use this same interpreter: the ROS wheels
re-exec it once to set their library path).

Time limits: tests wait on events (`wait_for`, service answers), never on fixed sleeps, and
every bound is a base value for a quiet 2-core machine scaled by planllm_ros.tools.env.scaled
(PLANLLM_TIME_SCALE, else the load per core when the run began), the one place that decides
how long anything may take here.
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from planllm_ros.tools.env import apply_ros_environment, random_domain_id, ros_environment, scaled
from planllm_ros.tools.processes import busy_processes

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
PYTHON = sys.executable
BUSY_LIFETIME_S = 300.0  # a busy process ends by itself after this (scaled), whatever happens to the test

apply_ros_environment()
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def shared_data() -> Path:
    """../shared/data (real annotation files); the test is skipped where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real dataset annotations not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def ros_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A fresh ROS domain for this test: os.environ is set for in-process rclpy, and the
    returned dict is the environment to pass to child processes."""
    env = ros_environment(domain_id=random_domain_id())
    for key in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_DOMAIN_ID", "FASTDDS_DEFAULT_PROFILES_FILE"):
        monkeypatch.setenv(key, env[key])
    return env


@pytest.fixture
def busy_cpu() -> Iterator[Callable[[int], list[int]]]:
    """`busy_cpu(n)` starts n processes that each keep a core busy at the test's own priority,
    for at most BUSY_LIFETIME_S; all are stopped by PID when the test ends."""
    with ExitStack() as stack:
        yield lambda count: stack.enter_context(busy_processes(count, scaled(BUSY_LIFETIME_S)))


def wait_for(condition: Callable[[], bool], timeout: float = 15.0, interval: float = 0.05) -> bool:
    """Poll `condition` until it holds or scaled(`timeout`) seconds pass (`timeout` is for a
    quiet machine; discovery takes 0.1-3 s: bounds are 10 s or more, never a fixed sleep)."""
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()
