"""launch/planllm.launch.xml: the reader turns it into the right command line, refuses what it
does not understand, and the node it starts carries the launch file's name and namespace."""
from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
import rclpy
import yaml

from conftest import REPO, wait_for
from planllm_ros.tools.launch_reader import default_launch_file, read_launch
from planllm_ros.tools.processes import start_planner, stop

LAUNCH_XML = REPO / "launch" / "planllm.launch.xml"


def test_default_command_follows_the_launch_file() -> None:
    assert default_launch_file() == LAUNCH_XML
    (node,) = read_launch()
    command = node.command("/venv/bin/python")
    assert command[:4] == ["/venv/bin/python", "-m", "planllm_ros.ros.planner_node", "--ros-args"]
    args = command[4:]
    assert args == [
        "-r", "__node:=planllm_planner",
        "--params-file", str(REPO / "config" / "planllm.yaml"),
        "-p", "model_dir:=''",
        "-p", "backend:=torch",
        "-p", "threads:=0",
        "-r", "image:=image",
        "-r", "goal_image:=goal_image",
    ]  # fmt: skip


def test_arguments_fill_namespace_remaps_and_params(tmp_path: Path) -> None:
    (node,) = read_launch(
        arguments={
            "model_dir": str(tmp_path),
            "backend": "onnxruntime",
            "threads": "2",
            "namespace": "robot1",
            "image": "/camera/color/image_raw",
            "goal_image": "/task/goal",
            "params_file": str(tmp_path / "p.yaml"),
        }
    )
    assert node.namespace == "/robot1"
    assert node.params == [("model_dir", str(tmp_path)), ("backend", "onnxruntime"), ("threads", "2")]
    assert node.params_files == [str(tmp_path / "p.yaml")]
    assert node.remaps == [("image", "/camera/color/image_raw"), ("goal_image", "/task/goal")]
    assert ["-r", "__ns:=/robot1"] == node.ros_args()[3:5]


def test_unknown_argument_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"unknown launch argument\(s\) modle_dir; declared: backend, goal_image"):
        read_launch(arguments={"modle_dir": "/x"})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('<arg name="a"/><node pkg="planllm_ros" exec="planner_node"/>', "launch argument 'a' has no default"),
        ('<node pkg="planllm_ros" exec="planner_node" name="$(env HOME)"/>', r"unsupported substitution \$\(env HOME\)"),
        ('<node pkg="planllm_ros" exec="planner_node" name="$(var nope)"/>', r"\$\(var nope\) names no <arg>"),
        ('<group/>', "unsupported element <group>"),
        ('<node pkg="planllm_ros" exec="planner_node"><env name="A" value="1"/></node>', "unsupported element <env> inside <node>"),
    ],
)
def test_unsupported_launch_content_is_an_error(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.launch.xml"
    path.write_text(f"<launch>{body}</launch>")
    with pytest.raises(ValueError, match=message):
        read_launch(path)


def test_unknown_executable_and_broken_file_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "x.launch.xml"
    path.write_text('<launch><node pkg="planllm_ros" exec="no_such_node"/></launch>')
    (node,) = read_launch(path)
    with pytest.raises(ValueError, match="no console script 'no_such_node'"):
        node.command()
    path.write_text("<launch><node")
    with pytest.raises(ValueError, match="cannot read the launch file"):
        read_launch(path)


def _services(node: rclpy.node.Node) -> set[str]:
    return {name for name, _ in node.get_service_names_and_types()}


def _idle_params(tmp_path: Path) -> Path:
    """The shipped params file with autostart off: the node comes up without a model."""
    values = yaml.safe_load((REPO / "config" / "planllm.yaml").read_text())
    values["/**"]["ros__parameters"]["autostart"] = False
    path = tmp_path / "idle.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


@pytest.mark.ros
def test_node_started_from_the_launch_file_has_its_name_and_namespace(ros_env: dict[str, str], tmp_path: Path) -> None:
    with open(tmp_path / "node.log", "w") as log:
        process = start_planner({"namespace": "launched", "params_file": str(_idle_params(tmp_path))}, ros_env, log)
        rclpy.init()
        probe = rclpy.create_node("launch_probe")
        try:
            expected = {"/launched/planllm_planner/plan_now", "/launched/planllm_planner/change_state"}
            assert wait_for(lambda: expected <= _services(probe), 20), (tmp_path / "node.log").read_text()
        finally:
            probe.destroy_node()
            rclpy.shutdown()
            assert stop(process) == 0


@pytest.mark.ros
def test_real_launch_ros_starts_the_same_node(ros_env: dict[str, str], tmp_path: Path) -> None:
    """Where `launch_ros` is installed (a ROS distribution, not our PyPI wheels), the XML runs
    through the real launch system and gives the same node."""
    launch = pytest.importorskip("launch")
    pytest.importorskip("launch_ros")
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import AnyLaunchDescriptionSource

    service = launch.LaunchService()
    arguments = {"namespace": "via_launch_ros", "params_file": str(_idle_params(tmp_path))}.items()
    service.include_launch_description(
        launch.LaunchDescription([IncludeLaunchDescription(AnyLaunchDescriptionSource(str(LAUNCH_XML)), launch_arguments=arguments)])
    )
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=lambda: loop.run_until_complete(service.run_async()), daemon=True)
    runner.start()
    rclpy.init()
    probe = rclpy.create_node("launch_ros_probe")
    try:
        assert wait_for(lambda: "/via_launch_ros/planllm_planner/plan_now" in _services(probe), 30)
    finally:
        probe.destroy_node()
        rclpy.shutdown()
        loop.call_soon_threadsafe(service.shutdown)
        runner.join(30)
