"""Python twin of planllm.launch.xml (same arguments, same node): `ros2 launch planllm_ros planllm.launch.py`."""
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description() -> LaunchDescription:
    share = Path(get_package_share_directory("planllm_ros"))
    arguments = {
        "model_dir": ("", "model directory; empty: the bundled demo model"),
        "backend": ("torch", "torch, onnxruntime or tensorrt"),
        "namespace": ("", "namespace of the node and its topics"),
        "image": ("image", "camera topic (sensor_msgs/Image)"),
        "goal_image": ("goal_image", "goal image topic (sensor_msgs/Image)"),
        "params_file": (str(share / "config" / "planllm.yaml"), "node parameter file"),
    }
    node = Node(
        package="planllm_ros",
        executable="planner_node",
        name="planllm_planner",
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        parameters=[
            LaunchConfiguration("params_file"),
            {  # value_type=str: an empty model_dir must stay the empty string, not YAML null
                "model_dir": ParameterValue(LaunchConfiguration("model_dir"), value_type=str),
                "backend": ParameterValue(LaunchConfiguration("backend"), value_type=str),
            },
        ],
        remappings=[("image", LaunchConfiguration("image")), ("goal_image", LaunchConfiguration("goal_image"))],
    )
    declared = [
        DeclareLaunchArgument(name, default_value=default, description=text) for name, (default, text) in arguments.items()
    ]
    return LaunchDescription([*declared, node])
