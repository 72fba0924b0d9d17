"""planner_node: plans the steps from the newest camera frame to the goal image.

A lifecycle node: configure loads the Planner, activate subscribes, deactivate unsubscribes,
cleanup frees the model. Inference runs on one worker thread with a latest-only slot, so the
executor keeps taking frames and answering ~/plan_now while a plan runs, and a slow model
drops stale frames instead of queueing them. Bad frames are logged (throttled) and counted;
nothing is published for them.
"""
from __future__ import annotations

import gc
import itertools
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header, String
from std_srvs.srv import Trigger

from planllm_ros.ros.image_conv import msg_to_rgb, rgb_to_image
from planllm_ros.ros.params import PARAMS, check, read_labels
from planllm_ros.runtime.images import ImageConversionError
from planllm_ros.runtime.labels import CandidateLabels
from planllm_ros.ros.plan_output import Frame, plan_document, render_plan_image
from planllm_ros.ros.worker import LatestSlotWorker

NODE_NAME = "planllm_planner"
# Newest frame only: a planner that is behind must see the present, not a backlog.
CAMERA_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.BEST_EFFORT, durability=DurabilityPolicy.VOLATILE
)
# A goal published before the node (re)subscribes is still delivered.
GOAL_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
WARN_THROTTLE_S = 5.0
DIAGNOSTICS_PERIOD_S = 1.0
WORKER_STOP_TIMEOUT_S = 60.0


@dataclass
class PlanRequest:
    seq: int
    trigger: str  # "goal" | "continuous" | "service"
    start: Frame
    goal: Frame
    queued_at: float


@dataclass
class Counters:
    frames_received: int = 0
    frames_dropped: int = 0  # camera frames replaced before any plan used them
    bad_frames: int = 0
    plans: int = 0
    errors: int = 0
    last_latency_ms: float = 0.0
    last_error: str = ""
    warnings_since_report: int = 0


