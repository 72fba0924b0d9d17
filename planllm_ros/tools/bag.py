"""Replay and record rosbag2 files (sqlite3 or mcap) with rclpy and the pure-Python `rosbags`.

`ros2 bag` does not install from PyPI. Messages travel as serialized CDR
bytes in both directions (rclpy publishes and receives raw bytes; rosbags stores the same
bytes), so no message is ever converted and any type rclpy can import works.
"""
from __future__ import annotations

import importlib
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rclpy.node import Node
from rclpy.duration import Duration
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosbags.rosbag2 import Reader, ReaderError, StoragePlugin, Writer, WriterError
from rosbags.typesys import Stores, get_typestore

STORAGES = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}
BAG_VERSION = 9  # what Kilted's ros2 bag writes
ACK_TIMEOUT_S = 5.0  # replay waits this long at most for subscribers to acknowledge the last messages
# Reliable + transient local is compatible with every subscriber, including the node's
# transient-local goal subscription, which a volatile publisher would never reach.
REPLAY_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)


def message_class(msgtype: str) -> type:
    """The rclpy class of a ROS type name ('sensor_msgs/msg/Image')."""
    package, kind, name = (msgtype.split("/") + ["", ""])[:3]
    try:
        return getattr(importlib.import_module(f"{package}.{kind}"), name)
    except (ImportError, AttributeError, ValueError) as error:
        wheel = f"ros-{package.replace('_', '-')}"
        raise ValueError(f"message type {msgtype!r} is not installed here (pip install {wheel})") from error


def _wait(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def replay(
    node: Node,
    bag: Path,
    rate: float = 1.0,
    wait_for_subscribers: float = 0.0,
    stop: threading.Event | None = None,
    publishers: dict[str, Any] | None = None,
) -> int:
    """Publish every message of `bag` with its original spacing (divided by `rate`) until done
    or `stop` is set; first wait up to `wait_for_subscribers` s until each topic has a
    subscriber. Returns the count sent. Bags played one after another share `publishers`
    (topic -> publisher, filled here), so subscribers match each topic once, not once per bag."""
    stop = stop or threading.Event()
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    try:
        reader = Reader(bag)
        reader.open()
    except (ReaderError, OSError) as error:
        raise ValueError(f"{bag}: cannot open the bag ({error})") from error
    try:
        publishers = {} if publishers is None else publishers
        for c in reader.connections:
            if c.topic not in publishers:
                publishers[c.topic] = node.create_publisher(message_class(c.msgtype), c.topic, REPLAY_QOS)
        if wait_for_subscribers > 0 and not _wait(
            lambda: all(publishers[c.topic].get_subscription_count() > 0 for c in reader.connections),
            wait_for_subscribers,
        ):
            node.get_logger().warning("not every topic has a subscriber; replaying anyway")
        sent, first_stamp, started = 0, None, time.monotonic()
        for connection, stamp, data in reader.messages():
            first_stamp = stamp if first_stamp is None else first_stamp
            delay = started + (stamp - first_stamp) / 1e9 / rate - time.monotonic()
            if stop.wait(max(0.0, delay)):
                break
            publishers[connection.topic].publish(bytes(data))
            sent += 1
        # Reliable samples still in flight die with the publisher: let subscribers acknowledge
        # them before the caller tears the node down (the last messages went missing in CI).
        for publisher in publishers.values():
            publisher.wait_for_all_acked(Duration(seconds=ACK_TIMEOUT_S))
    finally:
        reader.close()
    return sent


@dataclass
class RecordResult:
    path: Path
    messages: int


def _subscription_qos(node: Node, topic: str) -> QoSProfile:
    """Match the publishers, as ros2 bag does: reliable / transient local only if all offer it."""
    offered = [info.qos_profile for info in node.get_publishers_info_by_topic(topic)]
    reliable = bool(offered) and all(q.reliability == ReliabilityPolicy.RELIABLE for q in offered)
    latched = bool(offered) and all(q.durability == DurabilityPolicy.TRANSIENT_LOCAL for q in offered)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=100,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


def record(
    node: Node,
    out: Path,
    topics: list[str],
    duration: float,
    storage: str = "sqlite3",
    max_messages: int | None = None,
    discovery_timeout: float = 15.0,
    stop: threading.Event | None = None,
    idle_timeout: float | None = None,
) -> RecordResult:
    """Record `topics` into a new bag at `out` for `duration` s (or until `max_messages`, or
    `stop` is set, or no message came for `idle_timeout` s after the first). Topic types come
    from the graph, so each topic needs a publisher within `discovery_timeout` s. The node must
    be spinning on another thread."""
    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {', '.join(STORAGES)}, got {storage!r}")
    if out.exists():
        raise ValueError(f"{out} already exists: rosbag2 never overwrites a bag")

    def types() -> dict[str, str]:
        return {name: kinds[0] for name, kinds in node.get_topic_names_and_types() if name in topics and kinds}

    if not _wait(lambda: len(types()) == len(topics), discovery_timeout):
        missing = sorted(set(topics) - set(types()))
        raise TimeoutError(f"no publisher of {', '.join(missing)} appeared within {discovery_timeout} s")
    typestore = get_typestore(Stores.ROS2_KILTED)
    done = stop or threading.Event()
    # The sqlite3 storage may only be used from the thread that opened it: subscription
    # callbacks (executor thread) hand messages over, this thread writes them.
    arrived: queue.Queue[tuple[Any, int, bytes]] = queue.Queue()
    try:
        writer = Writer(out, version=BAG_VERSION, storage_plugin=STORAGES[storage])
        writer.open()
    except WriterError as error:
        raise ValueError(f"{out}: cannot create the bag ({error})") from error
    count, last_message = 0, None
    deadline = time.monotonic() + duration if duration is not None else None
    try:
        for topic, msgtype in sorted(types().items()):
            connection = writer.add_connection(topic, msgtype, typestore=typestore)
            node.create_subscription(
                message_class(msgtype), topic, lambda data, c=connection: arrived.put((c, time.time_ns(), data)),
                _subscription_qos(node, topic), raw=True,
            )  # fmt: skip
        while not done.is_set() and (deadline is None or time.monotonic() < deadline):
            try:
                connection, stamp, data = arrived.get(timeout=0.1)
            except queue.Empty:
                if idle_timeout is not None and last_message is not None and time.monotonic() - last_message > idle_timeout:
                    break
                continue
            writer.write(connection, stamp, data)
            count, last_message = count + 1, time.monotonic()
            if max_messages is not None and count >= max_messages:
                break
    finally:
        writer.close()
    return RecordResult(out, count)
