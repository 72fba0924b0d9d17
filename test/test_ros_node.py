"""The planner node end to end, in real processes over DDS: started exactly as the launch file
says, on a real tiny PlanLLM model folder (random weights; the Planner and MobileNetV2 backbone
are the real ones), talked to through topics and services. The last test is a 20 s soak: a
30 Hz 640x480 camera into a continuously planning node must keep the queue at most one deep,
plan from fresh frames (no backlog) and hold memory steady while most frames are dropped."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np
import pytest
import rclpy

from conftest import wait_for
from planllm_ros.model.config import OpenVocabConfig
from planllm_ros.ros.image_conv import image_to_rgb, rgb_to_image
from planllm_ros.ros.plan_output import PANEL_HEIGHT, render_plan_image
from planllm_ros.tools.client import PlannerClient
from planllm_ros.tools.processes import start_planner, stop
from runtime_helpers import LABELS, save_tiny_model

pytestmark = pytest.mark.ros
rng = np.random.default_rng(0)
NS = "/robot"


def picture(height: int = 96, width: int = 128) -> np.ndarray:
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("model") / "tiny")


@contextmanager
def planner_node(
    ros_env: dict[str, str], tmp_path: Path, model_dir: Path, *ros_args: str, client: PlannerClient | None = None, **topics: str
) -> Iterator[tuple[Any, PlannerClient]]:
    """The node from the launch file (namespace NS, `topics` remapped) and a client for it;
    rclpy must be initialised. Fails the test with the node's log if it did not stop cleanly."""
    log_path = tmp_path / "node.log"
    with open(log_path, "w") as log:
        process = start_planner(
            {"model_dir": str(model_dir), "namespace": NS, **topics}, ros_env, log, extra_ros_args=list(ros_args)
        )
        try:
            client = client or PlannerClient(
                namespace=NS, image_topic=topics.get("image", "image"), goal_topic=topics.get("goal_image", "goal_image")
            )
            yield process, client
        finally:
            if client is not None:
                client.close()
            code = stop(process)
    assert code == 0, log_path.read_text()


@pytest.fixture
def ros(ros_env: dict[str, str]) -> Iterator[dict[str, str]]:
    rclpy.init()
    yield ros_env
    rclpy.shutdown()


def sending(send: Callable[[], None], condition: Callable[[], bool], timeout: float = 90.0) -> bool:
    """Keep sending (best-effort camera frames may be lost while discovery runs) until `condition`."""
    def step() -> bool:
        send()
        return condition()

    return wait_for(step, timeout, interval=0.1)


def plans_with(client: PlannerClient, frame_id: str) -> list[dict]:
    return [p for p in client.snapshot()["plans"] if p["header"]["frame_id"] == frame_id]


def latest(client: PlannerClient) -> dict[str, str]:
    diagnostics = client.snapshot()["diagnostics"]
    return diagnostics[-1] if diagnostics else {}


