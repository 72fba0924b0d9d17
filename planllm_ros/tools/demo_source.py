"""`planllm ros demo-source`: a simulated tabletop camera and task manager for the demo.

It plays tabletop scenarios (training.tabletop.scenario: one rendered episode, every state
from start to goal, with its true steps) in one of three ways (`--play`):

- windows (what `make demo` shows): for each window of `horizon` consecutive steps it streams
  the window's start state as the camera, then sends the state `horizon` steps later as the
  goal image and, on `~/truth`, the true steps. The start frames go out first so the node's
  newest frame belongs to the window when its goal arrives.
- episodes (a recording with real step boundaries, for `planllm ros record --steps-from`):
  each scenario is played whole, every state held on the camera for `--seconds-per-state`.
  Step i runs from the middle of state i-1 to the middle of state i, so the frames around a
  step's start show the state before it and those around its end the state after it. At each
  step's start the goal `horizon` steps ahead is sent as in windows mode; after the last state,
  one `"kind": "episode"` truth message gives the episode's task and every step's start and
  end stamp.
- procedure (a robot at work, for a node in continuous mode: `planllm demo --play procedure`):
  each scenario is played towards its final state, at most `--goal-steps` steps per goal (the
  bundled model plans at most 6): the goal image is sent once, with the first frame that
  counts, after the start state has been on the camera for a moment; then every state of the
  stretch stays on the camera for `--seconds-per-state`, the last one too (the goal reached),
  and the next goal starts from there. The first frame of each state is a step boundary: a
  `"kind": "step"` truth message gives the steps done since the goal was sent and the true next
  step (null at the goal).

Truth messages are JSON in std_msgs/String: `{"kind": "goal", "goal": n, "task", "steps",
"ceiling", "goal_stamp"}` (ceiling: the steps the exact ceiling's planner answers from the
window's true start and goal states, null where no seen task's window joins them; goal_stamp:
the goal image's header stamp) and, in episodes mode, `{"kind": "episode",
"episode", "task", "camera_topic", "start", "end", "steps": [{"label", "start", "end"}]}`
(start and end: the episode's first and last camera frame); in procedure mode
`{"kind": "procedure", "goal": n, "task", "episode", "steps", "goal_stamp"}` per goal and
`{"kind": "step", "goal": n, "goal_stamp", "done", "next", "stamp"}` per boundary (stamp: the
state's first frame). Stamps are `{"sec", "nanosec"}` of the camera's clock. This is a tool: it imports `training`; the planner
node never does.
"""
from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header, String

from planllm_ros.ros.image_conv import rgb_to_image
from planllm_ros.ros.planner_node import CAMERA_QOS, GOAL_QOS

WARMUP_S = 1.0  # start frames streamed before the goal of an episode
# Latched like the goals they describe, and deep enough that a recorder misses none of an episode's.
TRUTH_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.TRANSIENT_LOCAL)
# Episodes are recorded to become datasets: the camera is reliable (a best-effort subscriber such
# as the node still takes it), so a busy recorder loses no step boundary.
RECORDED_CAMERA_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=30, reliability=ReliabilityPolicy.RELIABLE,
                                 durability=DurabilityPolicy.VOLATILE)


@dataclass
class Goal:
    """One planning request of the scenario: camera state, goal state, the true steps between, and
    what the exact ceiling's planner answers from the true states (None where no seen task's
    window joins them)."""

    task: str
    start: np.ndarray
    goal: np.ndarray
    steps: list[str]
    ceiling: list[str] | None


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--play", choices=("windows", "episodes", "procedure"), default="windows",
                        help="windows: one start/goal pair per window (the demo); episodes: whole scenarios, state "
                             "by state, with step timing on ~/truth (for recording a dataset); procedure: whole "
                             "scenarios state by state towards goals up to --goal-steps ahead, with the true next "
                             "step at each boundary (for a node in continuous mode)")
    parser.add_argument("--task", default=None,
                        help="tabletop task name, or several separated by commas, played in turn "
                             "(default: a seen task picked by each scenario's seed)")
    parser.add_argument("--seed", type=int, default=0, help="first scenario seed (one scenario per seed)")
    parser.add_argument("--scenarios", type=int, default=1, help="scenarios to play (seeds seed, seed+1, ...)")
    parser.add_argument("--horizon", type=int, default=3, help="steps between start and goal (the model's horizon)")
    parser.add_argument("--max-goals", type=int, default=0, help="windows: stop after this many goals (0: all windows)")
    parser.add_argument("--seconds-per-goal", type=float, default=5.0, help="windows: how long each goal is played")
    parser.add_argument("--seconds-per-state", type=float, default=1.0,
                        help="episodes, procedure: how long each state stays on the camera")
    parser.add_argument("--goal-steps", type=int, default=6,
                        help="procedure: steps from a goal's start to the goal (the bundled model plans at most 6)")
    parser.add_argument("--wait-for-subscribers", type=float, default=0.0, metavar="S",
                        help="first wait up to S seconds for a subscriber of the camera (a recorder, the node)")
    parser.add_argument("--fps", type=float, default=10.0, help="camera frame rate")
    parser.add_argument("--encoding", default="rgb8", help="camera encoding (rgb8, bgr8, rgba8, bgra8, mono8)")
    parser.add_argument("--image-topic", default="image")
    parser.add_argument("--goal-topic", default="goal_image")


