"""The robot's ROS 2 side: the planner lifecycle node, its parameters, image conversion, plan output and worker."""
