"""The GPU check (scripts/gpu_check.sh -> `planllm bench gpu`, training/benchmarks/gpu.py).

A GPU machine has no rclpy and maybe no matplotlib, rich, open_clip, rosbags or torchvision, and
the check runs there rarely, so CI runs the same script at tiny shapes with those packages made
unimportable: every part must run (on the CPU here), and the results file must say that its
numbers are a CPU smoke run. Also: the full run without CUDA writes a file that says it has not
run, and a part that outlives its cap is stopped (or skips the rest of its work) with a note.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from training.benchmarks import gpu
from training.cli.bench import add_arguments, command_line

REPO = Path(__file__).resolve().parents[1]
HIDDEN = ("rclpy", "matplotlib", "rich", "open_clip", "rosbags", "torchvision")
# Imported at start-up from PYTHONPATH: the path finder no longer finds HIDDEN packages, so they
# look not installed (find_spec is None, import raises ModuleNotFoundError), as on a GPU machine.
GUARD = f'''
import sys
from importlib.machinery import PathFinder

HIDDEN = {HIDDEN!r}


class HidingPathFinder(PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            return None
        return super().find_spec(name, path, target)


sys.meta_path[sys.meta_path.index(PathFinder)] = HidingPathFinder
'''


@pytest.fixture
def gpu_machine_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a GPU machine's Python: HIDDEN packages unimportable, no network."""
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(GUARD)
    env = {**os.environ, "PYTHONPATH": str(guard), "PYTHON": sys.executable, "OMP_NUM_THREADS": "1",
           "HF_HUB_OFFLINE": "1"}
    env.pop("GPU_CHECK_WHEELS", None)
    return env


def test_guard_makes_the_packages_unimportable(gpu_machine_env):
    for name in HIDDEN:
        done = subprocess.run([sys.executable, "-c", f"import {name}"], env=gpu_machine_env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode != 0 and "ModuleNotFoundError" in done.stderr, name


def test_gpu_check_cpu_smoke_runs_every_part(tmp_path, gpu_machine_env):
    out = tmp_path / "out"
    done = subprocess.run(["bash", "scripts/gpu_check.sh", "--quick", "--out", str(out)], cwd=REPO,
                          env=gpu_machine_env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = (out / "gpu-quick.md").read_text()
    for name in gpu.PARTS:
        assert f"**{name}: " in text
    assert text.count("| status | done in ") == len(gpu.PARTS), text
    for row in ("| prefill, PlanLLM prompt at T=3", "| decode tokens/s", "| share of the bandwidth floor",
                "| bf16: samples/s", "| fp16: samples/s", "| fp16: peak memory", "| merge_lora, logits checked",
                "| saved size (GB)", "| load_local_llm", "| heads p50 / p95", "| total p50 / p95",
                "| allocated / reserved / device in use after close, del, gc.collect, empty_cache"):
        assert row in text, row
    assert "no plot: matplotlib is not installed here" in text and not (out / "gpu-quick.png").exists()
    if not torch.cuda.is_available():
        assert "CPU SMOKE RUN, not GPU measurements" in text.splitlines()[0]
        assert "no GPU was available where this was measured" in text and "they are not GPU measurements" in text
        assert "feature inputs (no backbone stage)" in text  # torchvision is hidden: no image backbone


@pytest.mark.skipif(torch.cuda.is_available(), reason="with CUDA the full run measures the 7B shape (minutes)")
def test_full_run_without_cuda_says_it_has_not_run(tmp_path):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["gpu", "--out", str(tmp_path)])
    assert gpu.run(args, command_line(args)) == [tmp_path / "gpu.md"]
    text = (tmp_path / "gpu.md").read_text()
    assert "NOT RUN: no GPU was available where this was measured" in text
    assert "bash scripts/gpu_check.sh" in text
    table = text.split("**Parts")[1]
    assert all(line.endswith("| not run |") for line in table.splitlines() if line.startswith("| ") and
               not line.startswith("| part "))


def test_a_part_past_its_cap_is_stopped(tmp_path):
    status, records = gpu.run_part("decode", 1.0, ["--device", "cpu", "--quick", "--model", "unused"],
                                   tmp_path / "decode.jsonl")
    assert status == "stopped by its 1 s cap (the rest of the part did not run)"
    assert records == []


def test_a_part_skips_what_its_cap_leaves_no_time_for(tmp_path):
    results = tmp_path / "decode.jsonl"
    assert gpu.child_main(["--child", "decode", "--device", "cpu", "--quick", "--model", "unused", "--cap", "0",
                           "--results", str(results)]) == 0
    text = results.read_text()
    assert '{"capped": "building the model"}' in text and "decode tokens/s" not in text
