"""Backend selection and the GPU backends. ONNX Runtime's CPU provider runs everywhere; the
CUDA / TensorRT execution providers and the native tensorrt backend run only on a GPU machine
with those installed, and are skipped here with the reason otherwise."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from planllm_ros.export.exporter import export_model
from planllm_ros.runtime.backends.tensorrt_engines import EngineCache, tensorrt_unavailable_reason
from planllm_ros.runtime.backends.base import BackendError
from planllm_ros.runtime.backends.ort_backend import execution_providers
from planllm_ros.runtime.planner import Planner
from runtime_helpers import save_tiny_model

CUDA = torch.cuda.is_available()
ORT_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()
ORT_TRT = "TensorrtExecutionProvider" in ort.get_available_providers()
TRT_REASON = tensorrt_unavailable_reason()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("backends")
    export_model(save_tiny_model(root / "model"), root / "exported")
    return root / "exported"


def feature_pair():
    rng = np.random.default_rng(1)
    return rng.random(1280).astype(np.float32), rng.random(1280).astype(np.float32)


def test_provider_chains():
    assert execution_providers(torch.device("cpu"), None) == ["CPUExecutionProvider"]
    with pytest.raises(BackendError, match="needs a CUDA device"):
        execution_providers(torch.device("cpu"), "tensorrt")
    with pytest.raises(BackendError, match="unknown execution provider"):
        execution_providers(torch.device("cpu"), "openvino")


@pytest.mark.skipif(CUDA, reason="checks the error raised where no CUDA device exists")
def test_gpu_requests_fail_clearly_without_cuda(exported):
    for backend in ("torch", "onnxruntime", "tensorrt"):
        with pytest.raises(BackendError, match="no CUDA device|tensorrt"):
            Planner.from_dir(exported, backend=backend, device="cuda")


@pytest.mark.skipif(not (CUDA and ORT_CUDA), reason="needs a CUDA device and onnxruntime-gpu")
def test_onnxruntime_cuda_provider_matches_torch(exported):
    start, goal = feature_pair()
    expected = Planner.from_dir(exported, backend="torch", device="cuda", llm_dtype="float32").plan(start, goal)
    got = Planner.from_dir(exported, backend="onnxruntime", device="cuda", llm_dtype="float32").plan(start, goal)
    assert got.step_ids == expected.step_ids
    assert np.allclose(got.scores, expected.scores, atol=1e-4)


@pytest.mark.skipif(not (CUDA and ORT_TRT), reason="needs a CUDA device and onnxruntime with the TensorRT provider")
def test_onnxruntime_tensorrt_provider_caches_engines(exported, tmp_path):
    start, goal = feature_pair()
    expected = Planner.from_dir(exported, backend="torch", device="cuda", llm_dtype="float32").plan(start, goal)
    planner = Planner.from_dir(exported, backend="onnxruntime", device="cuda", provider="tensorrt",
                               cache_dir=tmp_path, llm_dtype="float32")
    got = planner.plan(start, goal)
    assert got.step_ids == expected.step_ids and np.allclose(got.scores, expected.scores, atol=1e-3)
    assert any(p.suffix == ".engine" for p in tmp_path.rglob("*"))


@pytest.mark.skipif(TRT_REASON is not None, reason=f"TensorRT unavailable: {TRT_REASON}")
@pytest.mark.parametrize("fp16, atol", [(False, 1e-3), (True, 5e-2)])
def test_tensorrt_backend_builds_once_and_matches_torch(exported, tmp_path, fp16, atol):
    start, goal = feature_pair()
    expected = Planner.from_dir(exported, backend="torch", device="cuda", llm_dtype="float32").plan(start, goal)
    first = Planner.from_dir(exported, backend="tensorrt", device="cuda", fp16=fp16, cache_dir=tmp_path,
                             llm_dtype="float32")
    assert all(first.backend.built.values())
    got = first.plan(start, goal)
    assert np.allclose(got.scores, expected.scores, atol=atol)
    if not fp16:
        assert got.step_ids == expected.step_ids
    again = Planner.from_dir(exported, backend="tensorrt", device="cuda", fp16=fp16, cache_dir=tmp_path)
    assert not any(again.backend.built.values())
    assert len(list(EngineCache(tmp_path).root.glob("*.engine"))) == 2