def test_goal_sent_before_the_node_starts_gets_a_plan(ros: dict[str, str], tmp_path: Path, model_dir: Path) -> None:
    """The goal is published before the node exists (transient local keeps it); camera and goal
    travel on the topics the launch file remaps; every output of the node is checked."""
    client = PlannerClient(namespace=NS, image_topic="/camera/rgb", goal_topic="/task/goal")
    start, goal = picture(), picture(120, 90)
    client.send_goal(goal, frame_id="goal_frame")
    with planner_node(ros, tmp_path, model_dir, client=client, image="/camera/rgb", goal_image="/task/goal"):
        assert sending(lambda: client.send_frame(start, frame_id="cam"), lambda: bool(client.snapshot()["plans"]))
        plan = client.snapshot()["plans"][0]
        assert plan["trigger"] == "goal" and plan["seq"] == 1
        assert plan["header"]["frame_id"] == "cam" and plan["goal_header"]["frame_id"] == "goal_frame"
        assert plan["horizon"] == 3 and len(plan["step_ids"]) == 3
        assert plan["labels"] == [LABELS[i] for i in plan["step_ids"]]
        assert all(0.0 <= s <= 1.0 for s in plan["scores"]) and len(plan["captions"]) == 3
        assert plan["open_vocab_labels"] is None and plan["open_vocab_method"] is None and plan["backend"] == "torch"
        assert {"backbone", "heads", "captions", "total", "queue", "node_total", "start_frame_age"} <= set(plan["latency_ms"])
        assert wait_for(lambda: client.snapshot()["instructions"] and client.snapshot()["plan_images"], 15)
        assert client.snapshot()["instructions"][0].splitlines()[0].startswith(f"1. {plan['labels'][0]}")
        image = image_to_rgb(client.snapshot()["plan_images"][0])
        expected = render_plan_image(start, goal, "")
        np.testing.assert_array_equal(image[:PANEL_HEIGHT], expected[:PANEL_HEIGHT])  # start | goal, decoded exactly
        assert wait_for(lambda: latest(client).get("plans") == "1", 15)
        assert latest(client)["model"] == "tiny" and latest(client)["state"] == "active"
        assert len(client.snapshot()["plans"]) == 1  # on_goal: once per goal, not once per frame


def test_every_encoding_end_to_end(ros: dict[str, str], tmp_path: Path, model_dir: Path) -> None:
    """Each encoding (with row padding) is decoded exactly: the plan image shows the very pixels."""
    with planner_node(ros, tmp_path, model_dir, "-p", "mode:=on_request", "-p", "publish_image:=true") as (_, client):
        goal = picture()
        client.send_goal(goal)
        for encoding in ("rgb8", "bgr8", "rgba8", "bgra8", "mono8"):
            start = picture()
            message = rgb_to_image(start, encoding, padding=5)
            message.header.frame_id = encoding
            expected = image_to_rgb(rgb_to_image(start, encoding))  # mono8: the grey the node sees

            def request() -> None:
                client.send_frame(message)
                client.plan_now()

            assert sending(request, lambda: bool(plans_with(client, encoding))), encoding
            assert wait_for(lambda: bool([m for m in client.snapshot()["plan_images"] if m.header.frame_id == encoding]), 15)
            images = [m for m in client.snapshot()["plan_images"] if m.header.frame_id == encoding]
            panels = render_plan_image(expected, goal, "")[:PANEL_HEIGHT]
            np.testing.assert_array_equal(image_to_rgb(images[-1])[:PANEL_HEIGHT], panels, err_msg=encoding)
        # open vocabulary: a labels file set at run time gives each plan labels from that list
        candidates = ["wash the cup", "open the box", "cut the bread"]
        (tmp_path / "labels.txt").write_text("\n".join(candidates))
        assert client.set_parameters(labels_file=str(tmp_path / "labels.txt"))[0].successful
        tagged = rgb_to_image(picture())
        tagged.header.frame_id = "open_vocab"
        assert sending(lambda: client.send_frame(tagged) or client.plan_now(), lambda: bool(plans_with(client, "open_vocab")))
        first = plans_with(client, "open_vocab")[0]
        assert len(first["open_vocab_labels"]) == 3 and set(first["open_vocab_labels"]) <= set(candidates)
        assert first["open_vocab_method"] == OpenVocabConfig().method
        # a bad labels file is refused with its line, and plans keep naming steps from the previous list
        (tmp_path / "bad.txt").write_text("fold the towel\nwater the plant\nfold the towel\n")
        (result,) = client.set_parameters(labels_file=str(tmp_path / "bad.txt"))
        assert not result.successful
        assert f"{tmp_path / 'bad.txt'}:3: label 'fold the towel' is already on line 1" in result.reason
        again = rgb_to_image(picture())
        again.header.frame_id = "after_bad_labels"
        assert sending(lambda: client.send_frame(again) or client.plan_now(),
                       lambda: bool(plans_with(client, "after_bad_labels")))
        assert set(plans_with(client, "after_bad_labels")[0]["open_vocab_labels"]) <= set(candidates)


