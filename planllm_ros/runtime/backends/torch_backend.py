"""The reference backend: the model's own torch modules, cut into the same graphs as the
exported ONNX files (planllm_ros.model.graphs), so parity compares like with like."""
from __future__ import annotations

import torch

from planllm_ros.model.graphs import TorchGraphs
from planllm_ros.runtime.backends.base import GraphBackend, parse_device


class TorchBackend(GraphBackend):
    name = "torch"

    def __init__(self, model, device: str = "cpu"):
        self.device = parse_device(device)
        self.graphs = TorchGraphs(model)

    def run(self, graph: str, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.graphs.run(graph, inputs)

    def close(self) -> None:
        self.graphs.modules.clear()
