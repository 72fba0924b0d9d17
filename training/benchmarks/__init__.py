"""The benchmarks behind `planllm bench NAME` (training/cli/bench.py): one module per benchmark,
a shared report writer (report.py) and the shared training runs (runs.py). The latency
benchmark's entry is planllm_ros/tools/latency.py, since it drives the ROS node; its
in-process planner measurements live here (latency.py)."""
