"""Open-vocabulary planning: free-form captions -> the best label of any label list.

Captions and candidate labels go through the same frozen text encoder; each position takes
the label of highest cosine similarity (the encoder's vectors are L2-normalised).
"""
from __future__ import annotations

from collections.abc import Sequence


def retrieve_labels(captions: Sequence[str], candidate_labels: Sequence[str], encoder) -> list[int]:
    """Index into `candidate_labels` of the best match for each caption."""
    if not candidate_labels:
        raise ValueError("retrieve_labels needs at least one candidate label")
    if not captions:
        return []
    similarity = encoder.encode(list(captions)) @ encoder.encode(list(candidate_labels)).t()
    return similarity.argmax(dim=1).tolist()
