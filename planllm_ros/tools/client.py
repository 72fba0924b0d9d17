"""The other end of the planner node, in-process: what a task manager, the demo and the tests
use to send camera/goal images, collect plans and diagnostics, and drive services.

It spins its own executor on a background thread, so callers simply poll its lists (with
conftest's `wait_for` or a deadline loop) while messages arrive. The node publishes each plan's
step ids before its captions: `steps` holds those early ~/plan documents (captions_pending),
`plans` the complete ones; `progress` the ~/progress documents (continuous mode). Service calls wait at most
SERVICE_TIMEOUT_S scaled for this machine (planllm_ros.tools.env.scaled) unless told otherwise.
"""
from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import SetParametersResult
from rcl_interfaces.srv import SetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header, String
from std_srvs.srv import Trigger

from planllm_ros.ros.image_conv import rgb_to_compressed, rgb_to_image
from planllm_ros.ros.planner_node import CAMERA_QOS, GOAL_QOS, NODE_NAME
from planllm_ros.tools.env import scaled

SERVICE_TIMEOUT_S = 15.0  # on a quiet machine; each call waits scaled(SERVICE_TIMEOUT_S) by default
TRANSITIONS = {
    "configure": Transition.TRANSITION_CONFIGURE,
    "activate": Transition.TRANSITION_ACTIVATE,
    "deactivate": Transition.TRANSITION_DEACTIVATE,
    "cleanup": Transition.TRANSITION_CLEANUP,
}


def _in_namespace(namespace: str, topic: str) -> str:
    """A relative topic as the node in `namespace` resolves it (absolute topics stay)."""
    return topic if topic.startswith("/") or not namespace else f"{namespace}/{topic}"


