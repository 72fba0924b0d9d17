"""`planllm ros TOOL`: replay and record rosbag2 files, and publish a tabletop demo stream.

Every tool runs under the localhost ROS settings of planllm_ros.ros.env and stops cleanly on
Ctrl-C or SIGTERM (the demo and the tests stop it by PID).
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from planllm_ros.ros.env import apply_ros_environment


def add_arguments(parser: argparse.ArgumentParser) -> None:
    tools = parser.add_subparsers(dest="tool", metavar="TOOL", required=True)
    replay = tools.add_parser("replay", help="publish a rosbag2 (sqlite3 or mcap) in real time")
    replay.add_argument("bag", type=Path, help="rosbag2 folder (metadata.yaml + .db3 or .mcap files)")
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
    source = tools.add_parser("demo-source", help="publish a tabletop camera stream and goal images for a scenario")
    from planllm_ros.ros.demo_source import add_source_arguments

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


def _run(args: argparse.Namespace) -> int:
    from planllm_ros.ros import bag

    if args.tool == "replay":
        with ros_node("planllm_replay", spin=False) as (node, stop):
            sent = bag.replay(node, args.bag, args.rate, args.wait_for_subscribers, stop)
        print(f"replayed {sent} messages from {args.bag}")
        return 0
    if args.tool == "record":
        with ros_node("planllm_record", spin=True) as (node, stop):
            result = bag.record(
                node, args.out, args.topics, args.duration, args.storage, args.max_messages, args.discovery_timeout, stop
            )
        print(f"recorded {result.messages} messages into {result.path}")
        return 0
    from planllm_ros.ros.demo_source import run_source

    with ros_node("planllm_demo_source", spin=True) as (node, stop):
        return run_source(node, args, stop)