def scenarios(task: str | None, seed: int, count: int, horizon: int) -> Iterator[tuple[int, Any]]:
    """(seed, Scenario) of each scenario to play; `task` may name several tasks, comma-separated."""
    from training.tabletop import scenario

    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    tasks = [t.strip() for t in task.split(",")] if task else [None]
    for offset in range(count):
        played = scenario(tasks[offset % len(tasks)], seed + offset)
        if len(played.labels) < horizon:
            raise ValueError(f"scenario {played.task!r} (seed {seed + offset}) has {len(played.labels)} steps, "
                             f"fewer than horizon {horizon}")
        yield seed + offset, played


def goals(task: str | None, seed: int, count: int, horizon: int) -> Iterator[Goal]:
    """Every window of `horizon` steps of each scenario, in the order a robot would meet them."""
    from training.tabletop.baselines import ceiling_steps
    from training.tabletop.world import STEPS

    for _, played in scenarios(task, seed, count, horizon):
        for i in range(len(played.labels) - horizon + 1):
            best = ceiling_steps(played.states[i], played.states[i + horizon], horizon)
            yield Goal(played.task, played.frames[i], played.frames[i + horizon], list(played.labels[i : i + horizon]),
                       None if best is None else [STEPS[k].label for k in best])


def _stamp(stamp: Time) -> dict[str, int]:
    return {"sec": int(stamp.sec), "nanosec": int(stamp.nanosec)}


def _wait_for_subscriber(publisher: Any, seconds: float, stop: threading.Event) -> None:
    deadline = time.monotonic() + seconds
    while publisher.get_subscription_count() == 0 and time.monotonic() < deadline and not stop.wait(0.05):
        pass


def run_source(node: Node, args: argparse.Namespace, stop: threading.Event) -> int:
    """Play the scenarios until all are played (or `args.max_goals` goals are sent) or `stop` is set."""
    camera = node.create_publisher(Image, args.image_topic, RECORDED_CAMERA_QOS if args.play == "episodes" else CAMERA_QOS)
    goal_pub = node.create_publisher(Image, args.goal_topic, GOAL_QOS)
    truth = node.create_publisher(String, "~/truth", TRUTH_QOS)
    if args.wait_for_subscribers > 0:
        print(f"waiting up to {args.wait_for_subscribers:g} s for a subscriber of {camera.topic_name}", flush=True)
    _wait_for_subscriber(camera, args.wait_for_subscribers, stop)
    play = {"windows": _play_windows, "episodes": _play_episodes, "procedure": _play_procedure}[args.play]
    play(node, args, stop, camera, lambda image, header: goal_pub.publish(rgb_to_image(image, "rgb8", header)),
         lambda document: truth.publish(String(data=json.dumps(document))))
    return 0


SendGoal = Callable[[np.ndarray, Header], None]
SendTruth = Callable[[dict[str, Any]], None]


def _play_windows(node: Node, args: argparse.Namespace, stop: threading.Event, camera: Any,
                  send_goal: SendGoal, send_truth: SendTruth) -> None:
    period = 1.0 / args.fps
    for number, goal in enumerate(goals(args.task, args.seed, args.scenarios, args.horizon), start=1):
        started = time.monotonic()
        goal_sent = False
        while not stop.is_set() and time.monotonic() - started < args.seconds_per_goal:
            now = node.get_clock().now().to_msg()
            camera.publish(rgb_to_image(goal.start, args.encoding, Header(stamp=now, frame_id="tabletop_camera")))
            if not goal_sent and time.monotonic() - started >= WARMUP_S:
                send_truth({"kind": "goal", "goal": number, "task": goal.task, "steps": goal.steps,
                            "ceiling": goal.ceiling, "goal_stamp": _stamp(now)})
                send_goal(goal.goal, Header(stamp=now, frame_id="tabletop_goal"))
                goal_sent = True
            stop.wait(max(0.0, period - (time.monotonic() - started) % period))
        if stop.is_set() or number == args.max_goals:
            break


