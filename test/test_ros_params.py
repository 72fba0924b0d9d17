"""The planner node's parameters over DDS: bad values are rejected with a reason, good ones
taken, configure-time ones locked while a model is loaded, bad start-up values stop the node.

These run the real node process (started from the launch file) with autostart off, so no
model is needed.
"""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import rclpy
import yaml

from conftest import wait_for
from planllm_ros.tools.client import PlannerClient
from planllm_ros.tools.env import scaled
from planllm_ros.tools.launch_reader import read_launch
from planllm_ros.tools.processes import start_planner, stop

pytestmark = pytest.mark.ros


@pytest.fixture
def idle_node(ros_env: dict[str, str], tmp_path: Path) -> Iterator[PlannerClient]:
    """An unconfigured planner node (autostart off) and a client talking to it."""
    log = open(tmp_path / "node.log", "w")
    process = start_planner({"namespace": "params_test"}, ros_env, log, extra_ros_args=["-p", "autostart:=false"])
    rclpy.init()
    client = PlannerClient(namespace="/params_test")
    try:
        yield client
    finally:
        client.close()
        rclpy.shutdown()
        assert stop(process) == 0, (tmp_path / "node.log").read_text()
        log.close()


def latest_diagnostics(client: PlannerClient) -> dict[str, str]:
    received = client.snapshot()["diagnostics"]
    return received[-1] if received else {}


def test_bad_values_are_rejected_with_a_reason(idle_node: PlannerClient, tmp_path: Path) -> None:
    assert idle_node.state() == "unconfigured"
    empty = tmp_path / "empty.txt"
    empty.write_text("# only a comment\n\n")
    bad = {
        "mode": ("sometimes", "mode must be one of on_goal, continuous, on_request"),
        "horizon": (65, "out of range"),
        "threads": (-1, "out of range"),
        "max_rate_hz": (0.0, "out of range"),
        "backend": ("jax", "backend must be one of torch, onnxruntime, tensorrt"),
        "device": ("gpu0", "device must be cpu, cuda or cuda:N"),
        "model_dir": (str(tmp_path / "missing"), "is not a directory"),
        "labels_file": (str(tmp_path / "missing.txt"), "missing.txt: no such file"),
        "compressed": (True, "read-only"),
        "autostart": (False, "read-only"),
    }
    for name, (value, reason) in bad.items():
        (result,) = idle_node.set_parameters(**{name: value})
        assert not result.successful, name
        assert reason in result.reason, (name, result.reason)
    (result,) = idle_node.set_parameters(labels_file=str(empty))
    assert not result.successful and "holds no labels" in result.reason
    twice, latin = tmp_path / "twice.txt", tmp_path / "latin.txt"
    twice.write_text("wash the cup\ndry the cup\nWash the cup\n")
    latin.write_bytes("wash the cup\nd\u00e9j\u00e0 vu\n".encode("latin-1"))
    for path, reason in ((twice, f"{twice}:3: label 'Wash the cup' is already on line 1"),
                         (latin, f"{latin}:2: not UTF-8 text")):
        (result,) = idle_node.set_parameters(labels_file=str(path))
        assert not result.successful and reason in result.reason, result.reason
    (result,) = idle_node.set_parameters(horizon="three")  # wrong type: rclpy refuses it
    assert not result.successful


def test_good_values_are_taken(idle_node: PlannerClient, tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("pick up the cup\nplace the cup on the plate\n")
    results = idle_node.set_parameters(
        mode="continuous", horizon=4, max_rate_hz=5.0, device="cuda:1", backend="onnxruntime", labels_file=str(labels),
        threads=2,
    )
    assert all(r.successful for r in results), [r.reason for r in results]
    assert wait_for(lambda: any(d.get("mode") == "continuous" for d in idle_node.snapshot()["diagnostics"]), 15)
    latest = idle_node.snapshot()["diagnostics"][-1]
    assert latest["backend"] == "onnxruntime" and latest["device"] == "cuda:1" and latest["state"] == "unconfigured"


def test_unconfigured_node_answers_plan_now_and_reports_a_failed_load(idle_node: PlannerClient, tmp_path: Path) -> None:
    response = idle_node.plan_now()
    assert not response.success and "unconfigured" in response.message
    not_a_model = tmp_path / "not_a_model"
    not_a_model.mkdir()
    (result,) = idle_node.set_parameters(model_dir=str(not_a_model))
    assert result.successful, result.reason
    assert not idle_node.transition("configure", timeout=scaled(90))
    assert idle_node.state() == "unconfigured"
    assert wait_for(lambda: "cannot load the model" in latest_diagnostics(idle_node).get("last_error", ""), 15)
    assert latest_diagnostics(idle_node)["level"] == "2"  # ERROR


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"mode": "sometimes"}, "mode must be one of"),
        ({"horizon": 500}, "out of range"),
        ({"horizon": "abc"}, "expecting type 'INTEGER'"),
        ({"device": "tpu"}, "device must be cpu, cuda or cuda:N"),
        ({"labels_file": "/nonexistent/labels.txt"}, "labels_file /nonexistent/labels.txt: no such file"),
    ],
)
def test_bad_params_file_stops_the_node(ros_env: dict[str, str], tmp_path: Path, values: dict, message: str) -> None:
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump({"/**": {"ros__parameters": values}}))
    (node,) = read_launch(arguments={"params_file": str(params_file)})
    result = subprocess.run(node.command(sys.executable), env=ros_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
