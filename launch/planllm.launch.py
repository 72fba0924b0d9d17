"""Python twin of planllm.launch.xml (same arguments, same node): `ros2 launch planllm_ros planllm.launch.py`.

The node parameters set from launch arguments (model_dir, backend, threads) take their defaults from the
node's own table, planllm_ros/ros/params.py. The launch packages are imported inside
generate_launch_description, so ARGUMENTS can be read where only the node's wheels are
installed (test/test_ros_param_defaults.py checks them against the XML and the parameter table).
"""
from pathlib import Path

from planllm_ros.ros.params import SPECS

# launch argument -> (default, description); params_file's default is in the share directory
ARGUMENTS = {
    "model_dir": (SPECS["model_dir"].default, "model directory; empty: the bundled demo model"),
    "backend": (SPECS["backend"].default, "torch, onnxruntime or tensorrt"),
    "threads": (str(SPECS["threads"].default), "threads per op for torch and onnxruntime; 0: the planner's defaults"),
    "namespace": ("", "namespace of the node and its topics"),
    "image": ("image", "camera topic (sensor_msgs/Image)"),
    "goal_image": ("goal_image", "goal image topic (sensor_msgs/Image)"),
}
# node parameters set from the launch argument of the same name
PARAMETER_ARGUMENTS = ("model_dir", "backend", "threads")


def generate_launch_description():
    from ament_index_python.packages import get_package_share_directory
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node
    from launch_ros.parameter_descriptions import ParameterValue

    share = Path(get_package_share_directory("planllm_ros"))
    arguments = {**ARGUMENTS, "params_file": (str(share / "config" / "planllm.yaml"), "node parameter file")}
    node = Node(
        package="planllm_ros",
        executable="planner_node",
        name="planllm_planner",
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        parameters=[
            LaunchConfiguration("params_file"),
            {  # value_type: an empty model_dir must stay the empty string, not YAML null
                name: ParameterValue(LaunchConfiguration(name), value_type=type(SPECS[name].default))
                for name in PARAMETER_ARGUMENTS
            },
        ],
        remappings=[("image", LaunchConfiguration("image")), ("goal_image", LaunchConfiguration("goal_image"))],
    )
    declared = [
        DeclareLaunchArgument(name, default_value=default, description=text) for name, (default, text) in arguments.items()
    ]
    return LaunchDescription([*declared, node])