def test_compressed_camera_end_to_end(ros: dict[str, str], tmp_path: Path, model_dir: Path) -> None:
    client = PlannerClient(namespace=NS, compressed=True)
    with planner_node(ros, tmp_path, model_dir, "-p", "compressed:=true", "-p", "mode:=on_request", client=client):
        client.send_goal(picture())
        for fmt in ("png", "jpeg"):
            start = picture()

            def request(fmt: str = fmt, start: np.ndarray = start) -> None:
                client.send_frame(start, encoding=fmt, frame_id=fmt)
                client.plan_now()

            assert sending(request, lambda fmt=fmt: bool(plans_with(client, fmt))), fmt


def bad_frames() -> list:
    """Malformed camera messages, each of which the node must drop with a warning."""
    def raw(encoding: str, width: int, height: int, step: int, size: int) -> Any:
        message = rgb_to_image(picture(2, 2))
        message.encoding, message.width, message.height, message.step = encoding, width, height, step
        message.data = bytes(size)
        return message

    return [
        raw("yuv422", 4, 4, 8, 32),  # unknown encoding
        raw("rgb8", 4, 4, 12, 20),  # truncated
        raw("rgb8", 4, 4, 6, 48),  # step smaller than a row
        raw("rgb8", 0, 0, 0, 0),  # empty
        raw("rgb8", 100_000, 100_000, 300_000, 12),  # absurd size
    ]


def test_bad_inputs_never_crash_and_the_service_answers_while_plans_run(
    ros: dict[str, str], tmp_path: Path, model_dir: Path
) -> None:
    """Malformed frames and goals are dropped (counted, warned, nothing published); then, with
    continuous planning keeping the worker busy, ~/plan_now still answers at once."""
    with planner_node(ros, tmp_path, model_dir) as (process, client):
        bad = bad_frames()
        assert sending(lambda: [client.send_frame(m) for m in bad] and None,
                       lambda: int(latest(client).get("bad_frames", "0")) >= len(bad))  # fmt: skip
        client.send_goal(bad[0])  # a bad goal is dropped too
        assert wait_for(lambda: int(latest(client).get("bad_frames", "0")) >= len(bad) + 1, 15)
        diagnostics = latest(client)
        assert "dropped a frame on" in diagnostics["last_error"] and diagnostics["level"] in ("0", "1")
        assert process.poll() is None
        assert client.snapshot()["plans"] == [] and latest(client)["frames_received"] == "0"
        assert client.plan_now().message == "no camera frame and no goal image received yet"

        assert all(r.successful for r in client.set_parameters(mode="continuous", max_rate_hz=60.0))
        client.send_goal(picture())
        big = picture(480, 640)
        assert sending(lambda: client.send_frame(big), lambda: len(client.snapshot()["plans"]) >= 2)
        answers, during_a_plan = [], 0
        for _ in range(20):
            client.send_frame(big)
            began = time.monotonic()
            response = client.plan_now()
            answers.append(time.monotonic() - began)
            assert response.success, response.message
            during_a_plan += "waiting for the plan that is running" in response.message
        assert during_a_plan >= 1
        assert max(answers) < 2.0, answers
        assert wait_for(lambda: any(p["trigger"] == "service" for p in client.snapshot()["plans"]), 15)


