"""Faults the planner node lives through, in real processes over DDS: each ends with the node
still planning, and says what happened in a log line and in its diagnostics.

- its model folder disappears, is half written or is replaced while it runs: a reload
  (~/reload, or model_dir set again) loads beside the running model and swaps only a model that
  loaded whole, so a failed load leaves the running one planning;
- the camera goes silent and comes back: reported, and a goal sent meanwhile waits for a new
  frame instead of planning from the old one;
- the goal publisher restarts;
- a burst of 1000 goals: the newest wins, nothing queues, the service keeps answering.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import wait_for
from node_helpers import (  # noqa: F401 (model_dir and ros are fixtures)
    ANSWER_P95_S, NS, latest, model_dir, picture, planner_node, ros, wait_until_active,
)
from planllm_ros.ros.image_conv import rgb_to_image
from planllm_ros.ros.planner_node import CAMERA_SILENT_S
from planllm_ros.tools.client import PlannerClient
from planllm_ros.tools.env import scaled
from runtime_helpers import save_tiny_model

pytestmark = pytest.mark.ros
CAMERA_HZ = 10.0
BURST = 1000


def goal_plan(client: PlannerClient, name: str) -> dict | None:
    return next((p for p in client.snapshot()["plans"] if p["goal_header"]["frame_id"] == name), None)


def plans_for(client: PlannerClient, name: str) -> bool:
    """Send goal `name` and wait for its plan."""
    client.send_goal(picture(), frame_id=name)
    return wait_for(lambda: goal_plan(client, name) is not None, 30)


def reported(client: PlannerClient, text: str) -> bool:
    """A diagnostics message at WARN level carried `text` in last_error."""
    return any(text in d["last_error"] and d["level"] == "1" for d in client.snapshot()["diagnostics"])


def silent(diagnostics: dict[str, str]) -> bool:
    """One diagnostics message says the camera is silent: WARN, and for how long (shown to 0.1 s)."""
    return diagnostics.get("level") == "1" and float(diagnostics.get("camera_silent_s") or 0) >= CAMERA_SILENT_S - 0.05


def camera(frame_id: str = "camera") -> object:
    frame = rgb_to_image(picture())
    frame.header.frame_id = frame_id
    return frame


def test_model_folder_removed_half_written_and_replaced(ros: dict[str, str], tmp_path: Path, model_dir: Path) -> None:
    folder = shutil.copytree(model_dir, tmp_path / "model")
    with planner_node(ros, tmp_path, folder) as (_, client), client.camera_stream(camera(), CAMERA_HZ):
        assert wait_until_active(client) and plans_for(client, "before")
        loads = int(latest(client)["model_loads"])

        shutil.rmtree(folder)  # the loaded model plans on; reloading it fails and changes nothing
        assert plans_for(client, "removed")
        assert client.reload().success
        assert wait_for(lambda: reported(client, f"cannot load the model from {folder}"), 60)
        assert reported(client, f"still planning with {folder}")
        assert plans_for(client, "after_failed_reload")

        folder.mkdir()  # half written: a config without weights is refused whole
        shutil.copy(model_dir / "config.json", folder / "config.json")
        errors = int(latest(client)["errors"])
        assert client.set_parameters(model_dir=str(folder))[0].successful
        assert wait_for(lambda: int(latest(client).get("errors", "0")) > errors, 60)
        assert int(latest(client)["model_loads"]) == loads
        assert plans_for(client, "after_half_written")

        shutil.rmtree(folder)  # replaced by another model: loaded beside the running one, then swapped in
        save_tiny_model(folder, seed=1)
        assert client.reload().success
        assert wait_for(lambda: int(latest(client).get("model_loads", "0")) == loads + 1, 60)
        assert latest(client)["model_dir"] == str(folder) and latest(client)["loading"] == "False"
        assert plans_for(client, "replaced")


def test_camera_silent_then_back(ros: dict[str, str], tmp_path: Path, model_dir: Path) -> None:
    with planner_node(ros, tmp_path, model_dir) as (_, client):
        assert wait_until_active(client)
        with client.camera_stream(camera("before"), CAMERA_HZ):
            assert plans_for(client, "first")
        assert wait_for(lambda: silent(latest(client)), 30)  # reported at WARN
        client.send_goal(picture(), frame_id="while_silent")  # waits for the camera to come back
        assert wait_for(lambda: (tmp_path / "node.log").read_text().count("new goal image") == 2, 15)
        with client.camera_stream(camera("back"), CAMERA_HZ):
            assert wait_for(lambda: goal_plan(client, "while_silent") is not None, 30)
            assert goal_plan(client, "while_silent")["header"]["frame_id"] == "back"  # not the frame from before
            assert wait_for(lambda: latest(client).get("level") == "0", 15)
            assert plans_for(client, "after")
    log = (tmp_path / "node.log").read_text()
    assert f"no camera frame on {NS}/image for" in log and f"camera frames again on {NS}/image after" in log


def test_goal_publisher_restarts(ros: dict[str, str], tmp_path: Path, model_dir: Path) -> None:
    with planner_node(ros, tmp_path, model_dir) as (_, client), client.camera_stream(camera(), CAMERA_HZ):
        assert wait_until_active(client)
        for run in range(3):  # a task manager that publishes goals, stops, and starts again
            publisher = PlannerClient(namespace=NS)
            try:
                name = f"run-{run}"
                publisher.send_goal(picture(), frame_id=name)
                assert wait_for(lambda: goal_plan(client, name) is not None, 30), name
            finally:
                publisher.close()
        assert int(latest(client)["errors"]) == 0


def test_burst_of_1000_goals(ros: dict[str, str], tmp_path: Path, model_dir: Path) -> None:
    with planner_node(ros, tmp_path, model_dir) as (process, client), client.camera_stream(camera(), CAMERA_HZ):
        assert wait_until_active(client) and plans_for(client, "first")
        goals = [rgb_to_image(picture()) for _ in range(BURST)]
        for k, goal in enumerate(goals):
            goal.header.frame_id = f"burst-{k}"
            client.send_goal(goal)
        answers = []
        for _ in range(10):
            began = time.monotonic()
            assert client.plan_now().success
            answers.append(time.monotonic() - began)
        assert wait_for(lambda: goal_plan(client, f"burst-{BURST - 1}") is not None, 60)  # the newest goal wins
        assert plans_for(client, "after_burst") and process.poll() is None
        assert np.percentile(answers, 95) <= scaled(ANSWER_P95_S), answers
        depths = [int(d["queue_depth"]) for d in client.snapshot()["diagnostics"]]
        planned = {p["goal_header"]["frame_id"] for p in client.snapshot()["plans"]}
        assert max(depths) <= 1 and len(planned) < BURST / 2, len(planned)  # stale goals were not queued
