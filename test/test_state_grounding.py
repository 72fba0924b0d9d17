"""States from step descriptions and the state-grounded decoder: the state vocabulary, the
alternatives read from training plans, the window labels under the frame assumption, the
state head's loss, and the grounded search with its backoff prior (unit level, on a small
described world, and against the tabletop world's hidden states as a diagnostic)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from planllm_ros.model.config import GroundedConfig, HeadsConfig
from planllm_ros.model.decoding import DecodingPolicy, grounded_plans, seen_transitions, viterbi
from planllm_ros.model.heads import StateHead
from planllm_ros.model.losses import state_loss
from planllm_ros.model.states import StateModel, normalize, subject
from training.datasets.base import transition_matrix
from training.datasets.state_labels import UNKNOWN, StateLabeller, fit_state_model, window_labels

# a small described world: steps with SCHEMA-style before / after sentences
BEFORE = [
    ["The bread is whole."],  # 0 slice the bread
    ["The bread is sliced.", "The bread is cold."],  # 1 toast the bread
    ["The bread is sliced."],  # 2 butter the bread
    ["The cup is empty."],  # 3 fill the cup
    ["The cup is on the shelf."],  # 4 take the cup down
]
AFTER = [
    ["The bread is sliced."],
    ["The bread is hot."],
    ["The bread has butter on it."],
    ["The cup is full."],
    ["The cup is on the table."],
]
TRAIN_PLANS = [[0, 1, 2], [4, 3]]


def world() -> StateModel:
    return fit_state_model(BEFORE, AFTER, TRAIN_PLANS)


def index(model: StateModel, sentence: str) -> int:
    return [normalize(s) for s in model.sentences].index(normalize(sentence))


def test_a_proposition_is_a_sentence_up_to_case_punctuation_and_articles():
    assert normalize("The water is in a container.") == normalize("the water is in the container")
    assert normalize("The pot is hot.") != normalize("The pot is cold.")
    assert subject(normalize("The pot is on the stove.")) == ("pot", "place")
    assert subject(normalize("The jello mix contains no water.")) == ("jello mix", "contains")
    assert subject(normalize("The bread has butter on it.")) == ("bread", "has")
    assert subject("bread sliced") is None


def test_alternatives_are_changes_no_boundary_shows_together():
    model = world()
    pairs = {tuple(sorted((model.sentences[i], model.sentences[j]))) for i, j in model.alternatives}
    assert ("The bread is sliced.", "The bread is whole.") in pairs
    assert ("The bread is cold.", "The bread is hot.") in pairs
    assert ("The cup is empty.", "The cup is full.") in pairs
    assert ("The cup is on the shelf.", "The cup is on the table.") in pairs
    # toasting needs sliced bread and makes it hot; buttering after toasting shows both together
    assert ("The bread is hot.", "The bread is sliced.") not in pairs
    # negative control: without the plans that show them together, they would be taken for alternatives
    blind = fit_state_model(BEFORE, AFTER, [[0], [1], [2], [3], [4]])
    assert (min(index(blind, "The bread is hot."), index(blind, "The bread is sliced.")),
            max(index(blind, "The bread is hot."), index(blind, "The bread is sliced."))) in blind.alternatives
    # a place and a property of one thing (or a property and a mark) are never alternatives
    assert all(subject(normalize(model.sentences[i]))[1] == subject(normalize(model.sentences[j]))[1]
               for i, j in model.alternatives)


def test_a_step_deletes_the_alternatives_of_its_effects():
    model = world()
    assert model.delete[0] == (index(model, "The bread is whole."),)
    assert model.delete[1] == (index(model, "The bread is cold."),)
    assert model.delete[2] == ()


def test_window_labels_follow_the_frame_assumption():
    model = world()
    start, goal = window_labels(model, [0, 1, 2])
    true_at = lambda labels: {model.sentences[i] for i in np.flatnonzero(labels == 1)}
    false_at = lambda labels: {model.sentences[i] for i in np.flatnonzero(labels == 0)}
    assert true_at(start) == {"The bread is whole.", "The bread is cold."}  # sliced: made by step 0, not needed before
    assert false_at(start) == {"The bread is sliced.", "The bread is hot."}
    assert true_at(goal) == {"The bread is sliced.", "The bread is hot.", "The bread has butter on it."}
    assert false_at(goal) == {"The bread is whole.", "The bread is cold."}
    assert np.all(start[[index(model, "The cup is empty."), index(model, "The cup is full.")]] == UNKNOWN)
    labeller = StateLabeller(model)
    s, g = labeller(torch.tensor([[0, 1, 2], [0, 1, 2]]))
    assert s.shape == (2, model.num_propositions) and torch.equal(s[0], torch.from_numpy(start))
    assert torch.equal(g[1], torch.from_numpy(goal))


def test_the_video_around_a_window_labels_more_of_its_images():
    """A video [4, 3, 0, 1, 2] cut to the window [3, 0]: the steps before it (the cup came down)
    and after it (the bread is toasted and buttered) say more about the window's two images than
    the window alone, and a proposition the two sides disagree on stays unknown."""
    model = world()
    true_at = lambda labels: {model.sentences[i] for i in np.flatnonzero(labels == 1)}
    alone_start, alone_goal = window_labels(model, [3, 0])
    start, goal = window_labels(model, [3, 0], before=[4], after=[1, 2])
    assert "The cup is on the table." not in true_at(alone_start)
    assert "The cup is on the table." in true_at(start)  # left by the step before the window
    assert "The bread is cold." not in true_at(alone_goal)
    assert "The bread is cold." in true_at(goal)  # needed by toasting, after the window
    known = lambda labels: int((labels != UNKNOWN).sum())
    assert known(start) > known(alone_start) and known(goal) > known(alone_goal)
    # everything the window alone says still holds
    for alone, more in ((alone_start, start), (alone_goal, goal)):
        assert np.all(more[alone != UNKNOWN] == alone[alone != UNKNOWN])
    # "before" says the bread was sliced, "after" that it is whole: unknown, not either
    clash_start, _ = window_labels(model, [3], before=[0], after=[0])
    assert clash_start[index(model, "The bread is sliced.")] == UNKNOWN
    assert clash_start[index(model, "The bread is whole.")] == UNKNOWN
    # the labeller reads collate's padded rows (-1 = no step) and gives the same labels
    s, g = StateLabeller(model)(torch.tensor([[3, 0], [3, 0]]), torch.tensor([[4], [-1]]),
                                torch.tensor([[1, 2], [-1, -1]]))
    assert torch.equal(s[0], torch.from_numpy(start)) and torch.equal(g[0], torch.from_numpy(goal))
    assert torch.equal(s[1], torch.from_numpy(alone_start)) and torch.equal(g[1], torch.from_numpy(alone_goal))

def test_the_state_model_round_trips_and_refuses_bad_files(tmp_path):
    model = world()
    model.save(tmp_path / "s.json")
    assert StateModel.load(tmp_path / "s.json") == model
    with pytest.raises(ValueError, match="outside"):
        StateModel(("a",), ((1,),), ((),), ((),))
    with pytest.raises(ValueError, match="not a state model"):
        StateModel.from_dict({"sentences": []})


def test_state_loss_ignores_unknown_labels():
    logits = torch.tensor([[2.0, -1.0, 50.0], [0.5, 3.0, -50.0]])
    labels = torch.tensor([[1, 0, UNKNOWN], [UNKNOWN, 1, UNKNOWN]])
    known = labels >= 0
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits[known], labels[known].float())
    assert torch.allclose(state_loss(logits, labels), expected)
    assert float(state_loss(logits, torch.full_like(labels, UNKNOWN))) == 0.0


def test_state_head_reads_token_maps_and_single_vectors():
    head = StateHead(feature_dim=8, num_tokens=4, hidden_dim=16, text_dim=6, config=HeadsConfig(dropout=0.0),
                     init_std=0.02)
    sentences = torch.randn(5, 6)
    assert head(torch.randn(3, 4, 8), sentences).shape == (3, 5)
    assert head(torch.randn(3, 8), sentences).shape == (3, 5)


def _policy(model: StateModel, plans, **weights) -> DecodingPolicy:
    return DecodingPolicy(transition_matrix(plans, model.num_steps), "grounded", states=model,
                          grounded=GroundedConfig(**weights))


def _reading(model: StateModel, sentences: set[str]) -> np.ndarray:
    return np.array([1.0 if s in sentences else 0.0 for s in model.sentences])


def test_grounded_search_finds_a_new_order_that_the_train_prior_rules_out():
    """Training only ever took the cup down before filling it; here the cup is filled on the
    shelf, then taken down, then the bread is sliced. The step decoder leans towards that plan;
    Viterbi with the train transition matrix refuses the new order, the grounded search follows
    the states, and its prior is not in force."""
    model = world()
    plans = [[4, 3, 0]] * 10 + [[0, 4, 3]] * 10
    start = _reading(model, {"The bread is whole.", "The bread is cold.", "The cup is empty.", "The cup is on the shelf."})
    goal = _reading(model, {"The bread is sliced.", "The bread is cold.", "The cup is full.", "The cup is on the table."})
    probs = np.full((3, 5), 0.1)
    probs[0, 3], probs[1, 4], probs[2, 0] = 0.6, 0.6, 0.6
    probs /= probs.sum(1, keepdims=True)
    policy = _policy(model, plans)
    assert viterbi(probs, policy.transition).tolist() != [3, 4, 0]
    paths, scores, in_force = grounded_plans(probs[None], start[None], goal[None], policy)
    assert paths[0, 0].tolist() == [3, 4, 0] and not in_force[0]
    assert np.all(np.diff(scores[0]) <= 1e-12)
    # negative control: readings that say nothing about the state leave the train prior in force,
    # and the plan falls back on the training orders
    flat = np.full_like(start, 0.5)
    paths, _, in_force = grounded_plans(probs[None], flat[None], flat[None], _policy(model, plans, steps=0.2))
    assert in_force[0] and paths[0, 0].tolist() != [3, 4, 0]


def test_the_backoff_prior_decides_between_familiar_plans():
    """Two orders reach the same state (they commute); the states cannot tell them apart, so the
    prior is in force and picks the one training plans show."""
    model = world()
    start = _reading(model, {"The bread is whole.", "The bread is cold.", "The cup is empty.", "The cup is on the shelf."})
    goal = _reading(model, {"The bread is sliced.", "The bread is cold.", "The cup is full.", "The cup is on the table."})
    probs = np.full((3, 5), 0.2)
    for plans, expected in (([[4, 3, 0]] * 3, [4, 3, 0]), ([[0, 4, 3]] * 3, [0, 4, 3])):
        paths, _, in_force = grounded_plans(probs[None], start[None], goal[None], _policy(model, plans))
        assert in_force[0] and paths[0, 0].tolist() == expected


def test_seen_transitions_come_from_the_smoothed_matrix():
    seen = seen_transitions(transition_matrix([[0, 1, 2]], 4))
    assert seen[0, 1] and seen[1, 2] and not seen[1, 0] and not seen[3].any()


def test_grounded_decoding_needs_its_state_model():
    with pytest.raises(ValueError, match="step-effect model"):
        DecodingPolicy(np.eye(3), "grounded")


@pytest.mark.slow
def test_tabletop_labels_agree_with_the_hidden_world():
    """Diagnostic: labels derived from descriptions alone, scored against the tabletop's hidden
    symbolic states (which the model never sees). A label is right when the world agrees. The
    episode's steps around each window label far more of its images, nearly as well."""
    from training.benchmarks.grounded import hidden_truth
    from training.tabletop.dataset import descriptions, windows

    descs = descriptions()
    episodes, picked = windows("train", 3, 0, 600)
    plans = [episodes[e].plan[k:k + 3] for e, k in picked]
    model = fit_state_model([d.before for d in descs], [d.after for d in descs], plans)
    true_start, _ = hidden_truth(model.sentences, episodes, picked)
    true_goal, _ = hidden_truth(model.sentences, episodes, [(e, k + 3) for e, k in picked])

    def scored(start, goal) -> tuple[int, int]:
        right = known = 0
        for labels, truth in ((start.numpy(), true_start), (goal.numpy(), true_goal)):
            mask = labels != UNKNOWN
            right += int((labels[mask] == truth[mask]).sum())
            known += int(mask.sum())
        return right, known

    pad = lambda rows: torch.tensor([list(r) + [-1] * (12 - len(r)) for r in rows])
    right, known = scored(*StateLabeller(model)(np.array(plans)))
    assert known > 0.05 * len(picked) * 2 * model.num_propositions
    assert right / known > 0.95
    around = StateLabeller(model)(np.array(plans), pad([episodes[e].plan[:k] for e, k in picked]),
                                  pad([episodes[e].plan[k + 3:] for e, k in picked]))
    right_around, known_around = scored(*around)
    assert known_around > 1.5 * known
    assert right_around / known_around > 0.95
