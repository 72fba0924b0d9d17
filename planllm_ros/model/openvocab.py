"""Open-vocabulary planning: free-form captions -> the best label of any label list.

Captions and candidate labels go through the same frozen text encoder; each position takes
the label of highest cosine similarity (the encoder's vectors are L2-normalised). A
`LabelIndex` embeds its labels once, so a robot that keeps one label file pays only for the T
captions of each plan.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class LabelIndex:
    """Candidate label texts and their embeddings, for retrieving captions against them."""

    def __init__(self, labels: Sequence[str], encoder):
        if not labels:
            raise ValueError("open-vocabulary retrieval needs at least one candidate label")
        self.labels = list(labels)
        self.encoder = encoder
        self.embeddings = encoder.encode(self.labels)

    def retrieve(self, captions: Sequence[str]) -> np.ndarray:
        """Index into `labels` of the best match for each caption (int64, len(captions))."""
        if not captions:
            return np.zeros(0, dtype=np.int64)
        similarity = self.encoder.encode(list(captions)) @ self.embeddings.t()
        return similarity.argmax(dim=1).numpy().astype(np.int64)


def retrieve_labels(captions: Sequence[str], candidate_labels: Sequence[str], encoder) -> list[int]:
    """Index into `candidate_labels` of the best match for each caption."""
    return LabelIndex(candidate_labels, encoder).retrieve(captions).tolist()
