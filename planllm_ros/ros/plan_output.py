"""What the node publishes for one plan: the ~/plan JSON document, the ~/progress JSON document
(continuous mode: where a camera frame stands on the plan) and the ~/plan_image picture.

The plan goes out as JSON in a std_msgs/String because custom .msg packages cannot be built
from the PyPI ROS wheels this package installs; the document carries the same fields a
message would, stamps included, so consumers can match a plan to the frames it came from.
"""
from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Time
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont

from planllm_ros.model.progress import Progress
from planllm_ros.runtime.plan import Plan

PANEL_HEIGHT = 240
TEXT_LINE_PX = 14
TEXT_MARGIN_PX = 6


@dataclass
class Frame:
    """A converted camera or goal frame with the header it arrived with."""

    rgb: np.ndarray
    stamp: Time
    frame_id: str


def stamp_dict(stamp: Time) -> dict[str, int]:
    return {"sec": int(stamp.sec), "nanosec": int(stamp.nanosec)}


def plan_document(
    plan: Plan, start: Frame, goal: Frame, seq: int, trigger: str, latency_ms: dict[str, float], captions_pending: bool
) -> str:
    """The ~/plan JSON: stamped with the start frame's header (the plan describes that moment),
    plus the goal's header, the plan fields and per-stage latency (model stages + node stages).
    captions_pending: this document carries the step ids before the LLM has written the
    captions; the same plan (same seq) follows with them, so a robot can start acting on the
    ids while the words are written."""
    document = {
        "header": {"stamp": stamp_dict(start.stamp), "frame_id": start.frame_id},
        "goal_header": {"stamp": stamp_dict(goal.stamp), "frame_id": goal.frame_id},
        "seq": seq,
        "trigger": trigger,
        "captions_pending": captions_pending,
        "horizon": plan.horizon,
        "horizon_probs": plan.horizon_probs,
        "horizon_confidence": plan.horizon_confidence,
        "step_ids": [int(i) for i in plan.step_ids],
        "labels": list(plan.labels),
        "scores": [float(s) for s in plan.scores],
        "captions": list(plan.captions),
        "open_vocab_labels": plan.open_vocab_labels,
        "open_vocab_method": plan.open_vocab_method,
        "open_vocab_unknown": plan.open_vocab_unknown,
        "backend": plan.backend,
        "start_state": _states(plan.start_state),
        "goal_state": _states(plan.goal_state),
        "latency_ms": {**{k: float(v) for k, v in plan.timings_ms.items()}, **latency_ms},
    }
    return json.dumps(document)


def progress_document(plan: Plan, progress: Progress, frame: Frame, goal: Frame, seq: int, track_ms: float) -> str:
    """The ~/progress JSON: where `frame` (its header is the document's) stands on the plan
    published as `seq`: the steps done, the next step (null once finished), how sure, and
    whether the frame left the plan (the node then plans again from it, under a new seq)."""
    done, finished = progress.done, progress.finished
    document = {
        "header": {"stamp": stamp_dict(frame.stamp), "frame_id": frame.frame_id},
        "goal_header": {"stamp": stamp_dict(goal.stamp), "frame_id": goal.frame_id},
        "seq": seq,
        "done": done,
        "horizon": plan.horizon,
        "step_ids": [int(i) for i in plan.step_ids],
        "labels": list(plan.labels),
        "next_step_id": None if finished else int(plan.step_ids[done]),
        "next_label": None if finished else plan.labels[done],
        "confidence": float(progress.confidence),
        "probs": [float(p) for p in progress.probs],
        "finished": finished,
        "left_plan": progress.left_plan,
        "reason": progress.reason,
        "latency_ms": {"track": track_ms},
    }
    return json.dumps(document)


def _states(readings) -> list[dict] | None:
    return None if readings is None else [{"sentence": r.sentence, "probability": r.probability} for r in readings]


def plan_text(plan: Plan, progress: Progress | None = None) -> str:
    """What ~/plan_image writes under the frames: the numbered steps, then the states read in
    the start and goal frames (models with a state head), which show why the plan was chosen.
    With `progress`, each step is marked done "[x]" or to do "[ ]", and the next one "<- next",
    so the picture shows where the robot stands."""
    lines = plan.instructions().splitlines()
    if progress is not None:
        lines = [f"[{'x' if i < progress.done else ' '}] {line}{'  <- next' if i == progress.done else ''}"
                 for i, line in enumerate(lines)]
    states = plan.state_text()
    return "\n".join(lines + ([states] if states else []))


def _panel(rgb: np.ndarray) -> PILImage.Image:
    image = PILImage.fromarray(rgb)
    width = max(1, round(image.width * PANEL_HEIGHT / image.height))
    return image.resize((width, PANEL_HEIGHT), PILImage.Resampling.BILINEAR)


def render_plan_image(start: np.ndarray, goal: np.ndarray, text: str, left_title: str = "start") -> np.ndarray:
    """Start | goal side by side at a common height, the plan's text written under them;
    `left_title` names the left frame ("now" when it is the frame progress was read from)."""
    left, right = _panel(start), _panel(goal)
    width = left.width + right.width
    font = ImageFont.load_default()
    chars_per_line = max(20, (width - 2 * TEXT_MARGIN_PX) // 7)
    lines = [wrapped for line in text.splitlines() for wrapped in textwrap.wrap(line, chars_per_line) or [""]]
    canvas = PILImage.new("RGB", (width, PANEL_HEIGHT + 2 * TEXT_MARGIN_PX + TEXT_LINE_PX * len(lines)), "white")
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width, 0))
    draw = ImageDraw.Draw(canvas)
    draw.text((TEXT_MARGIN_PX, TEXT_MARGIN_PX), left_title, fill="yellow", font=font)
    draw.text((left.width + TEXT_MARGIN_PX, TEXT_MARGIN_PX), "goal", fill="yellow", font=font)
    for i, line in enumerate(lines):
        draw.text((TEXT_MARGIN_PX, PANEL_HEIGHT + TEXT_MARGIN_PX + i * TEXT_LINE_PX), line, fill="black", font=font)
    return np.asarray(canvas, dtype=np.uint8)
