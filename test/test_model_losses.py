"""VLC / VLM / SD loss math on hand-built inputs."""
import math

import torch
import torch.nn.functional as F

from planllm_ros.model import losses as L


def test_same_plan_mask_marks_identical_sequences():
    steps = torch.tensor([[0, 1, 2], [0, 1, 2], [2, 1, 0]])
    assert L.same_plan_mask(steps).tolist() == [[True, True, False], [True, True, False], [False, False, True]]


def test_contrastive_loss_matches_hand_computation():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    tau = 0.5
    loss = L.contrastive_loss(a, b, torch.eye(2, dtype=torch.bool), tau)
    s = a @ b.t() / tau  # [[2, 1.2], [0, 1.6]]
    row = -(math.log(math.exp(2) / (math.exp(2) + math.exp(1.2))) + math.log(math.exp(1.6) / (1 + math.exp(1.6)))) / 2
    col = -(math.log(math.exp(2) / (math.exp(2) + 1)) + math.log(math.exp(1.6) / (math.exp(1.2) + math.exp(1.6)))) / 2
    assert torch.allclose(loss, torch.tensor((row + col) / 2), atol=1e-6)
    assert s.shape == (2, 2)


def test_contrastive_loss_shares_target_between_duplicate_plans():
    a = F.normalize(torch.tensor([[1.0, 0.0], [1.0, 0.0]]), dim=-1)
    positives = torch.ones(2, 2, dtype=torch.bool)
    # every pair is a positive: targets are uniform, logits are equal -> loss = log 2 (the entropy floor)
    assert torch.allclose(L.contrastive_loss(a, a, positives, 1.0), torch.tensor(math.log(2)), atol=1e-6)


def test_step_text_alignment_is_cross_entropy_over_all_descriptions():
    z = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # (B=1, T=2, C=2)
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])  # N=3
    steps = torch.tensor([[0, 1]])
    expected = F.cross_entropy(torch.tensor([[1.0, 0.0, -1.0], [0.0, 1.0, 0.0]]) / 0.1, torch.tensor([0, 1]))
    assert torch.allclose(L.step_text_alignment_loss(z, y, steps, 0.1), expected)


def test_hard_negatives_never_pick_a_positive_and_prefer_similar_ones():
    torch.manual_seed(0)
    similarity = torch.tensor([[9.0, 8.0, -9.0], [8.0, 9.0, -9.0], [0.0, 0.0, 9.0]])
    positives = torch.eye(3, dtype=torch.bool)
    picks = [L.mine_hard_negatives(similarity * 3, positives) for _ in range(50)]
    text_for_visual = torch.stack([p[0] for p in picks])
    visual_for_text = torch.stack([p[1] for p in picks])
    assert (text_for_visual != torch.arange(3)).all() and (visual_for_text != torch.arange(3)).all()
    assert (text_for_visual[:, 0] == 1).all() and (text_for_visual[:, 1] == 0).all()  # -9 never wins against 8
    assert (visual_for_text[:, 0] == 1).all()


def test_hard_negatives_report_none_when_every_sample_has_the_same_plan():
    t, v = L.mine_hard_negatives(torch.zeros(2, 2), torch.ones(2, 2, dtype=torch.bool))
    assert t.tolist() == [-1, -1] and v.tolist() == [-1, -1]


def test_matching_and_step_decoding_losses():
    logits = torch.tensor([3.0, -2.0])
    expected = -(math.log(torch.sigmoid(torch.tensor(3.0))) + math.log(1 - torch.sigmoid(torch.tensor(-2.0)))) / 2
    assert torch.allclose(L.matching_loss(logits, torch.tensor([True, False])), torch.tensor(expected), atol=1e-6)
    step_logits = torch.zeros(2, 3, 4)
    assert torch.allclose(L.step_decoding_loss(step_logits, torch.zeros(2, 3, dtype=torch.long)), torch.tensor(math.log(4)))
