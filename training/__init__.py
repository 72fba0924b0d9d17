"""Offline side of planllm_ros: datasets, the two-stage trainer, evaluation and benchmarks.

Imports `planllm_ros.model`; the ROS node never imports this package.
"""
