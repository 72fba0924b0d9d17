"""Kill a training run with SIGKILL right after a checkpoint, resume it, and get exactly what an
uninterrupted run gets: the same final weights and the same log, value for value."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from planllm_ros.export.model_card import read_training_record
from training.train.checkpoint import CheckpointError
from training.train.config import load_config
from training.train.logging_utils import read_log
from training.train.trainer import train

# 48 train samples / batch 16 = 3 optimiser steps per epoch; a checkpoint every 2 steps and at
# every epoch end, so the kill lands on a mid-epoch checkpoint of stage 2.
TINY = ["data.train_samples=48", "data.eval_samples=16", "train.batch_size=16", "train.stage1.epochs=1",
        "train.stage2.epochs=2", "train.eval_every=2", "train.log_every=1", "train.progress=false",
        "llm.max_new_tokens=8"]
KILL_AFTER_STEP = 5


def _command(out: Path, *extra: str) -> list[str]:
    sets = [arg for item in TINY for arg in ("--set", item)]
    return [sys.executable, "-m", "planllm_ros.cli", "train", "--config", "tabletop-tiny", "--out", str(out), *sets, *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _checkpoint_step(out: Path) -> int:
    try:
        return int(json.loads((out / "checkpoint" / "state.json").read_text())["state"]["progress"]["global_step"])
    except (OSError, ValueError, KeyError):  # not written yet, or being replaced right now
        return -1


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(_command(whole), env=_env(), check=True, timeout=300, capture_output=True)

    process = subprocess.Popen(_command(killed), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while _checkpoint_step(killed) < KILL_AFTER_STEP and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed: make it longer"
    assert not (killed / "model").exists()
    step_at_kill = _checkpoint_step(killed)
    assert step_at_kill >= KILL_AFTER_STEP

    resumed = subprocess.run(_command(killed, "--resume"), env=_env(), timeout=300, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    expected = load_file(str(whole / "model" / "model.safetensors"))
    got = load_file(str(killed / "model" / "model.safetensors"))
    assert expected.keys() == got.keys() and any("lora_" in k for k in got)
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    assert read_log(whole / "log.csv") == read_log(killed / "log.csv")
    val_rows = [r for r in read_log(killed / "log.csv") if r["split"] == "val" and r["metric"] == "sr"]
    assert int(val_rows[-1]["step"]) > step_at_kill  # the resumed run really trained on
    # the record names the code of both processes: the killed one's, kept in its checkpoint, is
    # the resumed model's earlier segment; the uninterrupted run has none
    first, second = read_training_record(whole / "model"), read_training_record(killed / "model")
    assert first["earlier_segments"] == [] and not first["resumed"]
    assert second["resumed"] and len(second["earlier_segments"]) == 1
    assert second["earlier_segments"][0]["code_version"] == second["code_version"]
    assert second["earlier_segments"][0]["date"] <= second["date"]


def test_an_existing_run_needs_resume(tmp_path):
    (tmp_path / "checkpoint").mkdir()
    with pytest.raises(CheckpointError, match="pass --resume"):
        train(load_config("tabletop-tiny", TINY), tmp_path)


def test_resume_from_a_corrupt_checkpoint_names_the_file(tmp_path, capsys):
    from planllm_ros.cli import main
    from training.train.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "checkpoint", {"w": torch.zeros(3)}, {"progress": {}}, {})
    (tmp_path / "checkpoint" / "state.safetensors").write_bytes(b"\x00" * 10)
    args = ["train", "--config", "tabletop-tiny", "--out", str(tmp_path), "--resume"]
    assert main(args + [a for item in TINY for a in ("--set", item)]) == 2
    assert "state.safetensors" in capsys.readouterr().err
