"""planner_node: plans the steps from the newest camera frame to the goal image.

A lifecycle node: configure loads the Planner, activate subscribes, deactivate unsubscribes,
cleanup frees the model. Inference runs on one worker thread with a latest-only slot, so the
executor keeps taking frames and answering ~/plan_now while a plan runs, and a slow model
drops stale frames instead of queueing them. Bad frames are logged (throttled) and counted;
nothing is published for them.

Nothing the node does makes a service wait: the executor spins from the start (autostart
configures beside it, so ~/plan_now, get_state and parameters answer while the model loads,
which takes tens of seconds on a busy computer), lifecycle transitions, services, frames and
timers have callback groups of their own, and a new model (~/reload, or model_dir set while
configured) loads on a thread of its own beside the running one, which plans until the new
one has loaded and passed its checks; a load that fails leaves the running model in place.
The executor is planllm_ros.ros.executor.NodeExecutor, rclpy's multi-threaded one without the
loop that re-queued waiting callbacks and starved the node on an idle computer.

Step ids first, words after: the LLM's captions take longer than the rest of a plan, so the
worker publishes the ~/plan document as soon as the step ids are decoded ("captions_pending":
true), then the same plan (same seq) with its captions ("captions_pending": false), and
~/instructions and ~/plan_image from that final plan; the picture is drawn only while someone
subscribes to it (drawing and sending it takes about 25 ms of the planning thread on a 2-core
CPU, which a goal arriving meanwhile waits for). ~/plan_now_steps plans without captions for a
caller that only needs the steps. Threads per op come from the `threads` parameter
(planllm_ros.runtime.threads: 0 gives the planner's defaults).

Horizon and progress: with `horizon` 0 a model with a state head chooses how many steps each
goal needs. In continuous mode the node plans once per goal and then follows that plan: each
new frame (at most max_rate_hz) goes through Planner.track on the same worker, and ~/progress
says which steps are done and which is next. Only a frame that leaves the plan (a step undone,
the plan's propositions read against it) makes a new plan, from that frame, under a new seq
(trigger "left_plan"); a new goal starts a new plan. A model that cannot follow a plan (no state
head) plans again on every new frame instead.
"""
from __future__ import annotations

import gc
import itertools
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.exceptions import ParameterException
from rclpy.event_handler import QoSMessageLostInfo, SubscriptionEventCallbacks
from rclpy.executors import ExternalShutdownException
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.lifecycle import LifecycleNodeMixin, LifecycleState, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.task import Future
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header, String
from std_srvs.srv import Trigger

from planllm_ros.ros.executor import NodeExecutor
from planllm_ros.ros.image_conv import msg_to_rgb, rgb_to_image
from planllm_ros.ros.params import PARAMS, check, read_labels
from planllm_ros.runtime.images import ImageConversionError
from planllm_ros.runtime.labels import CandidateLabels
from planllm_ros.runtime.plan import Plan
from planllm_ros.model.progress import Progress
from planllm_ros.ros.plan_output import Frame, plan_document, plan_text, progress_document, render_plan_image
from planllm_ros.ros.worker import LatestSlotWorker

NODE_NAME = "planllm_planner"
# ROS's sensor-data profile (best effort, the last 5): the queue absorbs an executor that a busy
# computer holds up for a few frame periods (with depth 1, 13 % of 30 Hz frames were replaced
# unread with two busy processes on two cores); the callback only keeps the newest frame, so
# a planner that is behind still sees the present, not a backlog.
CAMERA_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.BEST_EFFORT, durability=DurabilityPolicy.VOLATILE
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
# A camera that has sent frames and then none for this long is reported as silent; a goal that
# arrives meanwhile waits for the next frame instead of planning from the old one.
CAMERA_SILENT_S = 2.0
EXECUTOR_THREADS = 4


@dataclass
class PlanRequest:
    seq: int | None  # None: a continuous-mode frame, numbered only when a plan is made from it
    trigger: str  # "goal" | "continuous" | "service" | "left_plan"
    start: Frame
    goal: Frame
    queued_at: float
    captions: bool = True  # False: step ids only (~/plan_now_steps)


