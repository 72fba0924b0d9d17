"""TensorRT engine cache: keyed by GPU name, compute capability, TensorRT version, ONNX sha256
and fp16, rebuilt only when the key changes. The key/cache logic runs on the CPU; building
and running engines needs tensorrt + CUDA and is skipped (with the reason) where absent."""
from __future__ import annotations

import dataclasses
import json

import pytest

from planllm_ros.runtime.backends.tensorrt_engines import EngineCache, EngineKey, tensorrt_unavailable_reason
from planllm_ros.model.hashing import file_sha256


@pytest.fixture
def onnx_file(tmp_path):
    path = tmp_path / "encoder.onnx"
    path.write_bytes(b"graph bytes v1")
    return path


def key_for(path, **changes) -> EngineKey:
    key = EngineKey("NVIDIA H200", (9, 0), "10.9.0", file_sha256(path), False)
    return dataclasses.replace(key, **changes)


class CountingBuilder:
    """A build function for the cache: returns engine bytes derived from the ONNX file."""

    def __init__(self):
        self.calls = 0

    def __call__(self, path):
        self.calls += 1
        return b"engine:" + path.read_bytes() + str(self.calls).encode()


def test_engine_built_once_then_served_from_cache(tmp_path, onnx_file):
    cache, build = EngineCache(tmp_path / "cache"), CountingBuilder()
    key = key_for(onnx_file)
    first, built = cache.get_or_build(onnx_file, key, build)
    assert built and build.calls == 1
    again, built = EngineCache(tmp_path / "cache").get_or_build(onnx_file, key, build)
    assert not built and build.calls == 1 and again == first
    sidecar = json.loads(cache.engine_path(onnx_file, key).with_suffix(".json").read_text())
    assert sidecar["gpu_name"] == "NVIDIA H200" and sidecar["compute_capability"] == [9, 0]


@pytest.mark.parametrize("change", [
    {"gpu_name": "NVIDIA Jetson Orin"}, {"compute_capability": (8, 7)},
    {"tensorrt_version": "10.10.0"}, {"fp16": True}, {"onnx_sha256": "0" * 64},
])
def test_any_key_change_rebuilds(tmp_path, onnx_file, change):
    cache, build = EngineCache(tmp_path), CountingBuilder()
    cache.get_or_build(onnx_file, key_for(onnx_file), build)
    _, built = cache.get_or_build(onnx_file, key_for(onnx_file, **change), build)
    assert built and build.calls == 2
    assert len(list(tmp_path.glob("*.engine"))) == 2


def test_changed_onnx_file_changes_the_key(onnx_file):
    before = key_for(onnx_file)
    onnx_file.write_bytes(b"graph bytes v2")
    assert key_for(onnx_file).digest() != before.digest()


def test_tampered_sidecar_forces_rebuild(tmp_path, onnx_file):
    cache, build = EngineCache(tmp_path), CountingBuilder()
    key = key_for(onnx_file)
    cache.get_or_build(onnx_file, key, build)
    cache.engine_path(onnx_file, key).with_suffix(".json").write_text("{broken")
    _, built = cache.get_or_build(onnx_file, key, build)
    assert built and build.calls == 2


def test_empty_build_is_an_error_and_caches_nothing(tmp_path, onnx_file):
    cache = EngineCache(tmp_path / "cache")
    with pytest.raises(RuntimeError, match="produced nothing"):
        cache.get_or_build(onnx_file, key_for(onnx_file), lambda p: b"")
    assert not (tmp_path / "cache").exists()


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PLANLLM_ENGINE_CACHE", str(tmp_path / "engines"))
    assert EngineCache().root == tmp_path / "engines"
