"""The benchmarks behind `planllm bench NAME` (training/bench_cli.py): one module per benchmark,
a shared report writer (report.py) and the shared training runs (runs.py)."""
