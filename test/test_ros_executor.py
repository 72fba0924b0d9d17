"""The node's executor queues each ready callback once (planllm_ros.ros.executor).

A subscription whose callback takes 10 ms gets messages faster than that. rclpy's
MultiThreadedExecutor (9.1.2) hands a callback that waits for a pool thread to the pool again on
every wake-up until a thread starts it, the loop that starved the planner node of its frames and
service calls on an idle 2-core machine (measured with a 30 Hz 640x480 stream: 50 hand-overs per
callback run); NodeExecutor hands each over once. Counted in callbacks handed to the pool per
callback run, not timed.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import String

from conftest import wait_for
from planllm_ros.ros.executor import NodeExecutor

pytestmark = pytest.mark.ros
RUNS = 50  # callbacks to run before counting
CALLBACK_S = 0.01
PUBLISH_HZ = 300.0


class CountingMultiThreadedExecutor(MultiThreadedExecutor):
    """rclpy's own executor, with the callbacks it hands to its pool counted."""

    def __init__(self, num_threads: int) -> None:
        super().__init__(num_threads=num_threads)
        self.submitted = 0
        submit = self._executor.submit

        def counted(*args, **kwargs):
            self.submitted += 1
            return submit(*args, **kwargs)

        self._executor.submit = counted


@pytest.fixture
def rclpy_context(ros_env: dict[str, str]) -> Iterator[None]:
    rclpy.init()
    yield
    rclpy.shutdown()


def handed_over_per_run(executor: MultiThreadedExecutor) -> float:
    """Spin `executor` over a node whose subscription gets messages faster than its callback
    runs, until RUNS callbacks ran; callbacks handed to the pool per callback run."""
    node, sender = Node("executor_test"), Node("executor_test_sender")
    runs = [0]

    def callback(_: String) -> None:
        time.sleep(CALLBACK_S)  # lets go of the interpreter lock, as a callback waiting on DDS does
        runs[0] += 1

    node.create_subscription(String, "executor_test", callback, 5, callback_group=MutuallyExclusiveCallbackGroup())
    publisher = sender.create_publisher(String, "executor_test", 5)
    executor.add_node(node)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    try:
        assert wait_for(lambda: publisher.get_subscription_count() > 0, 15)
        deadline = time.monotonic() + 120
        while runs[0] < RUNS and time.monotonic() < deadline:
            publisher.publish(String(data="x"))
            time.sleep(1.0 / PUBLISH_HZ)
        assert runs[0] >= RUNS, f"only {runs[0]} of {RUNS} callbacks ran"
        return executor.submitted / runs[0]
    finally:
        executor.shutdown()
        spin.join(timeout=30)
        node.destroy_node()
        sender.destroy_node()


def test_node_executor_hands_each_callback_over_once(rclpy_context: None) -> None:
    ratio = handed_over_per_run(NodeExecutor(num_threads=4))
    print(f"NodeExecutor: {ratio:.2f} hand-overs per callback run")
    # once per callback run; a task yielded again in the instant between its start and rclpy
    # marking it as executing adds at most one more
    assert ratio <= 2.0, ratio


def test_rclpy_executor_still_loops(rclpy_context: None) -> None:
    """The reason NodeExecutor exists. When this fails, the pinned rclpy has its upstream fix
    (ros2/rclpy#1547) and the node can go back to rclpy's MultiThreadedExecutor."""
    ratio = handed_over_per_run(CountingMultiThreadedExecutor(num_threads=4))
    print(f"rclpy's MultiThreadedExecutor: {ratio:.2f} hand-overs per callback run")
    assert ratio > 4.0, ratio
