"""The reference backend: the model's own torch modules, cut into the same graphs as the
exported ONNX files (so parity compares like with like)."""
from __future__ import annotations

import torch

from planllm_ros.runtime.backends.base import GraphBackend, parse_device
from planllm_ros.runtime.graphs import graph_modules


class TorchBackend(GraphBackend):
    name = "torch"

    def __init__(self, model, device: str = "cpu"):
        self.device = parse_device(device)
        self.modules = graph_modules(model)

    @torch.no_grad()
    def run(self, graph: str, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        module = self.modules[graph]
        outputs = module(*(inputs[name].to(self.device) for name in module.input_names))
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        return {name: out.float() for name, out in zip(module.output_names, outputs)}

    def close(self) -> None:
        self.modules.clear()
