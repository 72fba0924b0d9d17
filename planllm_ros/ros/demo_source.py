"""`planllm ros demo-source`: a simulated tabletop camera and task manager for the demo.

It plays tabletop scenarios (training.tabletop.scenario: one rendered episode, every state
from start to goal, with its true steps) as a robot would live them: for each window of
`horizon` consecutive steps it streams the window's start state as the camera, then sends
the state `horizon` steps later as the goal image and, on `~/truth`, the true steps. The start
frames go out first so the node's newest frame belongs to the window when its goal arrives.
This is a tool: it imports `training`; the planner node never does.
"""
from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Header, String

from planllm_ros.ros.image_conv import rgb_to_image
from planllm_ros.ros.planner_node import CAMERA_QOS, GOAL_QOS

WARMUP_S = 1.0  # start frames streamed before the goal of an episode


@dataclass
class Goal:
    """One planning request of the scenario: camera state, goal state, the true steps between."""

    task: str
    start: np.ndarray
    goal: np.ndarray
    steps: list[str]


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", default=None, help="tabletop task name (default: a seen task picked by the seed)")
    parser.add_argument("--seed", type=int, default=0, help="first scenario seed (one scenario per seed)")
    parser.add_argument("--scenarios", type=int, default=1, help="scenarios to play (seeds seed, seed+1, ...)")
    parser.add_argument("--horizon", type=int, default=3, help="steps between start and goal (the model's horizon)")
    parser.add_argument("--max-goals", type=int, default=0, help="stop after this many goals (0: all windows)")
    parser.add_argument("--seconds-per-goal", type=float, default=5.0)
    parser.add_argument("--fps", type=float, default=10.0, help="camera frame rate")
    parser.add_argument("--encoding", default="rgb8", help="camera encoding (rgb8, bgr8, rgba8, bgra8, mono8)")
    parser.add_argument("--image-topic", default="image")
    parser.add_argument("--goal-topic", default="goal_image")


def goals(task: str | None, seed: int, scenarios: int, horizon: int) -> Iterator[Goal]:
    """Every window of `horizon` steps of each scenario, in the order a robot would meet them."""
    from training.tabletop import scenario

    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    for offset in range(scenarios):
        played = scenario(task, seed + offset)
        if len(played.labels) < horizon:
            raise ValueError(f"scenario {played.task!r} (seed {seed + offset}) has {len(played.labels)} steps, "
                             f"fewer than horizon {horizon}")
        for i in range(len(played.labels) - horizon + 1):
            yield Goal(played.task, played.frames[i], played.frames[i + horizon], list(played.labels[i : i + horizon]))


def run_source(node: Node, args: argparse.Namespace, stop: threading.Event) -> int:
    """Publish the scenario's goals until all are sent, `args.max_goals` is reached or `stop` is set."""
    camera = node.create_publisher(Image, args.image_topic, CAMERA_QOS)
    goal_pub = node.create_publisher(Image, args.goal_topic, GOAL_QOS)
    truth = node.create_publisher(String, "~/truth", GOAL_QOS)  # latched like the goal it describes
    period = 1.0 / args.fps
    for number, goal in enumerate(goals(args.task, args.seed, args.scenarios, args.horizon), start=1):
        started = time.monotonic()
        goal_sent = False
        while not stop.is_set() and time.monotonic() - started < args.seconds_per_goal:
            now = node.get_clock().now().to_msg()
            camera.publish(rgb_to_image(goal.start, args.encoding, Header(stamp=now, frame_id="tabletop_camera")))
            if not goal_sent and time.monotonic() - started >= WARMUP_S:
                stamp = {"sec": now.sec, "nanosec": now.nanosec}
                document = {"goal": number, "task": goal.task, "steps": goal.steps, "goal_stamp": stamp}
                truth.publish(String(data=json.dumps(document)))
                goal_pub.publish(rgb_to_image(goal.goal, "rgb8", Header(stamp=now, frame_id="tabletop_goal")))
                goal_sent = True
            stop.wait(max(0.0, period - (time.monotonic() - started) % period))
        if stop.is_set() or number == args.max_goals:
            break
    return 0
