"""TensorRT engines built from the exported ONNX files, cached so they are built once per GPU.

An engine is only valid for the GPU model, compute capability and TensorRT version it was
built with, and for the exact ONNX graph it came from; building one takes seconds to minutes.
So an engine is stored under a key of exactly those things (plus the fp16 flag) and rebuilt
only when the key changes. The key and cache logic need no GPU; `build_engine` and
`current_key` need tensorrt and CUDA.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from planllm_ros.model.hashing import file_sha256


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine's validity depends on."""

    gpu_name: str
    compute_capability: tuple[int, int]
    tensorrt_version: str
    onnx_sha256: str
    fp16: bool

    def digest(self) -> str:
        """A stable hash of the key: the engine's file name carries its first 16 characters."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def to_dict(self) -> dict:
        data = asdict(self)
        data["compute_capability"] = list(self.compute_capability)
        return data


def default_cache_dir() -> Path:
    """$PLANLLM_ENGINE_CACHE, else $XDG_CACHE_HOME/planllm_ros/engines (~/.cache by default):
    the model folder may be installed read-only under share/."""
    explicit = os.environ.get("PLANLLM_ENGINE_CACHE")
    if explicit:
        return Path(explicit)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "planllm_ros" / "engines"


def tensorrt_unavailable_reason() -> str | None:
    """None when engines can be built and run here, else why not (used to skip tests and
    to refuse the tensorrt backend with a clear message)."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "the tensorrt Python package is not installed (pip install tensorrt on a CUDA machine)"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device is visible to torch"
    return None


def current_key(onnx_path: str | Path, fp16: bool, device_index: int = 0) -> EngineKey:
    """The key of an engine built from `onnx_path` on this machine's GPU `device_index`."""
    import tensorrt as trt
    import torch

    major, minor = torch.cuda.get_device_capability(device_index)
    return EngineKey(
        gpu_name=torch.cuda.get_device_name(device_index),
        compute_capability=(int(major), int(minor)),
        tensorrt_version=str(trt.__version__),
        onnx_sha256=file_sha256(onnx_path),
        fp16=bool(fp16),
    )


class EngineCache:
    """Serialized engines in one folder: `<onnx stem>-<key digest[:16]>.engine` plus a JSON
    sidecar holding the full key, so a reader can see what each engine was built for."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()

    def engine_path(self, onnx_path: str | Path, key: EngineKey) -> Path:
        return self.root / f"{Path(onnx_path).stem}-{key.digest()[:16]}.engine"

    def lookup(self, onnx_path: str | Path, key: EngineKey) -> bytes | None:
        """The cached engine for this key, or None (also when the sidecar disagrees)."""
        path = self.engine_path(onnx_path, key)
        sidecar = path.with_suffix(".json")
        if not (path.is_file() and sidecar.is_file()):
            return None
        try:
            recorded = json.loads(sidecar.read_text())
        except json.JSONDecodeError:
            return None
        if recorded != key.to_dict():
            return None
        return path.read_bytes()

    def get_or_build(self, onnx_path: str | Path, key: EngineKey,
                     build: Callable[[Path], bytes]) -> tuple[bytes, bool]:
        """(engine bytes, whether it was built now). `build(onnx_path)` runs only on a miss."""
        cached = self.lookup(onnx_path, key)
        if cached is not None:
            return cached, False
        engine = build(Path(onnx_path))
        if not engine:
            raise RuntimeError(f"building a TensorRT engine from {onnx_path} produced nothing")
        path = self.engine_path(onnx_path, key)
        self.root.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, engine)
        _atomic_write(path.with_suffix(".json"), json.dumps(key.to_dict(), sort_keys=True).encode())
        return engine, True


def _atomic_write(path: Path, data: bytes) -> None:
    """Write via a temporary file + rename, so a crash never leaves half an engine behind."""
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_engine(onnx_path: str | Path, fp16: bool = False, max_batch: int = 8,
                 workspace_bytes: int = 1 << 30) -> bytes:
    """Parse an ONNX file with the tensorrt Python API and build a serialized engine with one
    optimisation profile: dynamic (-1) dimensions range over 1..max_batch (opt 1, batch 1 is
    what the robot runs)."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH") and int(trt.__version__.split(".")[0]) < 10:
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        shape = list(tensor.shape)
        low = [1 if d < 0 else d for d in shape]
        high = [max_batch if d < 0 else d for d in shape]
        profile.set_shape(tensor.name, low, low, high)
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path} (see its log above)")
    return bytes(serialized)
