"""The loss functions of PlanLLM (Eq. 6-8, 14) as plain functions of tensors.

Choices (the paper's equations leave them open; see also qformer.py):
- Positives. Two samples of a batch whose ground-truth step sequences are identical are both
  positives of each other (`same_plan_mask`); otherwise a duplicate plan in a batch would be
  pushed apart from itself.
- VLC (Eq. 6) has two terms. (1) `contrastive_loss`: symmetric InfoNCE between the pooled
  visual state embedding of sample j (from [x0v, xTv]) and the pooled ground-truth step
  description embeddings of sample k: "the visual state embeddings and their corresponding
  ground truth step embeddings as positive pairs" (BLIP-2's per-sample form of the ratio in
  Eq. 6). (2) `step_text_alignment_loss`: each Q-Former step embedding x^q_t is contrasted
  against all N step description embeddings, a_t being the target; this is what makes x^q
  carry step semantics at inference, when no text goes in. Contrasting the visual embedding
  with x^q itself (both computed from the same image) was tried and rejected: it is
  instance discrimination, solvable with nuisance features, and on the tabletop data it cut
  validation mAcc from 0.25 to 0.16 against the same model without MIM.
- VLM (Eq. 7) = `matching_loss`: binary cross-entropy on (visual, step-text) pairs: every
  positive pair, one hard negative text per visual and one hard negative visual per text,
  sampled in proportion to softmax(similarity) among the non-matching pairs
  (`mine_hard_negatives`), as in BLIP-2's ITM.
- SD (Eq. 14): cross-entropy over the N steps at every position.
- State (ours): binary cross-entropy of the state head's logits on the propositions whose label
  the descriptions determine (`state_loss`); unknown ones (-1) are left out, not counted false.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def same_plan_mask(steps: torch.Tensor) -> torch.Tensor:
    """(B, T) step ids -> (B, B) bool, True where two samples have the same step sequence."""
    return (steps.unsqueeze(1) == steps.unsqueeze(0)).all(dim=-1)


def contrastive_loss(a: torch.Tensor, b: torch.Tensor, positives: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE between L2-normalised rows of a (B, C) and b (B, C); `positives`
    (B, B) marks matched pairs (the diagonal at least). Targets spread evenly over a row's
    positives."""
    logits = a @ b.t() / temperature
    targets = positives.float()
    a_to_b = -(targets / targets.sum(1, keepdim=True) * F.log_softmax(logits, dim=1)).sum(1).mean()
    b_to_a = -(targets.t() / targets.t().sum(1, keepdim=True) * F.log_softmax(logits.t(), dim=1)).sum(1).mean()
    return (a_to_b + b_to_a) / 2


def step_text_alignment_loss(step_embeddings: torch.Tensor, description_embeddings: torch.Tensor,
                             steps: torch.Tensor, temperature: float) -> torch.Tensor:
    """Cross-entropy of each normalised step embedding (B, T, C) against all N normalised
    description embeddings (N, C), the ground-truth step id (B, T) being the target."""
    logits = step_embeddings @ description_embeddings.t() / temperature
    return F.cross_entropy(logits.flatten(0, 1), steps.flatten())


def mine_hard_negatives(similarity: torch.Tensor, positives: torch.Tensor,
                        generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One hard negative per row and per column of a (B, B) visual-text similarity matrix.

    Returns (text_for_visual, visual_for_text): index of a non-matching text for each visual
    row and of a non-matching visual for each text column, drawn with probability
    softmax(similarity) over the non-matching entries; -1 where a row/column has none (every
    sample in the batch has the same plan).
    """
    def draw(sim: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(sim.float(), dim=1).masked_fill(pos, 0.0)
        has_negative = weights.sum(1) > 0
        picks = torch.full((sim.shape[0],), -1, dtype=torch.long, device=sim.device)
        if has_negative.any():
            picks[has_negative] = torch.multinomial(weights[has_negative], 1, generator=generator).squeeze(1)
        return picks

    similarity = similarity.detach()
    return draw(similarity, positives), draw(similarity.t(), positives.t())


def matching_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Binary matched/unmatched cross-entropy (Eq. 7), averaged over pairs."""
    return F.binary_cross_entropy_with_logits(logits, labels.float())


def step_decoding_loss(logits: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """L_SD (Eq. 14): cross-entropy of (B, T, N) logits against (B, T) step ids."""
    return F.cross_entropy(logits.flatten(0, 1), steps.flatten())


def state_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy over the known entries of (B, P) labels (1 / 0; -1 = unknown).
    Zero, still attached to the graph, when a batch has no known label."""
    known = labels >= 0
    if not bool(known.any()):
        return logits.sum() * 0.0
    return F.binary_cross_entropy_with_logits(logits[known].float(), labels[known].float())
