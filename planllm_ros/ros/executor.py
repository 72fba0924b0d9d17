"""The node's executor: rclpy's MultiThreadedExecutor without its busy loop.

rclpy 9.1.2 (the pinned wheels) hands a ready callback to its thread pool and goes straight back
to `wait_for_ready_callbacks`, which yields every task that has not started yet before it waits
for anything. A task still queued in the pool is therefore yielded and queued again at once, in
a loop that only ends when a pool thread starts it (ros2/rclpy#1452, fixed upstream by
ros2/rclpy#1547 after these wheels). The looping thread holds the interpreter lock that the pool
threads need to start the task, so on a machine with idle cores the node starved itself: with a
30 Hz 640x480 camera and nothing else running, its spinning thread used about 90 % of a core,
and the node received 209 to 494 of 600 frames and answered ~/plan_now in up to 2.3 s (p95 0.7
to 1.4 s), while the same node with a busy process beside it, or pinned to one core, received
596 to 600 and answered within 0.15 s.

Here the spinning thread waits until the task it handed over has started before it looks for
more work, so each ready callback is queued once. Waiting costs nothing: the thread has nothing
else to hand out until a pool thread is free to take it.
"""
from __future__ import annotations

import threading
from collections.abc import Callable

from rclpy.executors import (
    ConditionReachedException,
    ExternalShutdownException,
    MultiThreadedExecutor,
    ShutdownException,
    TimeoutException,
    TimeoutObject,
)

# Bounds each wait for a pool thread to start a task, so a shut-down pool never holds the
# spinning thread; the wait simply repeats while the pool is busy.
START_POLL_S = 0.5


class NodeExecutor(MultiThreadedExecutor):
    """A MultiThreadedExecutor that queues each ready callback once (see the module docstring)."""

    def _spin_once_impl(
        self,
        timeout_sec: float | TimeoutObject | None = None,
        wait_condition: Callable[[], bool] = lambda: False,
    ) -> None:
        try:
            handler, _, _ = self.wait_for_ready_callbacks(timeout_sec, None, wait_condition)
        except (ExternalShutdownException, ShutdownException, TimeoutException, ConditionReachedException):
            return
        started = threading.Event()

        def run() -> None:
            started.set()
            handler()

        self._executor.submit(run)
        self._futures.append(handler)
        while not started.wait(START_POLL_S) and self.context.ok():
            pass
        for future in self._futures[:]:
            if future.done():
                self._futures.remove(future)
                future.result()  # a callback's exception ends the spin, as in rclpy
