"""The planner node in a real process, for the node's tests: its model, the node itself started
from the launch file with a client, and what the tests read from it. Every wait is an event
with a bound scaled for the machine (conftest.wait_for)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rclpy

from conftest import wait_for
from planllm_ros.tools.client import PlannerClient
from planllm_ros.tools.processes import start_planner, stop
from runtime_helpers import save_tiny_model

NS = "/robot"
rng = np.random.default_rng(0)
# What the node promises on a 2-core computer whose cores two other processes keep busy at the
# same priority (test_ros_load.py); checked against scaled(...) of these, like every bound.
ANSWER_P95_S = 1.0  # a service call (~/plan_now) from sending to its answer
GOAL_TO_PLAN_P95_S = 1.0  # a goal image from publishing to its plan arriving


def picture(height: int = 96, width: int = 128) -> np.ndarray:
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture
def ros(ros_env: dict[str, str]) -> Iterator[dict[str, str]]:
    rclpy.init()
    yield ros_env
    rclpy.shutdown()


@contextmanager
def planner_node(
    ros_env: dict[str, str], tmp_path: Path, model_dir: Path, *ros_args: str, client: PlannerClient | None = None, **topics: str
) -> Iterator[tuple[Any, PlannerClient]]:
    """The node from the launch file (namespace NS, `topics` remapped) and a client for it;
    rclpy must be initialised. Fails the test with the node's log if it did not stop cleanly."""
    log_path = tmp_path / "node.log"
    with open(log_path, "w") as log:
        process = start_planner(
            {"model_dir": str(model_dir), "namespace": NS, **topics}, ros_env, log, extra_ros_args=list(ros_args)
        )
        try:
            client = client or PlannerClient(
                namespace=NS, image_topic=topics.get("image", "image"), goal_topic=topics.get("goal_image", "goal_image")
            )
            yield process, client
        finally:
            if client is not None:
                client.close()
            code = stop(process)
    assert code == 0, log_path.read_text()


def sending(send: Callable[[], None], condition: Callable[[], bool], timeout: float = 90.0) -> bool:
    """Keep sending (best-effort camera frames may be lost while discovery runs) until `condition`."""
    def step() -> bool:
        send()
        return condition()

    return wait_for(step, timeout, interval=0.1)


def plans_with(client: PlannerClient, frame_id: str) -> list[dict]:
    return [p for p in client.snapshot()["plans"] if p["header"]["frame_id"] == frame_id]


def latest(client: PlannerClient) -> dict[str, str]:
    diagnostics = client.snapshot()["diagnostics"]
    return diagnostics[-1] if diagnostics else {}


def wait_until_active(client: PlannerClient, timeout: float = 120.0) -> bool:
    """Until the node's diagnostics say it is active (it loads its model first)."""
    return wait_for(lambda: latest(client).get("state") == "active", timeout)
