"""ROS 2 side of planllm_ros: the planner node, image conversion and the bag / demo tools."""
