"""Shared test set-up. The ROS environment of every test process lives here and nowhere else.

Importing this sets localhost-only discovery, the repo's Fast DDS profile and a random
ROS_DOMAIN_ID for the pytest process (before anything imports rclpy); the `ros_env` fixture
gives each ROS test a fresh domain, set in os.environ for in-process rclpy and returned as
the environment for child processes (which must use this same interpreter: the ROS wheels
re-exec it once to set their library path).
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from planllm_ros.tools.env import apply_ros_environment, random_domain_id, ros_environment

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
PYTHON = sys.executable

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


def wait_for(condition: Callable[[], bool], timeout: float = 15.0, interval: float = 0.05) -> bool:
    """Poll `condition` until it holds or `timeout` seconds pass (discovery takes 0.1-3 s:
    bounds are 10 s or more, never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()