class PlannerNode(LifecycleNode):
    """The lifecycle planner node (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        for spec in PARAMS:
            self.declare_parameter(spec.name, spec.default, spec.descriptor())
        for spec in PARAMS:  # values from a params file or -p must obey the same rules
            reason = check(spec.name, self.get_parameter(spec.name).value, configured=False)
            if reason:
                raise ValueError(f"bad parameter: {reason}")
        self._lock = threading.Lock()
        self._counters = Counters()
        self._planner: Any = None
        self._model_dir = ""
        self._active = False
        self._worker: LatestSlotWorker[PlanRequest] | None = None
        self._frame: Frame | None = None
        self._frame_used = True
        self._goal: Frame | None = None
        self._goal_waiting_for_frame = False
        self._seq = itertools.count(1)
        self._subscriptions_active: list[Any] = []
        self._rate_timer: Any = None
        self._publishers_plan: list[Any] = []
        self._labels: CandidateLabels | None = None
        self._read_parameters()
        self._read_labels()

        self._frames_group = MutuallyExclusiveCallbackGroup()
        self._service_group = MutuallyExclusiveCallbackGroup()
        self._timer_group = MutuallyExclusiveCallbackGroup()
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics, callback_group=self._timer_group)
        self.create_service(Trigger, "~/plan_now", self._on_plan_now, callback_group=self._service_group)
        self.add_on_set_parameters_callback(self._validate_parameters)
        self.add_post_set_parameters_callback(self._on_parameters_set)

    # ---- parameters -------------------------------------------------------------------------

    def _param(self, name: str) -> Any:
        return self.get_parameter(name).value

    def _read_parameters(self) -> None:
        self._mode: str = self._param("mode")
        self._horizon: int | None = self._param("horizon") or None
        self._publish_image: bool = self._param("publish_image")

    def _read_labels(self) -> None:
        """Read labels_file (again: setting the same path reloads an edited file). The
        set-parameters callback has already refused a bad file; one spoilt in between keeps the
        previous labels, with an error recorded."""
        labels_file = self._param("labels_file")
        try:
            self._labels = read_labels(labels_file) if labels_file else None
        except ValueError as error:
            self._record_error(f"{error}; keeping the previous labels", throttle=False)

    def _labels_problem(self, labels_file: str) -> str | None:
        """A loaded model that cannot name plans from labels (planllm_ros.model.openvocab)."""
        problem = self._planner.open_vocab_problem() if self._planner is not None and labels_file else None
        return f"labels_file {labels_file}: {problem}" if problem else None

    def _horizon_problem(self, horizon: int) -> str | None:
        """The loaded model plans a fixed number of steps: any other horizon would fail every plan."""
        if self._planner is None or horizon in (0, self._planner.horizon):
            return None
        return f"horizon {horizon}: the loaded model plans exactly {self._planner.horizon} steps (0 = the model's)"

    def _validate_parameters(self, params: list[Parameter]) -> SetParametersResult:
        for param in params:
            reason = check(param.name, param.value, configured=self._planner is not None)
            if reason is None and param.name == "horizon":
                reason = self._horizon_problem(param.value)
            if reason is None and param.name == "labels_file":
                reason = self._labels_problem(param.value)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    def _on_parameters_set(self, params: list[Parameter]) -> None:
        self._read_parameters()
        if any(p.name == "labels_file" for p in params):
            self._read_labels()
        if any(p.name == "max_rate_hz" for p in params) and self._rate_timer is not None:
            self._rate_timer.timer_period_ns = int(1e9 / self._param("max_rate_hz"))

    # ---- lifecycle --------------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            # Imported here: the planner pulls in torch and the model, which only configure needs.
            from planllm_ros.runtime.cli import default_model_dir
            from planllm_ros.runtime.planner import Planner

            model_dir = self._param("model_dir") or str(default_model_dir())

            started = time.monotonic()
            self._planner = Planner.from_dir(model_dir, backend=self._param("backend"), device=self._param("device"))
        except Exception as error:  # any load failure: stay unconfigured and say why
            self._record_error(f"cannot load the model: {error}", throttle=False)
            return TransitionCallbackReturn.FAILURE
        reason = self._horizon_problem(self._param("horizon")) or self._labels_problem(self._param("labels_file"))
        if reason:
            self._free_model()
            self._record_error(reason, throttle=False)
            return TransitionCallbackReturn.FAILURE
        self._model_dir = model_dir
        self.get_logger().info(
            f"loaded {model_dir} ({self._param('backend')} on {self._param('device')}, horizon {self._planner.horizon}, "
            f"{len(self._planner.step_labels)} steps) in {time.monotonic() - started:.1f} s"
        )
        self._plan_pub = self.create_lifecycle_publisher(String, "~/plan", 10)
        self._instructions_pub = self.create_lifecycle_publisher(String, "~/instructions", 10)
        self._image_pub = self.create_lifecycle_publisher(Image, "~/plan_image", 1)
        self._publishers_plan = [self._plan_pub, self._instructions_pub, self._image_pub]
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        camera_type = CompressedImage if self._param("compressed") else Image
        self._subscriptions_active = [
            self.create_subscription(camera_type, "image", self._on_image, CAMERA_QOS, callback_group=self._frames_group),
            self.create_subscription(Image, "goal_image", self._on_goal, GOAL_QOS, callback_group=self._frames_group),
        ]
        self._rate_timer = self.create_timer(
            1.0 / self._param("max_rate_hz"), self._on_rate_timer, callback_group=self._timer_group
        )
        self._worker = LatestSlotWorker(self._run_plan, name="planllm-planner")
        self._active = True
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_activity()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._free_model()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        return super().on_shutdown(state)

    def release(self) -> None:
        """Stop planning and free the model, whatever the state (shutdown, Ctrl-C, SIGTERM)."""
        self._stop_activity()
        self._free_model()

    def _stop_activity(self) -> None:
        self._active = False
        for subscription in self._subscriptions_active:
            self.destroy_subscription(subscription)
        self._subscriptions_active = []
        if self._rate_timer is not None:
            self.destroy_timer(self._rate_timer)
            self._rate_timer = None
        if self._worker is not None:
            self._worker.stop(WORKER_STOP_TIMEOUT_S)  # lets a running plan finish first
            self._worker = None
        with self._lock:
            self._frame, self._goal, self._goal_waiting_for_frame = None, None, False

    def _free_model(self) -> None:
        for publisher in self._publishers_plan:
            self.destroy_lifecycle_publisher(publisher)
        self._publishers_plan = []
        if self._planner is None:
            return
        self._planner.close()
        self._planner = None
        self._model_dir = ""
        gc.collect()
        torch = sys.modules.get("torch")  # only present if the backend imported it
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()
        self.get_logger().info("model freed")

    # ---- inputs -----------------------------------------------------------------------------

    def _convert(self, msg: Image | CompressedImage, topic: str) -> Frame | None:
        try:
            rgb = msg_to_rgb(msg)
        except ImageConversionError as error:
            with self._lock:
                self._counters.bad_frames += 1
            self._record_error(f"dropped a frame on {topic}: {error}", throttle=True)
            return None
        return Frame(rgb=rgb, stamp=msg.header.stamp, frame_id=msg.header.frame_id)

    def _on_image(self, msg: Image | CompressedImage) -> None:
        frame = self._convert(msg, "image")
        if frame is None:
            return
        with self._lock:
            self._counters.frames_received += 1
            self._counters.frames_dropped += not self._frame_used
            self._frame, self._frame_used = frame, False
            goal_was_waiting = self._goal_waiting_for_frame and self._mode == "on_goal"
            self._goal_waiting_for_frame = False
        if goal_was_waiting:
            self._submit("goal")

    def _on_goal(self, msg: Image) -> None:
        goal = self._convert(msg, "goal_image")
        if goal is None:
            return
        with self._lock:
            self._goal = goal
            self._goal_waiting_for_frame = self._frame is None
        self.get_logger().info(f"new goal image {goal.rgb.shape[1]}x{goal.rgb.shape[0]}")
        if self._mode == "on_goal" and not self._goal_waiting_for_frame:
            self._submit("goal")

    def _on_rate_timer(self) -> None:
        worker = self._worker
        if self._mode != "continuous" or worker is None or worker.busy or worker.depth:
            return
        with self._lock:
            fresh = self._frame is not None and not self._frame_used
        if fresh:
            self._submit("continuous")

    def _on_plan_now(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if not self._active:
            state = "inactive" if self._planner is not None else "unconfigured"
            response.success, response.message = False, f"not planning: the node is {state} (activate it first)"
            return response
        seq = self._submit("service")
        if seq is None:
            with self._lock:
                inputs = (("camera frame", self._frame), ("goal image", self._goal))
                missing = [name for name, frame in inputs if frame is None]
            response.success, response.message = False, f"no {' and no '.join(missing)} received yet"
        else:
            running = " (waiting for the plan that is running)" if self._worker and self._worker.busy else ""
            response.success = True
            response.message = f"plan #{seq} queued{running}; it will be published on {self._plan_pub.topic_name}"
        return response

    def _submit(self, trigger: str) -> int | None:
        """Hand the newest frame and goal to the worker; the sequence number, or None."""
        with self._lock:
            worker = self._worker
            if self._frame is None or self._goal is None or worker is None:
                return None
            self._frame_used = True
            request = PlanRequest(next(self._seq), trigger, self._frame, self._goal, time.monotonic())
        worker.submit(request)
        return request.seq

    # ---- planning (worker thread) -----------------------------------------------------------

    def _run_plan(self, request: PlanRequest) -> None:
        try:
            started = time.monotonic()
            labels = self._labels
            plan = self._planner.plan(request.start.rgb, request.goal.rgb, horizon=self._horizon,
                                      labels=labels and labels.labels, descriptions=labels and labels.descriptions)
            text = plan.instructions()
            age_ns = self.get_clock().now().nanoseconds - (request.start.stamp.sec * 10**9 + request.start.stamp.nanosec)
            latency = {
                "queue": (started - request.queued_at) * 1e3,
                "node_total": (time.monotonic() - request.queued_at) * 1e3,
                "start_frame_age": age_ns / 1e6,
            }
            document = plan_document(plan, request.start, request.goal, request.seq, request.trigger, latency)
            self._plan_pub.publish(String(data=document))
            self._instructions_pub.publish(String(data=text))
            if self._publish_image:
                header = Header(stamp=request.start.stamp, frame_id=request.start.frame_id)
                picture = render_plan_image(request.start.rgb, request.goal.rgb, text)
                self._image_pub.publish(rgb_to_image(picture, header=header))
        except Exception as error:  # a failed plan must not end the worker thread: report and carry on
            self._record_error(f"plan #{request.seq} failed: {type(error).__name__}: {error}", throttle=True)
            return
        with self._lock:
            self._counters.plans += 1
            self._counters.last_latency_ms = latency["node_total"]

    # ---- reporting --------------------------------------------------------------------------

    def _record_error(self, message: str, throttle: bool) -> None:
        with self._lock:
            self._counters.errors += 1
            self._counters.last_error = message
            self._counters.warnings_since_report += 1
        if throttle:
            self.get_logger().warning(message, throttle_duration_sec=WARN_THROTTLE_S)
        else:
            self.get_logger().error(message)

    def _publish_diagnostics(self) -> None:
        worker = self._worker
        with self._lock:
            c = self._counters
            values = {
                "state": "active" if self._active else ("inactive" if self._planner is not None else "unconfigured"),
                "model": Path(self._model_dir).name,
                "model_dir": self._model_dir,
                "backend": self._param("backend"),
                "device": self._param("device"),
                "mode": self._mode,
                "last_latency_ms": f"{c.last_latency_ms:.1f}",
                "plans": c.plans,
                "frames_received": c.frames_received,
                "frames_dropped": c.frames_dropped,
                "requests_dropped": worker.replaced if worker else 0,
                "queue_depth": worker.depth if worker else 0,
                "planning": worker.busy if worker else False,
                "bad_frames": c.bad_frames,
                "errors": c.errors,
                "last_error": c.last_error,
            }
            recent_warnings, c.warnings_since_report = c.warnings_since_report, 0
        if values["state"] == "unconfigured" and values["last_error"]:
            level, message = DiagnosticStatus.ERROR, values["last_error"]
        elif recent_warnings:
            level, message = DiagnosticStatus.WARN, values["last_error"]
        else:
            level, message = DiagnosticStatus.OK, f"{values['state']}, {values['plans']} plans"
        status = DiagnosticStatus(
            level=level, name=f"{self.get_fully_qualified_name()}: planner", message=message, hardware_id=self._model_dir
        )
        status.values = [KeyValue(key=key, value=str(value)) for key, value in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics_pub.publish(array)


def main(argv: list[str] | None = None) -> int:
    """`planner_node [--ros-args ...]`: run until Ctrl-C / SIGTERM; exit 1 if autostart fails."""
    rclpy.init(args=argv)
    try:
        node = PlannerNode()
    except (ValueError, ParameterException) as error:  # a bad value in a params file or -p
        print(f"planner_node: {error}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    try:
        if node.get_parameter("autostart").value:
            if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                return 1
            node.trigger_activate()
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except _rclpy.RCLError:
        # SIGTERM shuts the context down from the signal handler; a spin already past its
        # ok() check then fails to build its wait set. That is a normal stop, not an error.
        if executor.context.ok():
            raise
    finally:
        node.release()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
