"""`planllm bench gpu --quick`: on a machine without CUDA it must say plainly that nothing ran;
with CUDA it measures a 2-layer Vicuna-shaped Llama and the bundled model's graphs."""
from __future__ import annotations

from pathlib import Path

import torch

from planllm_ros.cli import main


def test_gpu_quick(tmp_path: Path) -> None:
    assert main(["bench", "gpu", "--quick", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "gpu-quick.md").read_text()
    assert "- command: `planllm bench gpu --quick" in text
    if torch.cuda.is_available():
        assert "decode tokens/s" in text and (tmp_path / "gpu-quick.png").is_file()
    else:
        assert "NOT RUN: no CUDA device" in text and "No number in this file was measured" in text
        assert not (tmp_path / "gpu-quick.png").exists()
