"""planllm_ros: PlanLLM video procedure planning for ROS 2.

Subpackages: `model` (nn.Modules and the config tree), `runtime` (the Planner facade and its
backends), `export` (LoRA merge, ONNX, TensorRT), `ros` (the rclpy node and tools).
The offline trainer lives in the separate top-level package `training`.
"""

__version__ = "0.1.0"
