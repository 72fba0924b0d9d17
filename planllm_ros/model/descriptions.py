"""Step description embeddings y_i = E_l(d_i) (Eq. 3), computed once and cached on disk.

The cache key is the encoder's identity plus a hash of the exact texts (in order), so a
different encoder, checkpoint or description file never reuses stale vectors. Files are
safetensors (never pickle), written atomically.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def cache_key(texts: Sequence[str], encoder_identity: str) -> str:
    payload = json.dumps({"encoder": encoder_identity, "texts": list(texts)}, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def embed_descriptions(texts: Sequence[str], encoder, cache_dir: str | Path | None = None) -> torch.Tensor:
    """(N, E) embeddings of `texts` with `encoder` (a TextEncoder: `.encode`, `.identity`),
    read from / written to `cache_dir` when given."""
    if cache_dir is None:
        return encoder.encode(list(texts))
    path = Path(cache_dir) / f"descriptions-{cache_key(texts, encoder.identity)}.safetensors"
    if path.is_file():
        return load_file(str(path))["embeddings"]
    embeddings = encoder.encode(list(texts)).float().contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    save_file({"embeddings": embeddings}, str(tmp), metadata={"encoder": encoder.identity, "count": str(len(texts))})
    os.replace(tmp, path)
    return embeddings
