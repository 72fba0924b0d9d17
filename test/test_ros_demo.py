"""The demo: `planllm ros demo-source` publishes the tabletop scenario exactly (camera = window
start, goal = state `horizon` steps later, truth = the steps between), and `make demo`'s
program shows plans from the bundled model next to the true steps, then stops cleanly."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import Image
from std_msgs.msg import String

from conftest import wait_for
from planllm_ros.ros.image_conv import image_to_rgb
from planllm_ros.ros.planner_node import CAMERA_QOS, GOAL_QOS
from planllm_ros.runtime.cli import default_model_dir
from planllm_ros.tools.processes import start, stop
from training.tabletop import scenario

pytestmark = pytest.mark.ros


def test_demo_source_publishes_the_scenario(ros_env: dict[str, str], tmp_path: Path) -> None:
    horizon = 3
    expected = scenario(None, 5)
    received: dict[str, list] = {"camera": [], "goal": [], "truth": []}
    rclpy.init()
    node = rclpy.create_node("demo_source_probe")
    node.create_subscription(Image, "/cam", lambda m: received["camera"].append(m), CAMERA_QOS)
    node.create_subscription(Image, "/goal", lambda m: received["goal"].append(m), GOAL_QOS)
    node.create_subscription(String, "/planllm_demo_source/truth", lambda m: received["truth"].append(json.loads(m.data)),
                             GOAL_QOS)  # fmt: skip
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    with open(tmp_path / "source.log", "w") as log:
        source = start(
            [sys.executable, "-m", "planllm_ros.cli", "ros", "demo-source", "--seed", "5", "--horizon", str(horizon),
             "--max-goals", "2", "--seconds-per-goal", "3", "--encoding", "bgr8", "--image-topic", "/cam", "--goal-topic", "/goal"],
            ros_env, log,
        )  # fmt: skip
        try:
            assert wait_for(lambda: len(received["goal"]) >= 2 and len(received["truth"]) >= 2, 60), (tmp_path / "source.log").read_text()
            assert source.wait(60) == 0
        finally:
            stop(source)
            executor.shutdown()
            spinner.join(5)
            node.destroy_node()
            rclpy.shutdown()
    for i in range(2):
        truth = received["truth"][i]
        assert truth["goal"] == i + 1 and truth["task"] == expected.task
        assert truth["steps"] == list(expected.labels[i : i + horizon])
        goal = received["goal"][i]
        assert (goal.header.stamp.sec, goal.header.stamp.nanosec) == (truth["goal_stamp"]["sec"], truth["goal_stamp"]["nanosec"])
        np.testing.assert_array_equal(image_to_rgb(goal), expected.frames[i + horizon])
    assert received["camera"] and all(m.encoding == "bgr8" for m in received["camera"])
    starts = [image_to_rgb(m) for m in received["camera"]]
    assert any(np.array_equal(s, expected.frames[0]) for s in starts)
    assert all(any(np.array_equal(s, expected.frames[k]) for k in range(2)) for s in starts)


@pytest.mark.slow
def test_demo_shows_plans_from_the_bundled_model(ros_env: dict[str, str]) -> None:
    if not (default_model_dir() / "config.json").is_file():
        pytest.skip(f"the bundled model {default_model_dir()} is not in this checkout yet")
    result = subprocess.run(
        [sys.executable, "-m", "planllm_ros.tools.demo", "--max-goals", "2", "--seconds-per-goal", "4"],
        env=ros_env, capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "goal 1 (" in result.stdout and "goal 2 (" in result.stdout
    assert "2 plans" in result.stdout and "node exit 0, source exit 0" in result.stdout