class PlannerClient:
    """Talks to one planner node, named `node_name` under `namespace` (rclpy must be initialised)."""

    def __init__(
        self,
        namespace: str = "",
        node_name: str = NODE_NAME,
        image_topic: str = "image",
        goal_topic: str = "goal_image",
        compressed: bool = False,
        plan_images: bool = True,
    ) -> None:
        """plan_images: subscribe to ~/plan_image (the node draws it only while someone does)."""
        self.node = rclpy.create_node(f"planllm_client_{os.getpid()}_{id(self):x}")
        ns = namespace.rstrip("/")
        prefix = f"{ns}/{node_name}"
        self._lock = threading.Lock()
        self.plans: list[dict[str, Any]] = []  # complete plans (captions_pending false)
        self.steps: list[dict[str, Any]] = []  # step ids ahead of their captions (captions_pending true)
        self.instructions: list[str] = []
        self.plan_images: list[Image] = []
        self.progress: list[dict[str, Any]] = []  # ~/progress documents, in arrival order
        self.diagnostics: list[dict[str, str]] = []
        camera_type = CompressedImage if compressed else Image
        self._camera = self.node.create_publisher(camera_type, _in_namespace(ns, image_topic), CAMERA_QOS)
        self._goal = self.node.create_publisher(Image, _in_namespace(ns, goal_topic), GOAL_QOS)
        self._status_name = f"{prefix}: planner"
        self.node.create_subscription(String, f"{prefix}/plan", self._on_plan, 10)
        self.node.create_subscription(String, f"{prefix}/instructions", self._keep(self.instructions, lambda m: m.data), 10)
        if plan_images:
            self.node.create_subscription(Image, f"{prefix}/plan_image", self._keep(self.plan_images, lambda m: m), 1)
        self.node.create_subscription(String, f"{prefix}/progress", self._keep(self.progress, lambda m: json.loads(m.data)),
                                      10)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self._plan_now = self.node.create_client(Trigger, f"{prefix}/plan_now")
        self._plan_now_steps = self.node.create_client(Trigger, f"{prefix}/plan_now_steps")
        self._reload = self.node.create_client(Trigger, f"{prefix}/reload")
        self._change_state = self.node.create_client(ChangeState, f"{prefix}/change_state")
        self._get_state = self.node.create_client(GetState, f"{prefix}/get_state")
        self._set_parameters = self.node.create_client(SetParameters, f"{prefix}/set_parameters")
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._executor.spin, name="planllm-client", daemon=True)
        self._thread.start()

    def _keep(self, sink: list, convert: Callable[[Any], Any]) -> Callable[[Any], None]:
        def callback(msg: Any) -> None:
            with self._lock:
                sink.append(convert(msg))

        return callback

    def _on_plan(self, msg: String) -> None:
        document = json.loads(msg.data)
        with self._lock:
            (self.steps if document["captions_pending"] else self.plans).append(document)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == self._status_name:
                with self._lock:
                    level = {"level": str(int.from_bytes(status.level))}
                    self.diagnostics.append({kv.key: kv.value for kv in status.values} | level)

    # ---- inputs to the node -----------------------------------------------------------------

    def _header(self, frame_id: str) -> Header:
        return Header(stamp=self.node.get_clock().now().to_msg(), frame_id=frame_id)

    def send_frame(
        self, frame: np.ndarray | Image | CompressedImage, encoding: str = "rgb8", frame_id: str = "camera"
    ) -> None:
        """Publish a camera frame: an RGB array (encoded as `encoding`, or "jpeg"/"png") or a ready message."""
        if isinstance(frame, np.ndarray):
            header = self._header(frame_id)
            compressed = encoding in ("jpeg", "png")
            frame = rgb_to_compressed(frame, encoding, header) if compressed else rgb_to_image(frame, encoding, header)
        self._camera.publish(frame)

    def send_goal(self, goal: np.ndarray | Image, encoding: str = "rgb8", frame_id: str = "goal") -> None:
        self._goal.publish(rgb_to_image(goal, encoding, self._header(frame_id)) if isinstance(goal, np.ndarray) else goal)

    @contextmanager
    def camera_stream(self, frame: Image | CompressedImage, rate_hz: float) -> Iterator[Callable[[], int]]:
        """Publish `frame`, stamped now each time, at `rate_hz` on a thread of its own, as a
        camera driver does, until the block ends; yields a function that returns how many
        frames were published so far. A publisher that falls behind skips ticks instead of
        bursting to catch up."""
        stop = threading.Event()
        published = [0]

        def run() -> None:
            period, next_at = 1.0 / rate_hz, time.monotonic()
            while not stop.wait(max(0.0, next_at - time.monotonic())):
                frame.header.stamp = self.node.get_clock().now().to_msg()
                self._camera.publish(frame)
                published[0] += 1
                next_at = max(next_at + period, time.monotonic())

        thread = threading.Thread(target=run, name="planllm-camera", daemon=True)
        thread.start()
        try:
            yield lambda: published[0]
        finally:
            stop.set()
            thread.join()

    # ---- services ---------------------------------------------------------------------------

    def _call(self, client: Any, request: Any, timeout: float | None) -> Any:
        """The service's answer; TimeoutError when it is not available, or does not answer,
        within `timeout` (default: scaled(SERVICE_TIMEOUT_S)) each."""
        timeout = scaled(SERVICE_TIMEOUT_S) if timeout is None else timeout
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f"service {client.srv_name} is not available after {timeout} s")
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _: done.set())
        if not done.wait(timeout):
            client.remove_pending_request(future)
            raise TimeoutError(f"service {client.srv_name} did not answer within {timeout:.1f} s")
        return future.result()

    def plan_now(self, timeout: float | None = None) -> Trigger.Response:
        return self._call(self._plan_now, Trigger.Request(), timeout)

    def plan_now_steps(self, timeout: float | None = None) -> Trigger.Response:
        """Ask for a plan of step ids only (no captions: it comes out once the ids are decoded)."""
        return self._call(self._plan_now_steps, Trigger.Request(), timeout)

    def reload(self, timeout: float | None = None) -> Trigger.Response:
        """Ask the node to load its model_dir again (the answer comes at once; the load's
        outcome shows in the diagnostics: model_dir, model_loads, last_error)."""
        return self._call(self._reload, Trigger.Request(), timeout)

    def transition(self, name: str, timeout: float | None = None) -> bool:
        """Run a lifecycle transition (configure/activate/deactivate/cleanup); True on success."""
        request = ChangeState.Request(transition=Transition(id=TRANSITIONS[name]))
        return bool(self._call(self._change_state, request, timeout).success)

    def state(self, timeout: float | None = None) -> str:
        return self._call(self._get_state, GetState.Request(), timeout).current_state.label

    def set_parameters(self, timeout: float | None = None, **values: Any) -> list[SetParametersResult]:
        params: list[ParameterMsg] = [Parameter(name, value=value).to_parameter_msg() for name, value in values.items()]
        return list(self._call(self._set_parameters, SetParameters.Request(parameters=params), timeout).results)

    # ---- reading ----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, list]:
        """Copies of everything received so far (safe to read while messages arrive)."""
        with self._lock:
            return {
                "plans": list(self.plans),
                "steps": list(self.steps),
                "instructions": list(self.instructions),
                "plan_images": list(self.plan_images),
                "progress": list(self.progress),
                "diagnostics": list(self.diagnostics),
            }

    def close(self) -> None:
        self._executor.shutdown()
        self._thread.join(5.0)
        self.node.destroy_node()
