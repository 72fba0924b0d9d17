"""`planllm ros demo-source`: a simulated tabletop camera and task manager for the demo.

Per episode it picks a tabletop task, a window of `horizon` consecutive steps of one of its
plans, streams the window's start state as a live camera (fresh sensor noise every frame),
then publishes the goal image (the state after the window) and, on `~/truth`, the true steps.
The start frames go out first so the node's newest frame belongs to the new episode when the
goal arrives. This is a tool: it imports `training`; the planner node never does.
"""
from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header, String

from planllm_ros.ros.image_conv import rgb_to_image
from planllm_ros.ros.planner_node import CAMERA_QOS, GOAL_QOS

LATCHED = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)
WARMUP_S = 1.0  # start frames streamed before the goal of an episode


@dataclass
class Episode:
    task: str
    steps: list[str]  # the true step labels of the window, in order
    goal: np.ndarray
    camera: Callable[[int], np.ndarray]  # frame number -> start-state camera image


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", choices=("seen", "novel"), default="seen", help="tabletop tasks seen in training or held out")
    parser.add_argument("--horizon", type=int, default=3, help="steps between start and goal (the model's horizon)")
    parser.add_argument("--episodes", type=int, default=3, help="number of goals to send (0: forever)")
    parser.add_argument("--seconds-per-episode", type=float, default=6.0)
    parser.add_argument("--fps", type=float, default=10.0, help="camera frame rate")
    parser.add_argument("--encoding", default="rgb8", help="camera encoding (rgb8, bgr8, rgba8, bgra8, mono8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-topic", default="image")
    parser.add_argument("--goal-topic", default="goal_image")


def episodes(scenario: str, horizon: int, seed: int) -> Iterator[Episode]:
    """Endless episodes of the tabletop world, deterministic from `seed`."""
    from training.tabletop.renderer import make_scene, render
    from training.tabletop.tasks import NOVEL_TASKS, SEEN_TASKS, TASKS
    from training.tabletop.world import STEP_INDEX, STEPS

    pool = NOVEL_TASKS if scenario == "novel" else SEEN_TASKS
    rng = np.random.default_rng(seed)
    while True:
        task = TASKS[pool[int(rng.integers(len(pool)))]]
        plan = task.sample_plan(rng)
        if len(plan) < horizon:
            continue
        first = int(rng.integers(len(plan) - horizon + 1))
        states = task.simulate(plan)
        scene = make_scene(task.objects(), int(rng.integers(2**31)))
        start = states[first]
        yield Episode(
            task=task.name,
            steps=[STEPS[STEP_INDEX[key]].label for key in plan[first : first + horizon]],
            goal=render(states[first + horizon], scene, frame=0),
            camera=lambda frame, start=start, scene=scene: render(start, scene, frame=frame + 1),
        )


def run_source(node: Node, args: argparse.Namespace, stop: threading.Event) -> int:
    """Publish episodes until `args.episodes` are done or `stop` is set."""
    camera = node.create_publisher(Image, args.image_topic, CAMERA_QOS)
    goal = node.create_publisher(Image, args.goal_topic, GOAL_QOS)
    truth = node.create_publisher(String, "~/truth", LATCHED)
    period = 1.0 / args.fps
    frame = 0
    for number, episode in enumerate(episodes(args.scenario, args.horizon, args.seed), start=1):
        started = time.monotonic()
        goal_sent = False
        while not stop.is_set() and time.monotonic() - started < args.seconds_per_episode:
            header = Header(stamp=node.get_clock().now().to_msg(), frame_id="tabletop_camera")
            camera.publish(rgb_to_image(episode.camera(frame), args.encoding, header))
            frame += 1
            if not goal_sent and time.monotonic() - started >= WARMUP_S:
                header = Header(stamp=node.get_clock().now().to_msg(), frame_id="tabletop_goal")
                truth.publish(String(data=json.dumps({"episode": number, "task": episode.task, "steps": episode.steps,
                                                      "goal_stamp": {"sec": header.stamp.sec, "nanosec": header.stamp.nanosec}})))
                goal.publish(rgb_to_image(episode.goal, "rgb8", header))
                goal_sent = True
            stop.wait(max(0.0, period - (time.monotonic() - started) % period))
        if stop.is_set() or number == args.episodes:
            break
    return 0