def _play_episodes(node: Node, args: argparse.Namespace, stop: threading.Event, camera: Any,
                   send_goal: SendGoal, send_truth: SendTruth) -> None:
    """Each scenario state by state: `frames` frames per state, the middle one marking the
    boundary between the step before the state and the step after it."""
    period = 1.0 / args.fps
    frames = max(1, round(args.seconds_per_state * args.fps))
    horizon, number = args.horizon, 0
    next_frame = time.monotonic()
    for seed, played in scenarios(args.task, args.seed, args.scenarios, horizon):
        middles: list[dict[str, int]] = []
        first = last = None
        for k, image in enumerate(played.frames):
            for j in range(frames):
                if stop.wait(max(0.0, next_frame - time.monotonic())):
                    return
                now = node.get_clock().now().to_msg()
                camera.publish(rgb_to_image(image, args.encoding, Header(stamp=now, frame_id="tabletop_camera")))
                # a full period after this frame, never catching up after a stall (rendering, a busy
                # machine): no frame of the next state comes near a step boundary
                next_frame = time.monotonic() + period
                first, last = first or _stamp(now), _stamp(now)
                if j != frames // 2:
                    continue
                middles.append(_stamp(now))
                if k + horizon < len(played.frames):  # a goal `horizon` steps ahead: the window from here
                    number += 1
                    send_truth({"kind": "goal", "goal": number, "task": played.task, "episode": f"episode-{seed:04d}",
                                "steps": list(played.labels[k:k + horizon]), "goal_stamp": _stamp(now)})
                    send_goal(played.frames[k + horizon], Header(stamp=now, frame_id="tabletop_goal"))
        steps = [{"label": label, "start": middles[i], "end": middles[i + 1]} for i, label in enumerate(played.labels)]
        send_truth({"kind": "episode", "episode": f"episode-{seed:04d}", "task": played.task,
                    "camera_topic": camera.topic_name, "start": first, "end": last, "steps": steps})
        print(f"played episode-{seed:04d}: {played.task}, {len(steps)} steps", flush=True)


def _play_procedure(node: Node, args: argparse.Namespace, stop: threading.Event, camera: Any,
                    send_goal: SendGoal, send_truth: SendTruth) -> None:
    """Each scenario state by state towards goals at most `args.goal_steps` steps ahead (see the
    module docstring); the true next step goes out with the first frame of every state."""
    if args.goal_steps < 1:
        raise ValueError(f"--goal-steps must be >= 1, got {args.goal_steps}")
    period = 1.0 / args.fps
    frames = max(1, round(args.seconds_per_state * args.fps))
    warmup = max(1, round(WARMUP_S * args.fps))  # start frames before the goal: the node's newest frame is the start
    next_frame, number = time.monotonic(), 0

    def show(image: np.ndarray) -> Time | None:
        """One camera frame at the frame rate; its stamp, None when stopped."""
        nonlocal next_frame
        if stop.wait(max(0.0, next_frame - time.monotonic())):
            return None
        now = node.get_clock().now().to_msg()
        camera.publish(rgb_to_image(image, args.encoding, Header(stamp=now, frame_id="tabletop_camera")))
        next_frame = time.monotonic() + period  # never catching up after a stall: no burst of one state
        return now

    for seed, played in scenarios(args.task, args.seed, args.scenarios, 1):
        episode, steps = f"episode-{seed:04d}", len(played.labels)
        for first in range(0, steps, args.goal_steps):
            last = min(first + args.goal_steps, steps)
            number += 1
            for _ in range(warmup - 1):
                if show(played.frames[first]) is None:
                    return
            goal_stamp = None
            for k in range(first, last + 1):
                for j in range(frames):
                    stamp = show(played.frames[k])
                    if stamp is None:
                        return
                    if goal_stamp is None:
                        goal_stamp = _stamp(stamp)
                        send_truth({"kind": "procedure", "goal": number, "task": played.task, "episode": episode,
                                    "steps": list(played.labels[first:last]), "goal_stamp": goal_stamp})
                        send_goal(played.frames[last], Header(stamp=stamp, frame_id="tabletop_goal"))
                    if j == 0:
                        send_truth({"kind": "step", "goal": number, "goal_stamp": goal_stamp, "done": k - first,
                                    "next": played.labels[k] if k < last else None, "stamp": _stamp(stamp)})
        print(f"played {episode}: {played.task}, {steps} steps", flush=True)
