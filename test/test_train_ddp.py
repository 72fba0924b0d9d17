"""Two processes through torchrun (gloo on the CPU) with the very `planllm train` command:
the epoch is split between the ranks, and the run yields a model `planllm eval` can load."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

TRAIN_SAMPLES, BATCH = 40, 8
SETS = [f"data.train_samples={TRAIN_SAMPLES}", "data.eval_samples=12", f"train.batch_size={BATCH}",
        "train.stage1.epochs=1", "train.stage2.epochs=1", "train.progress=false", "llm.max_new_tokens=6"]


@pytest.mark.slow
def test_two_process_torchrun(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "planllm_ros.cli", "train", "--config", "tabletop-tiny", "--out", str(out),
               *[arg for item in SETS for arg in ("--set", item)]]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run(command, env=env, timeout=240, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]

    state = json.loads((out / "checkpoint" / "state.json").read_text())["state"]
    # each rank sees half an epoch: 20 samples -> 3 batches of 8 per stage (not 5 as one process)
    steps_per_stage = math.ceil(math.ceil(TRAIN_SAMPLES / 2) / BATCH)
    assert state["progress"]["global_step"] == 2 * steps_per_stage and state["progress"]["finished"]
    assert (out / "model" / "model.safetensors").is_file() and (out / "curves-stage2.png").is_file()
    # one RNG state per rank was saved, so a resume restores both processes' streams
    from safetensors.torch import load_file

    rng = load_file(str(out / "checkpoint" / "state.safetensors"))[state["rng"]["torch"]["__tensor__"]]
    assert rng.shape[0] == 2
