"""`planllm ros TOOL`: replay and record rosbag2 files, and publish a tabletop demo stream.

Every tool runs under the localhost ROS settings of planllm_ros.tools.env and stops cleanly on
Ctrl-C or SIGTERM (the demo and the tests stop it by PID).
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from planllm_ros.tools.env import apply_ros_environment


def add_arguments(parser: argparse.ArgumentParser) -> None:
    tools = parser.add_subparsers(dest="tool", metavar="TOOL", required=True)
    replay = tools.add_parser("replay", help="publish rosbag2 recordings (sqlite3 or mcap) in real time, one after another")
    replay.add_argument("bags", type=Path, nargs="+", metavar="BAG",
                        help="rosbag2 folder (metadata.yaml + .db3 or .mcap files)")
    replay.add_argument("--rate", type=float, default=1.0, help="speed factor (2: twice as fast)")
    replay.add_argument("--wait-for-subscribers", type=float, default=0.0, metavar="S",
                        help="first wait up to S seconds until every topic has a subscriber")
    record = tools.add_parser("record", help="record topics into a new rosbag2")
    record.add_argument("--out", type=Path, required=True, help="bag folder to create")
    record.add_argument("--topics", nargs="+", required=True, help="absolute topic names")
    record.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds (default: Ctrl-C)")
    record.add_argument("--max-messages", type=int, default=None, help="stop after this many messages")
    record.add_argument("--storage", choices=("sqlite3", "mcap"), default="sqlite3")
    record.add_argument("--discovery-timeout", type=float, default=15.0, metavar="S",
                        help="how long to wait for a publisher of each topic (their types come from it)")
    record.add_argument("--idle-timeout", type=float, default=None, metavar="S",
                        help="stop when no message has come for S seconds (after the first)")
    record.add_argument("--steps-from", metavar="TOPIC", default=None,
                        help="the truth topic of `planllm ros demo-source --play episodes` (recorded too): cut the "
                             "recording into --out as a source folder for `planllm data episodes import`: one bag "
                             "per episode with its steps file, labels.txt and episodes.csv")
    record.add_argument("--held-out", type=int, default=0, metavar="K",
                        help="with --steps-from: mark the last K episodes split=test (held out of training)")
    source = tools.add_parser("demo-source", help="publish a tabletop camera stream and goal images for a scenario")
    from planllm_ros.tools.demo_source import add_source_arguments

    add_source_arguments(source)


@contextmanager
def ros_node(name: str, spin: bool) -> Iterator[tuple[object, threading.Event]]:
    """rclpy up, one node (spun on a thread if `spin`), and an event set by SIGTERM/SIGINT."""
    apply_ros_environment()
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    stop = threading.Event()
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    node = rclpy.create_node(name)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True) if spin else None
    if spinner:
        spinner.start()
    try:
        yield node, stop
    finally:
        executor.shutdown()
        if spinner:
            spinner.join(5.0)
        node.destroy_node()
        rclpy.try_shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except (ValueError, TimeoutError) as error:  # bad bag, missing topic, bad scenario: say it, no traceback
        print(f"planllm ros {args.tool}: {error}", file=sys.stderr)
        return 1


def _cut_episodes(raw: Path, args: argparse.Namespace) -> None:
    """--steps-from: cut the recording into the source folder --out (built aside, then moved
    into place); the raw recording is removed once cut, kept when cutting fails."""
    from planllm_ros.tools.cutter import cut_recording

    tmp = args.out.with_name(f".{args.out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        summary = cut_recording(raw, tmp, args.steps_from, args.held_out, args.storage)
        os.replace(tmp, args.out)
    except ValueError as error:
        raise ValueError(f"{error} (the recording is kept in {raw})") from error
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(raw)
    skipped = f"; skipped {', '.join(summary['skipped'])} (frames missing)" if summary["skipped"] else ""
    print(f"cut into {summary['episodes']} episodes ({summary['held_out']} held out, {summary['labels']} step labels, "
          f"camera {summary['camera_topic']}) in {args.out}{skipped}")


def _run(args: argparse.Namespace) -> int:
    from planllm_ros.tools import bag

    if args.tool == "replay":
        with ros_node("planllm_replay", spin=False) as (node, stop):
            publishers: dict[str, object] = {}
            for path in args.bags:
                if stop.is_set():
                    break
                sent = bag.replay(node, path, args.rate, args.wait_for_subscribers, stop, publishers)
                print(f"replayed {sent} messages from {path}", flush=True)
        return 0
    if args.tool == "record":
        if args.out.exists():
            raise ValueError(f"{args.out} already exists: rosbag2 never overwrites a bag")
        raw = args.out.with_name(f".{args.out.name}.recording") if args.steps_from else args.out
        topics = list(dict.fromkeys([*args.topics, *([args.steps_from] if args.steps_from else [])]))
        with ros_node("planllm_record", spin=True) as (node, stop):
            result = bag.record(node, raw, topics, args.duration, args.storage, args.max_messages,
                                args.discovery_timeout, stop, args.idle_timeout)
        print(f"recorded {result.messages} messages into {result.path}")
        if args.steps_from:
            _cut_episodes(raw, args)
        return 0
    from planllm_ros.tools.demo_source import run_source

    with ros_node("planllm_demo_source", spin=True) as (node, stop):
        return run_source(node, args, stop)
