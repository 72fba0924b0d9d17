"""planllm_ros: PlanLLM video procedure planning for ROS 2.

Subpackages: `model` (nn.Modules and the config tree), `runtime` (the Planner facade and its
backends), `export` (LoRA merge, ONNX, TensorRT), `ros` (the rclpy node), `tools` (ROS tools,
the demo and the latency benchmark, reached from the command line).
The offline trainer lives in the separate top-level package `training`.
"""

__version__ = "0.1.0"