@dataclass
class Counters:
    frames_received: int = 0
    frames_dropped: int = 0  # camera frames replaced before any plan used them
    frames_lost_in_transport: int = 0  # camera frames DDS reports as lost on the way (message_lost)
    bad_frames: int = 0
    plans: int = 0
    progress: int = 0  # frames read against the followed plan (continuous mode)
    replans: int = 0  # plans made because a frame left the followed plan
    plan_images: int = 0  # ~/plan_image pictures drawn and sent (none while nobody subscribes)
    model_loads: int = 0  # models loaded and swapped in (configure and reloads)
    errors: int = 0
    last_latency_ms: float = 0.0
    last_error: str = ""
    warnings_since_report: int = 0


@dataclass
class Following:
    """The plan continuous mode follows: published as `seq`, made for the goal frame `goal` (a new
    goal needs a new plan); `done`: its steps done at the last frame, where the next frame's
    reading starts from (progress rarely goes backwards)."""

    plan: Plan
    seq: int
    goal: Frame
    done: int = 0


class PlannerNode(LifecycleNodeMixin, Node):
    """The lifecycle planner node (see the module docstring). Built as rclpy's LifecycleNode is,
    but with the lifecycle services in a callback group of their own: a transition that loads a
    model must not hold up the parameter services (the node's default group)."""

    def __init__(self, **kwargs: Any) -> None:
        Node.__init__(self, NODE_NAME, **kwargs)
        LifecycleNodeMixin.__init__(self, callback_group=MutuallyExclusiveCallbackGroup())
        for spec in PARAMS:
            self.declare_parameter(spec.name, spec.default, spec.descriptor())
        for spec in PARAMS:  # values from a params file or -p must obey the same rules
            reason = check(spec.name, self.get_parameter(spec.name).value, configured=False)
            if reason:
                raise ValueError(f"bad parameter: {reason}")
        self._lock = threading.Lock()
        # Held while a plan runs and while the model is swapped or freed: a model is never
        # replaced or closed under a running plan.
        self._model_lock = threading.Lock()
        self._counters = Counters()
        self._planner: Any = None
        self._model_dir = ""
        self._configuring = False
        self._active = False
        self._loader = LatestSlotWorker(self._reload, name="planllm-loader")
        self._last_frame_at: float | None = None
        self._camera_silent = False
        self._worker: LatestSlotWorker[PlanRequest] | None = None
        self._frame: Frame | None = None
        self._frame_used = True
        self._goal: Frame | None = None
        self._goal_waiting_for_frame = False
        self._following: Following | None = None  # continuous mode's plan for the current goal
        self._seq = itertools.count(1)
        self._subscriptions_active: list[Any] = []
        self._rate_timer: Any = None
        self._publishers_plan: list[Any] = []
        self._labels: CandidateLabels | None = None
        self._labels_reported: tuple[Any, Any, Any] | None = None  # (labels, planner, their report)
        self._read_parameters()
        self._read_labels()

        self._frames_group = MutuallyExclusiveCallbackGroup()
        self._goal_group = MutuallyExclusiveCallbackGroup()  # a goal never waits behind camera frames
        self._service_group = MutuallyExclusiveCallbackGroup()
        self._timer_group = MutuallyExclusiveCallbackGroup()
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics, callback_group=self._timer_group)
        self.create_service(Trigger, "~/plan_now", self._plan_now_service(captions=True),
                            callback_group=self._service_group)
        self.create_service(Trigger, "~/plan_now_steps", self._plan_now_service(captions=False),
                            callback_group=self._service_group)
        self.create_service(Trigger, "~/reload", self._on_reload, callback_group=self._service_group)
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

    def _labels_report(self) -> Any:
        """The running model's report on the labels in force (planllm_ros.model.openvocab.LabelReport:
        which known steps got no label, so that plans naming them say unknown, and how sure each
        mapping is), made and logged once per list and model; None without labels or a model."""
        labels, planner = self._labels, self._planner
        if labels is None or planner is None:
            return None
        reported = self._labels_reported
        if reported is not None and reported[0] is labels and reported[1] is planner:
            return reported[2]
        report = None
        try:
            with self._model_lock:  # the index it builds is the one plans use
                report = planner.label_report(labels.labels, labels.descriptions)
            self.get_logger().info(f"labels_file {labels.path}: {report.summary()}")
        except Exception as error:  # reported once, like the report itself; plans then say why again
            self._record_error(f"labels_file {labels.path}: {type(error).__name__}: {error}", throttle=False)
        self._labels_reported = (labels, planner, report)
        return report

    @staticmethod
    def _labels_problem(planner: Any, labels_file: str) -> str | None:
        """A model that cannot name plans from labels (planllm_ros.model.openvocab)."""
        problem = planner.open_vocab_problem() if planner is not None and labels_file else None
        return f"labels_file {labels_file}: {problem}" if problem else None

    @staticmethod
    def _horizon_problem(planner: Any, horizon: int) -> str | None:
        """Why the loaded model cannot plan `horizon` steps (it knows: a state head plans 1 to its
        max_horizon, any other model only its T); refused up front, or every plan would fail."""
        return None if planner is None else planner.horizon_problem(horizon)

    def _validate_parameters(self, params: list[Parameter]) -> SetParametersResult:
        for param in params:
            reason = check(param.name, param.value, configured=self._planner is not None)
            if reason is None and param.name == "horizon":
                reason = self._horizon_problem(self._planner, param.value)
            if reason is None and param.name == "labels_file":
                reason = self._labels_problem(self._planner, param.value)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    def _on_parameters_set(self, params: list[Parameter]) -> None:
        self._read_parameters()
        if any(p.name in ("mode", "horizon") for p in params):
            with self._lock:
                self._following = None  # the next frame plans afresh, with the new settings
        if any(p.name == "labels_file" for p in params):
            self._read_labels()
        if any(p.name == "max_rate_hz" for p in params) and self._rate_timer is not None:
            self._rate_timer.timer_period_ns = int(1e9 / self._param("max_rate_hz"))
        if any(p.name == "model_dir" for p in params) and self._planner is not None:
            self._loader.submit(self._param("model_dir"))  # unconfigured: configure reads it

    # ---- lifecycle --------------------------------------------------------------------------

    def _load(self, model_dir: str) -> tuple[Any, str]:
        """A Planner for `model_dir` ("": the bundled model) that fits the node's horizon and
        labels_file, and the folder's path; ValueError saying why not."""
        # Imported here: the planner pulls in torch and the model, which only loading needs.
        from planllm_ros.runtime.cli import default_model_dir
        from planllm_ros.runtime.planner import Planner

        path, backend = model_dir or str(default_model_dir()), self._param("backend")
        started = time.monotonic()
        try:
            planner = Planner.from_dir(path, backend=backend, device=self._param("device"),
                                       threads=self._param("threads"))
        except Exception as error:  # any load failure, said in one line
            raise ValueError(f"cannot load the model from {path}: {error}") from error
        reason = self._horizon_problem(planner, self._param("horizon")) or self._labels_problem(
            planner, self._param("labels_file")
        )
        if reason:
            planner.close()
            raise ValueError(reason)
        horizon = f"1-{planner.max_horizon}" if planner.chooses_horizon else planner.horizon
        self.get_logger().info(
            f"loaded {path} ({backend} on {self._param('device')}, horizon {horizon}, "
            f"{len(planner.step_labels)} steps) in {time.monotonic() - started:.1f} s; threads per op: "
            f"{planner.threads.describe()}"
        )
        return planner, path

    def _reload(self, model_dir: str) -> None:
        """Loader thread: load `model_dir` beside the running model and swap it in once loaded;
        a failed load leaves the running model planning."""
        try:
            planner, path = self._load(model_dir)
        except ValueError as error:
            self._record_error(f"{error}; still planning with {self._model_dir}", throttle=False)
            return
        with self._model_lock:  # waits for a running plan
            old, configured = self._planner, self._planner is not None
            if configured:
                self._planner, self._model_dir = planner, path
                with self._lock:
                    self._following = None  # its state reading is the old model's
        (old if configured else planner).close()  # cleaned up meanwhile: the new one is not wanted
        if configured:
            with self._lock:
                self._counters.model_loads += 1
            self.get_logger().info(f"now planning with {self._model_dir}")

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._configuring = True
        try:
            planner, path = self._load(self._param("model_dir"))
            with self._model_lock:
                self._planner, self._model_dir = planner, path
        except ValueError as error:
            self._record_error(str(error), throttle=False)
            return TransitionCallbackReturn.FAILURE
        finally:
            self._configuring = False
        with self._lock:
            self._counters.model_loads += 1
        self._plan_pub = self.create_lifecycle_publisher(String, "~/plan", 10)
        self._instructions_pub = self.create_lifecycle_publisher(String, "~/instructions", 10)
        self._image_pub = self.create_lifecycle_publisher(Image, "~/plan_image", 1)
        self._progress_pub = self.create_lifecycle_publisher(String, "~/progress", 10)
        self._publishers_plan = [self._plan_pub, self._instructions_pub, self._image_pub, self._progress_pub]
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        camera_type = CompressedImage if self._param("compressed") else Image
        # DDS reports frames that never reached the subscription (message_lost): counted apart
        # from frames its queue replaced before the executor took them (the rest of those sent).
        lost = SubscriptionEventCallbacks(message_lost=self._on_frames_lost)
        self._subscriptions_active = [
            self.create_subscription(camera_type, "image", self._on_image, CAMERA_QOS, callback_group=self._frames_group,
                                     event_callbacks=lost),
            self.create_subscription(Image, "goal_image", self._on_goal, GOAL_QOS, callback_group=self._goal_group),
        ]
        self._rate_timer = self.create_timer(
            1.0 / self._param("max_rate_hz"), self._on_rate_timer, callback_group=self._timer_group
        )
        self._worker = LatestSlotWorker(self._run_request, name="planllm-planner")
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
        """Stop planning and loading and free the model, whatever the state (shutdown, Ctrl-C,
        SIGTERM)."""
        self._stop_activity()
        self._loader.stop(WORKER_STOP_TIMEOUT_S)  # lets a running load finish first
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
            self._following = None
            self._last_frame_at, self._camera_silent = None, False

    def _free_model(self) -> None:
        for publisher in self._publishers_plan:
            self.destroy_lifecycle_publisher(publisher)
        self._publishers_plan = []
        with self._model_lock:
            planner, self._planner, self._model_dir = self._planner, None, ""
        if planner is None:
            return
        planner.close()
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
        now = time.monotonic()
        with self._lock:
            self._counters.frames_received += 1
            self._counters.frames_dropped += not self._frame_used
            self._frame, self._frame_used = frame, False
            goal_was_waiting = self._goal_waiting_for_frame and self._mode == "on_goal"
            self._goal_waiting_for_frame = False
            silent_for = now - self._last_frame_at if self._camera_silent and self._last_frame_at else None
            self._last_frame_at, self._camera_silent = now, False
        if silent_for is not None:
            self.get_logger().info(f"camera frames again on {self._camera_topic()} after {silent_for:.1f} s of silence")
        if goal_was_waiting:
            self._submit("goal")

    def _on_frames_lost(self, info: QoSMessageLostInfo) -> None:
        with self._lock:
            self._counters.frames_lost_in_transport = info.total_count

    def _camera_topic(self) -> str:
        return self._subscriptions_active[0].topic_name if self._subscriptions_active else "image"

    def _check_camera(self) -> float | None:
        """Seconds since the last camera frame (None before the first); says once when the
        camera has gone silent."""
        with self._lock:
            if self._last_frame_at is None:
                return None
            silent_s = time.monotonic() - self._last_frame_at
            newly_silent = silent_s >= CAMERA_SILENT_S and not self._camera_silent
            self._camera_silent = self._camera_silent or newly_silent
        if newly_silent:
            self.get_logger().warning(f"no camera frame on {self._camera_topic()} for {silent_s:.1f} s: "
                                      "a new goal waits for the next frame")
        return silent_s

    def _on_goal(self, msg: Image) -> None:
        goal = self._convert(msg, "goal_image")
        if goal is None:
            return
        with self._lock:
            self._goal = goal
            self._goal_waiting_for_frame = self._frame is None or self._camera_silent
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

    def _state(self) -> str:
        if self._active:
            return "active"
        if self._configuring:
            return "configuring"
        return "inactive" if self._planner is not None else "unconfigured"

    def _plan_now_service(self, captions: bool) -> Callable[[Trigger.Request, Trigger.Response], Trigger.Response]:
        """The callback of ~/plan_now (captions: True) or ~/plan_now_steps (False: step ids only,
        for a caller that acts on the steps and need not wait for the LLM's words)."""
        what = "plan" if captions else "plan (step ids only)"

        def on_plan_now(request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
            if not self._active:
                state = self._state()
                then = "wait for it to load the model" if state == "configuring" else "activate it first"
                response.success, response.message = False, f"not planning: the node is {state} ({then})"
                return response
            request = self._submit("service", captions=captions)
            if request is None:
                with self._lock:
                    inputs = (("camera frame", self._frame), ("goal image", self._goal))
                    missing = [name for name, frame in inputs if frame is None]
                response.success, response.message = False, f"no {' and no '.join(missing)} received yet"
            else:
                running = " (waiting for the plan that is running)" if self._worker and self._worker.busy else ""
                response.success = True
                response.message = (f"{what} #{request.seq} queued{running}; it will be published on "
                                    f"{self._plan_pub.topic_name}")
            return response

        return on_plan_now

    def _on_reload(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if self._planner is None:
            response.success, response.message = False, f"no model to reload: the node is {self._state()}"
            return response
        model_dir = self._param("model_dir")
        self._loader.submit(model_dir)
        response.success = True
        response.message = (f"loading {model_dir or 'the bundled model'}; {self._model_dir} plans until it has "
                            "loaded (diagnostics: model_dir, model_loads, last_error)")
        return response

    def _submit(self, trigger: str, captions: bool = True) -> PlanRequest | None:
        """Hand the newest frame and goal to the worker; the request, or None without both.
        captions: False plans the step ids only. A continuous-mode frame gets its seq only if a
        plan is made from it (the worker decides: it may only move the followed plan on)."""
        with self._lock:
            worker = self._worker
            if self._frame is None or self._goal is None or worker is None:
                return None
            self._frame_used = True
            seq = None if trigger == "continuous" else next(self._seq)
            request = PlanRequest(seq, trigger, self._frame, self._goal, time.monotonic(), captions)
        worker.submit(request)
        return request

    # ---- planning and following (worker thread) ----------------------------------------------

    def _run_request(self, request: PlanRequest) -> None:
        """A continuous-mode frame moves the followed plan on, when there is one for its goal;
        it is planned from when there is none, or when the frame left the plan. Any other
        request plans."""
        with self._lock:
            following = self._following
        if request.trigger == "continuous" and following is not None and following.goal is request.goal:
            try:
                progress = self._track(request, following)
            except Exception as error:  # as a failed plan: report, keep the worker thread
                self._record_error(f"progress on plan #{following.seq} failed: {type(error).__name__}: {error}",
                                   throttle=True)
                return
            if not progress.left_plan:
                return
            request = replace(request, trigger="left_plan")
            with self._lock:
                self._counters.replans += 1
        if request.seq is None:
            with self._lock:
                request = replace(request, seq=next(self._seq))
        self._run_plan(request)

    def _track(self, request: PlanRequest, following: Following, read: bool = True) -> Progress:
        """Read the request's frame against the followed plan and publish ~/progress (and
        ~/plan_image when the steps done change); the progress. read False: the frame is the
        one the plan was made from, whose reading the plan holds."""
        started = time.monotonic()
        with self._model_lock:
            progress = self._planner.track(following.plan, request.start.rgb if read else None, following.done)
        track_ms = (time.monotonic() - started) * 1e3
        self._progress_pub.publish(String(data=progress_document(
            following.plan, progress, request.start, request.goal, following.seq, track_ms)))
        moved = not progress.left_plan and progress.done != following.done
        if not progress.left_plan:
            following.done = progress.done
        with self._lock:
            self._counters.progress += 1
        if moved:
            self._publish_image_of(following.plan, request.start, request.goal, progress)
        return progress

    def _follow(self, plan: Plan, request: PlanRequest) -> Progress:
        """Follow `plan` (continuous mode, a model that reads states) from the frame it was made
        from: its progress there (no steps done) goes out on ~/progress like every later frame's."""
        following = Following(plan, request.seq, request.goal)
        with self._lock:
            self._following = following
        return self._track(request, following, read=False)

    def _publish_image_of(self, plan: Plan, frame: Frame, goal: Frame, progress: Progress | None) -> None:
        """~/plan_image: `frame` | goal with the plan under them (with progress: done and next
        marked), when enabled and someone subscribes. Drawn here, on the planning thread: on a
        thread of its own the picture took turns with planning for the interpreter lock, and
        planning on two cores ran about 4x slower than it waits for the picture here."""
        if not (self._publish_image and self._image_pub.get_subscription_count() > 0):
            return
        picture = render_plan_image(frame.rgb, goal.rgb, plan_text(plan, progress),
                                    left_title="start" if progress is None else "now")
        self._image_pub.publish(rgb_to_image(picture, header=Header(stamp=frame.stamp, frame_id=frame.frame_id)))
        with self._lock:
            self._counters.plan_images += 1

    def _publish_document(self, plan: Plan, request: PlanRequest, started: float, captions_pending: bool) -> float:
        """Publish `plan` on ~/plan with the node's stages until now; its node_total (ms)."""
        age_ns = self.get_clock().now().nanoseconds - (request.start.stamp.sec * 10**9 + request.start.stamp.nanosec)
        latency = {
            "queue": (started - request.queued_at) * 1e3,
            "node_total": (time.monotonic() - request.queued_at) * 1e3,
            "start_frame_age": age_ns / 1e6,
        }
        document = plan_document(plan, request.start, request.goal, request.seq, request.trigger, latency,
                                 captions_pending=captions_pending)
        self._plan_pub.publish(String(data=document))
        return latency["node_total"]

    def _run_plan(self, request: PlanRequest) -> None:
        try:
            started = time.monotonic()
            labels = self._labels
            with self._model_lock:  # the planner calls on_steps only when captions follow
                plan = self._planner.plan(
                    request.start.rgb, request.goal.rgb, horizon=self._horizon, labels=labels and labels.labels,
                    descriptions=labels and labels.descriptions, captions=request.captions,
                    on_steps=lambda first: self._publish_document(first, request, started, captions_pending=True),
                )
            node_total_ms = self._publish_document(plan, request, started, captions_pending=False)
            text = plan.instructions()
            self._instructions_pub.publish(String(data=text))
            follows = self._mode == "continuous" and plan.start_probs is not None
            progress = self._follow(plan, request) if follows else None
            self._publish_image_of(plan, request.start, request.goal, progress)
        except Exception as error:  # a failed plan must not end the worker thread: report and carry on
            self._record_error(f"plan #{request.seq} failed: {type(error).__name__}: {error}", throttle=True)
            return
        with self._lock:
            self._counters.plans += 1
            self._counters.last_latency_ms = node_total_ms

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
        camera_silent_s = self._check_camera()
        labels, report = self._labels, self._labels_report()
        with self._lock:
            c = self._counters
            values = {
                "state": self._state(),
                "model": Path(self._model_dir).name,
                "model_dir": self._model_dir,
                "backend": self._param("backend"),
                "device": self._param("device"),
                "threads": self._planner.threads.describe() if self._planner is not None else "",
                "mode": self._mode,
                "model_loads": c.model_loads,
                "loading": self._configuring or self._loader.busy or bool(self._loader.depth),
                "camera_silent_s": "" if camera_silent_s is None else f"{camera_silent_s:.1f}",
                "last_latency_ms": f"{c.last_latency_ms:.1f}",
                "plans": c.plans,
                "progress": c.progress,
                "replans": c.replans,
                "plan_images": c.plan_images,
                "frames_received": c.frames_received,
                "frames_dropped": c.frames_dropped,
                "frames_lost_in_transport": c.frames_lost_in_transport,
                "requests_dropped": worker.replaced if worker else 0,
                "queue_depth": worker.depth if worker else 0,
                "planning": worker.busy if worker else False,
                "bad_frames": c.bad_frames,
                "errors": c.errors,
                "last_error": c.last_error,
                "labels": "" if labels is None else f"{len(labels.labels)} from {labels.path}",
                "labels_unlabelled_steps": "" if report is None else "; ".join(report.unlabelled),
                "labels_least_sure": "" if report is None else "; ".join(
                    f"{m.step} -> {m.label} ({m.margin:+.2f})" for m in report.least_sure[:3]),
            }
            recent_warnings, c.warnings_since_report = c.warnings_since_report, 0
        if values["state"] == "unconfigured" and values["last_error"]:
            level, message = DiagnosticStatus.ERROR, values["last_error"]
        elif recent_warnings:
            level, message = DiagnosticStatus.WARN, values["last_error"]
        elif self._camera_silent:
            level, message = DiagnosticStatus.WARN, f"no camera frame for {values['camera_silent_s']} s"
        else:
            level, message = DiagnosticStatus.OK, f"{values['state']}, {values['plans']} plans"
        status = DiagnosticStatus(
            level=level, name=f"{self.get_fully_qualified_name()}: planner", message=message, hardware_id=self._model_dir
        )
        status.values = [KeyValue(key=key, value=str(value)) for key, value in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics_pub.publish(array)


def _autostart(node: PlannerNode, failed: Future) -> None:
    """Configure and activate beside the spinning executor; `failed` gets a result if either
    fails, unless the node was shut down meanwhile (SIGTERM while loading: a normal stop)."""
    try:
        ok = node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        ok = ok and node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    except _rclpy.RCLError:
        ok = False
    if not ok and node.context.ok():
        failed.set_result(True)


def main(argv: list[str] | None = None) -> int:
    """`planner_node [--ros-args ...]`: run until Ctrl-C / SIGTERM; exit 1 if autostart fails."""
    rclpy.init(args=argv)
    try:
        node = PlannerNode()
    except (ValueError, ParameterException) as error:  # a bad value in a params file or -p
        print(f"planner_node: {error}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    executor = NodeExecutor(num_threads=EXECUTOR_THREADS)
    executor.add_node(node)
    autostart_failed = Future()
    autostart = None
    if node.get_parameter("autostart").value:
        autostart = threading.Thread(target=_autostart, args=(node, autostart_failed), name="planllm-autostart")
        autostart.start()
    try:
        executor.spin_until_future_complete(autostart_failed)  # until shutdown, unless autostart fails
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except _rclpy.RCLError:
        # SIGTERM shuts the context down from the signal handler; a spin already past its
        # ok() check then fails to build its wait set. That is a normal stop, not an error.
        if executor.context.ok():
            raise
    finally:
        if autostart is not None:
            autostart.join()  # a model being loaded is loaded, then freed
        node.release()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 1 if autostart_failed.done() else 0


if __name__ == "__main__":
    sys.exit(main())
