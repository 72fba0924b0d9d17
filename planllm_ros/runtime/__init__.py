"""Inference runtime: the `Planner` facade (plan(start, goal) -> Plan) over torch,
onnxruntime and tensorrt backends."""
from planllm_ros.runtime.plan import Plan

__all__ = ["Plan"]
