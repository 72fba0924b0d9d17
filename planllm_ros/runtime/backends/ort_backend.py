"""ONNX Runtime backend: the exported graphs on the CPU, CUDA or TensorRT execution provider.

With the TensorRT provider, ONNX Runtime builds its own engines; they are cached on disk
(trt_engine_cache_*) under the same cache root as the native tensorrt backend, so a robot
pays the build once.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from planllm_ros.runtime.backends.tensorrt_engines import default_cache_dir
from planllm_ros.runtime.backends.base import BackendError, GraphBackend, onnx_path, parse_device
from planllm_ros.runtime.threads import ThreadSettings, thread_settings

PROVIDERS = ("cpu", "cuda", "tensorrt")


def execution_providers(device: torch.device, provider: str | None, fp16: bool = False,
                        cache_dir: str | Path | None = None) -> list:
    """The provider list for a session, most preferred first. provider None: CPU on a CPU
    device, CUDA on a CUDA device. Asking for a provider this onnxruntime lacks is an error,
    never a silent fall back to the CPU."""
    provider = provider or ("cuda" if device.type == "cuda" else "cpu")
    if provider not in PROVIDERS:
        raise BackendError(f"unknown execution provider {provider!r}: expected one of {PROVIDERS}")
    if provider != "cpu" and device.type != "cuda":
        raise BackendError(f"execution provider {provider!r} needs a CUDA device, got device {str(device)!r}")
    import onnxruntime as ort

    available = ort.get_available_providers()
    index = device.index or 0
    chain: list = []
    if provider == "tensorrt":
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "onnxruntime"
        chain.append(("TensorrtExecutionProvider", {
            "device_id": index,
            "trt_fp16_enable": bool(fp16),
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(cache),
            "trt_timing_cache_enable": True,
            "trt_timing_cache_path": str(cache),
        }))
    if provider in ("cuda", "tensorrt"):
        chain.append(("CUDAExecutionProvider", {"device_id": index}))
    chain.append("CPUExecutionProvider")
    missing = [p[0] for p in chain if isinstance(p, tuple) and p[0] not in available]
    if missing:
        raise BackendError(f"onnxruntime here lacks {missing} (available: {available}); "
                           "install onnxruntime-gpu built for this CUDA / TensorRT")
    return chain


class OnnxRuntimeBackend(GraphBackend):
    name = "onnxruntime"

    def __init__(self, model_dir: str | Path, graphs: Sequence[str], device: str = "cpu", provider: str | None = None,
                 fp16: bool = False, cache_dir: str | Path | None = None, threads: ThreadSettings | None = None):
        """threads: intra-op threads and spinning (planllm_ros.runtime.threads; the Planner passes
        its own). None, for batch work outside a Planner (evaluation, the exporter's check): as
        many as torch runs on in the loading thread, never spinning."""
        import onnxruntime as ort

        self.device = parse_device(device)
        providers = execution_providers(self.device, provider, fp16, cache_dir)
        self.threads = threads or thread_settings(torch.get_num_threads())
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads.onnxruntime
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.threads.onnxruntime_spinning else "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.sessions: dict[str, ort.InferenceSession] = {}
        for graph in graphs:
            path = onnx_path(model_dir, graph)
            try:
                self.sessions[graph] = ort.InferenceSession(str(path), options, providers=providers)
            except Exception as error:  # onnxruntime raises its own Fail / InvalidGraph types
                raise BackendError(f"onnxruntime cannot load {path}: {error}") from error

    def run(self, graph: str, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        session = self.sessions[graph]
        feed = {i.name: inputs[i.name].detach().float().cpu().numpy() for i in session.get_inputs()}
        names = [o.name for o in session.get_outputs()]
        outputs = session.run(names, feed)
        return {n: torch.from_numpy(np.asarray(v)).to(self.device) for n, v in zip(names, outputs)}

    def close(self) -> None:
        self.sessions.clear()
