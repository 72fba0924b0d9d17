"""The one interface every graph backend implements."""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import torch

from planllm_ros.model import folder
from planllm_ros.runtime.errors import PlannerError

BACKENDS = ("torch", "onnxruntime", "tensorrt")


class BackendError(PlannerError):
    """A backend cannot run here, or a model folder lacks what it needs; the message says which."""


def onnx_path(model_dir: str | Path, graph: str) -> Path:
    """Where `planllm export` wrote graph `graph`; a clear error when it is not there."""
    path = folder.onnx_path(model_dir, graph)
    if not path.is_file():
        raise BackendError(
            f"{path} is missing: this backend needs the exported ONNX graphs "
            f"(run `planllm export --checkpoint CKPT --out {model_dir}`)"
        )
    return path


def parse_device(device: str) -> torch.device:
    try:
        parsed = torch.device(device)
    except RuntimeError as error:
        raise BackendError(f"bad device {device!r}: expected 'cpu', 'cuda' or 'cuda:N'") from error
    if parsed.type not in ("cpu", "cuda"):
        raise BackendError(f"bad device {device!r}: expected 'cpu', 'cuda' or 'cuda:N'")
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise BackendError(f"device {device!r} requested but no CUDA device is visible to torch")
    return parsed


class GraphBackend(ABC):
    """Runs named graphs: float32 tensors in, float32 tensors (on `self.device`) out."""

    name: str
    device: torch.device

    @abstractmethod
    def run(self, graph: str, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Run graph `graph` ("encoder" or "heads") on named inputs; named outputs."""

    def close(self) -> None:
        """Release sessions / engines (idempotent)."""
