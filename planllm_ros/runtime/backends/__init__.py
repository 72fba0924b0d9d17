"""Graph backends: what runs the exported parts of a model (encoder graph, heads graph).

Every backend runs the same named graphs with the same named inputs and outputs (see
planllm_ros.runtime.graphs); the frozen image backbone and the LLM run in torch in all of them.
"""
from __future__ import annotations

from pathlib import Path

from planllm_ros.runtime.backends.base import BACKENDS, BackendError, GraphBackend
from planllm_ros.runtime.threads import ThreadSettings


def load_backend(name: str, model, model_dir: str | Path, device: str = "cpu", threads: ThreadSettings | None = None,
                 **options) -> GraphBackend:
    """The backend `name` for the graphs of `model` (a loaded PlanLLM). The torch backend runs
    the model's own modules; the others read the ONNX files exported into `model_dir`.
    threads: onnxruntime's intra-op threads and spinning (planllm_ros.runtime.threads; None: as
    many as torch's in this thread); torch's threads are set by whoever plans, where it plans."""
    from planllm_ros.model.graphs import graph_names

    graphs = graph_names(model)
    if name == "torch":
        from planllm_ros.runtime.backends.torch_backend import TorchBackend

        return TorchBackend(model, device=device, **options)
    if name == "onnxruntime":
        from planllm_ros.runtime.backends.ort_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(model_dir, graphs, device=device, threads=threads, **options)
    if name == "tensorrt":
        from planllm_ros.runtime.backends.trt_backend import TensorRTBackend

        return TensorRTBackend(model_dir, graphs, device=device, **options)
    raise BackendError(f"unknown backend {name!r}: expected one of {BACKENDS}")


__all__ = ["BACKENDS", "BackendError", "GraphBackend", "load_backend"]