def test_lifecycle_frees_and_reloads_the_model(ros: dict[str, str], tmp_path: Path, model_dir: Path) -> None:
    with planner_node(ros, tmp_path, model_dir) as (_, client):
        goal = picture()
        client.send_goal(goal)
        assert sending(lambda: client.send_frame(picture(), frame_id="first"), lambda: bool(plans_with(client, "first")))
        assert client.state() == "active"
        # run-time parameters: mode and horizon change, configure-time ones are locked
        assert all(r.successful for r in client.set_parameters(mode="on_request", max_rate_hz=10.0))
        (horizon,) = client.set_parameters(horizon=5)
        assert not horizon.successful and "plans exactly 3 steps" in horizon.reason
        assert client.set_parameters(horizon=3)[0].successful
        (locked,) = client.set_parameters(backend="onnxruntime")
        assert not locked.successful and "read at configure" in locked.reason

        assert client.transition("deactivate") and client.state() == "inactive"
        assert not client.plan_now().success
        assert client.transition("cleanup") and client.state() == "unconfigured"
        assert wait_for(lambda: latest(client).get("state") == "unconfigured" and latest(client).get("model") == "", 15)
        assert client.set_parameters(mode="on_goal")[0].successful
        assert client.transition("configure", timeout=90) and client.transition("activate")
        assert client.state() == "active"
        client.send_goal(goal)  # subscriptions are new: the goal is sent again (or kept by transient local)
        assert sending(lambda: client.send_frame(picture(), frame_id="second"), lambda: bool(plans_with(client, "second")))
        assert latest(client)["model"] == "tiny" or wait_for(lambda: latest(client).get("model") == "tiny", 15)


RATE_HZ = 30.0
SECONDS = 20.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


@pytest.mark.slow
def test_30hz_camera_for_20s_keeps_queue_flat_and_memory_steady(ros_env: dict[str, str], tmp_path: Path, model_dir: Path) -> None:
    rclpy.init()
    client = PlannerClient(namespace="/robot")
    frame = rgb_to_image(picture(480, 640))
    frame.header.frame_id = "camera"
    try:
        with planner_node(ros_env, tmp_path, model_dir, "-p", "mode:=continuous", "-p", "max_rate_hz:=5.0",
                          client=client) as (process, _):  # fmt: skip
            client.send_goal(picture())

            def send() -> None:
                frame.header.stamp = client.node.get_clock().now().to_msg()
                client.send_frame(frame)

            assert sending(send, lambda: len(client.snapshot()["plans"]) >= 1)
            began, sent, memory, depths = time.monotonic(), 0, [], []
            plans_before = len(client.snapshot()["plans"])
            while (elapsed := time.monotonic() - began) < SECONDS:
                send()
                sent += 1
                if sent % int(RATE_HZ) == 0:
                    memory.append((elapsed, rss_mb(process.pid)))
                    depths.append(int(latest(client).get("queue_depth", "0")))
                time.sleep(max(0.0, began + sent / RATE_HZ - time.monotonic()))  # pacing of the 30 Hz stream
            # Sensor-data QoS (best effort, depth 1) loses frames by design when the node's cores are
            # busy (under half arrived on a loaded CI run); the queue and memory are what is tested.
            assert wait_for(lambda: int(latest(client).get("frames_received", "0")) >= 0.1 * sent, 15)
            diagnostics = latest(client)
            plans = client.snapshot()["plans"][plans_before:]
            rss = {"early": median(m for t, m in memory if 3 <= t < 7), "late": median(m for t, m in memory if t >= SECONDS - 4)}
            print(f"sent {sent} frames; node: {diagnostics}; {len(plans)} plans; RSS MB {rss}")

            assert max(depths) <= 1
            # every received frame that no plan used was dropped as stale, and counted
            received, dropped = int(diagnostics["frames_received"]), int(diagnostics["frames_dropped"])
            assert dropped >= received - int(diagnostics["plans"]) - 2 and dropped > 0, diagnostics
            assert len(plans) >= 10  # planning went on throughout
            assert max(p["latency_ms"]["start_frame_age"] for p in plans) < 3000  # fresh frames, no backlog
            assert rss["late"] - rss["early"] < 40, rss
            assert int(diagnostics["errors"]) == 0, diagnostics["last_error"]
    finally:
        rclpy.shutdown()
