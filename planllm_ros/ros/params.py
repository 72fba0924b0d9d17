"""The planner node's parameters: one table of names, defaults, descriptions and rules.

PARAMS is the only place a default is decided. config/planllm.yaml and launch/planllm.launch.xml
repeat some of them (a params file and an XML argument cannot import this table) and must hold
exactly these values; launch/planllm.launch.py reads them from here. test/test_ros_param_defaults.py
checks all three.

rclpy enforces types, ranges and read-only from the descriptors; `check` adds what a descriptor
cannot say (choices, device syntax, a readable labels file, parameters that only take effect
at configure). The node runs `check` at start-up and in its set-parameters callback.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

from planllm_ros.runtime.labels import CandidateLabels, LabelFileError, read_label_file

BACKENDS = ("torch", "onnxruntime", "tensorrt")
MODES = ("on_goal", "continuous", "on_request")
MAX_HORIZON = 64
MAX_THREADS = 256  # a bound for the descriptor; the planner never runs more threads than usable cores
DEVICE_PATTERN = re.compile(r"^(cpu|cuda(:\d+)?)$")


@dataclass(frozen=True)
class ParamSpec:
    """One parameter. `configure_time`: read when the model loads, so it may only change while
    the node is unconfigured (changing it under a loaded model would silently do nothing)."""

    name: str
    default: Any
    description: str
    read_only: bool = False
    configure_time: bool = False
    choices: tuple[str, ...] = ()
    int_range: tuple[int, int] | None = None
    float_range: tuple[float, float] | None = None

    def descriptor(self) -> ParameterDescriptor:
        constraints = f"one of {', '.join(self.choices)}" if self.choices else ""
        if self.configure_time:
            constraints = "; ".join(filter(None, [constraints, "set while unconfigured (read at configure)"]))
        descriptor = ParameterDescriptor(
            name=self.name,
            description=self.description,
            additional_constraints=constraints,
            read_only=self.read_only,
        )
        if self.int_range:
            descriptor.integer_range = [IntegerRange(from_value=self.int_range[0], to_value=self.int_range[1], step=1)]
        if self.float_range:
            descriptor.floating_point_range = [
                FloatingPointRange(from_value=self.float_range[0], to_value=self.float_range[1], step=0.0)
            ]
        return descriptor


PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("model_dir", "", "model directory (Planner.from_dir); empty: the bundled demo model. Set while "
              "configured, the node loads it beside the running model and swaps it in once loaded (~/reload loads "
              "it again); a load that fails leaves the running model planning"),
    ParamSpec("backend", "torch", "inference backend", configure_time=True, choices=BACKENDS),
    ParamSpec("device", "cpu", "torch device: cpu, cuda or cuda:N", configure_time=True),
    ParamSpec("threads", 0, "threads per op for torch and onnxruntime; 0: the planner's defaults (one each, "
              "onnxruntime's threads never spinning), fastest on a small or busy computer; never more than the cores "
              "the node may run on (its CPU affinity)", configure_time=True, int_range=(0, MAX_THREADS)),
    ParamSpec("horizon", 0, "number of steps to plan; 0: a model with a state head chooses the number for each "
              "goal (1 to its max_horizon; ~/plan's horizon_probs say how sure), any other plans its trained T; a "
              "number the loaded model cannot plan is refused", int_range=(0, MAX_HORIZON)),
    ParamSpec("max_rate_hz", 2.0, "highest rate at which continuous mode takes a new camera frame (to follow the "
              "plan, or to plan)", float_range=(0.1, 60.0)),
    ParamSpec("labels_file", "", "UTF-8 text file of candidate labels, one per line, that each plan's steps are also "
              "named from (open_vocab_labels); descriptions from FILE's stem + .descriptions.json when it exists; "
              "a bad file is refused and the previous labels stay; empty: none"),
    ParamSpec(
        "mode",
        "on_goal",
        "on_goal: plan once per new goal image (no progress); continuous: plan once per goal, then follow the "
        "plan on new frames at most max_rate_hz, publishing ~/progress (steps done, next step) and planning again "
        "only when a frame leaves the plan (a model without a state head cannot follow a plan: it plans again on "
        "every new frame); on_request: plan only when ~/plan_now is called",
        choices=MODES,
    ),
    ParamSpec("publish_image", True, "publish ~/plan_image (start | goal with the plan written under them; drawn only while someone subscribes)"),
    ParamSpec("compressed", False, "subscribe `image` as sensor_msgs/CompressedImage (JPEG/PNG)", read_only=True),
    ParamSpec("autostart", True, "configure and activate at start-up, so a plain `ros2 run` plans", read_only=True),
)
SPECS = {spec.name: spec for spec in PARAMS}


def read_labels(path: str | Path) -> CandidateLabels:
    """The labels (and descriptions) of a labels_file (planllm_ros.runtime.labels: the same
    rules as `planllm plan --labels`); ValueError naming the parameter, file and line."""
    try:
        return read_label_file(path)
    except LabelFileError as error:
        raise ValueError(f"labels_file {error}") from error


def check(name: str, value: Any, configured: bool) -> str | None:
    """Why `value` is not acceptable for parameter `name` now, or None when it is."""
    spec = SPECS.get(name)
    if spec is None:
        return None  # not ours (e.g. use_sim_time): rclpy validates it
    if spec.configure_time and configured:
        return f"{name} is read at configure: deactivate and clean up the node before changing it"
    if spec.choices and value not in spec.choices:
        return f"{name} must be one of {', '.join(spec.choices)}, got {value!r}"
    if name == "device" and not DEVICE_PATTERN.match(value):
        return f"device must be cpu, cuda or cuda:N, got {value!r}"
    if name == "model_dir" and value and not Path(value).is_dir():
        return f"model_dir {value} is not a directory"
    if name == "labels_file" and value:
        try:
            read_labels(value)
        except ValueError as error:
            return str(error)
    return None
