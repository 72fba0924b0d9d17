"""Native TensorRT backend: engines built from the exported ONNX files (fp16 optional) and
cached by EngineKey (GPU name, compute capability, TensorRT version, ONNX sha256, fp16), so
they are rebuilt only when one of those changes. Inputs and outputs stay on the GPU as torch
tensors; nothing is copied through the host between the graphs and the LLM.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from planllm_ros.runtime.backends.tensorrt_engines import (EngineCache, build_engine, current_key,
                                               tensorrt_unavailable_reason)
from planllm_ros.runtime.backends.base import BackendError, GraphBackend, onnx_path, parse_device


class _Engine:
    """One deserialized engine and its execution context."""

    def __init__(self, runtime, data: bytes, source: Path):
        import tensorrt as trt

        self.trt = trt
        self.engine = runtime.deserialize_cuda_engine(data)
        if self.engine is None:
            raise BackendError(f"TensorRT could not deserialize the engine built from {source}")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        mode = trt.TensorIOMode.INPUT
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == mode]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) != mode]

    def __call__(self, inputs: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
        keep = []  # contiguous copies must live until the stream is done
        for name in self.inputs:
            tensor = inputs[name].to(device=device, dtype=torch.float32).contiguous()
            keep.append(tensor)
            self.context.set_input_shape(name, tuple(tensor.shape))
            self.context.set_tensor_address(name, tensor.data_ptr())
        outputs = {}
        for name in self.outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            dtype = torch.from_numpy(np.empty(0, dtype=self.trt.nptype(self.engine.get_tensor_dtype(name)))).dtype
            outputs[name] = torch.empty(shape, dtype=dtype, device=device)
            self.context.set_tensor_address(name, outputs[name].data_ptr())
        stream = torch.cuda.current_stream(device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise BackendError("TensorRT execution failed")
        stream.synchronize()
        return {n: t.float() for n, t in outputs.items()}


class TensorRTBackend(GraphBackend):
    name = "tensorrt"

    def __init__(self, model_dir: str | Path, graphs: Sequence[str], device: str = "cuda", fp16: bool = False,
                 cache_dir: str | Path | None = None, max_batch: int = 8):
        reason = tensorrt_unavailable_reason()
        if reason:
            raise BackendError(f"the tensorrt backend cannot run here: {reason}")
        import tensorrt as trt

        self.device = parse_device(device)
        if self.device.type != "cuda":
            raise BackendError(f"the tensorrt backend needs a CUDA device, got {device!r}")
        cache = EngineCache(cache_dir)
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))  # must outlive its engines
        self.built: dict[str, bool] = {}  # graph -> whether its engine was built by this load
        self.engines: dict[str, _Engine] = {}
        with torch.cuda.device(self.device):
            for graph in graphs:
                path = onnx_path(model_dir, graph)
                key = current_key(path, fp16, self.device.index or 0)
                data, built = cache.get_or_build(path, key, lambda p: build_engine(p, fp16, max_batch))
                self.built[graph] = built
                self.engines[graph] = _Engine(self.runtime, data, path)

    def run(self, graph: str, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        with torch.cuda.device(self.device):
            return self.engines[graph](inputs, self.device)

    def close(self) -> None:
        self.engines.clear()
