"""Open-vocabulary methods (planllm_ros.model.openvocab) on cases small enough to check by hand,
with the real MiniLM text encoder and a real tiny PlanLLM; then through the pipeline."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from planllm_ros.model.config import ConfigError, OpenVocabConfig, PlanLLMConfig
from planllm_ros.model.decoding import DecodingPolicy
from planllm_ros.model.graphs import TorchGraphs
from planllm_ros.model.openvocab import (Evidence, LabelIndex, carry_transition, decode, label_mapping,
                                         requirement_problem)
from planllm_ros.model.pipeline import plan_batch
from planllm_ros.model.planllm import PlanLLM
from planllm_ros.model.text_encoder import TextEncoder
from runtime_helpers import text_model, tiny_config

KNOWN = ["slice the tomato", "add salt", "pour water"]
# the known steps renamed, in another order: candidate 0 is step 2, 1 is step 0, 2 is step 1
RENAMED = ["pour water into the pot", "cut the tomato into slices", "sprinkle some salt"]
TEMPERATURE = 0.07


@pytest.fixture(scope="module")
def encoder():
    return TextEncoder()


@pytest.fixture(scope="module")
def model(encoder):
    """A tiny model whose known steps are KNOWN, described by their own labels."""
    return text_model(encoder, KNOWN)


def settings(**values) -> OpenVocabConfig:
    return OpenVocabConfig(**values)


def policy(matrix=None, **values) -> DecodingPolicy:
    """A decoding policy with the transition matrix `matrix` that names plans by the
    open-vocabulary settings `values`."""
    return DecodingPolicy(matrix, open_vocab=settings(**values))


def test_assignment_gives_each_candidate_one_step_where_nearest_neighbours_collide():
    similarity = np.array([[0.9, 0.8],
                           [0.85, 0.1]])  # both steps are nearest to candidate 0
    assert label_mapping(similarity, "soft", TEMPERATURE).argmax(axis=1).tolist() == [0, 0]
    # one to one: 0.8 + 0.85 beats 0.9 + 0.1
    np.testing.assert_array_equal(label_mapping(similarity, "assign", TEMPERATURE), [[0, 1], [1, 0]])


def test_known_steps_left_without_a_candidate_keep_their_similarity_softmax():
    similarity = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.5]])  # three steps, two candidates
    matrix = label_mapping(similarity, "assign", TEMPERATURE)
    np.testing.assert_array_equal(matrix[:2], [[1, 0], [0, 1]])
    np.testing.assert_allclose(matrix[2], label_mapping(similarity, "soft", TEMPERATURE)[2])
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)


def test_transition_is_carried_through_a_renaming_and_new_candidates_are_entered_uniformly():
    transition = np.array([[0.1, 0.9], [0.7, 0.3]])
    swap = np.array([[0.0, 1.0], [1.0, 0.0]])
    np.testing.assert_allclose(carry_transition(transition, swap), [[0.3, 0.7], [0.9, 0.1]])
    with_new = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # candidate 2: no known step maps to it
    carried = carry_transition(transition, with_new)
    np.testing.assert_allclose(carried[:2, :2], transition * 2 / 3)
    np.testing.assert_allclose(carried[:, 2], [1 / 3] * 3)
    np.testing.assert_allclose(carried[2], [1 / 3] * 3)


def test_each_method_on_a_renamed_list(encoder, model):
    index = LabelIndex(RENAMED, encoder)
    assert index.mapping(model, None, settings()).matrix.argmax(axis=1).tolist() == [1, 2, 0]
    probs = np.array([[[0.7, 0.2, 0.1], [0.3, 0.6, 0.1]]])  # step 0 then step 1
    captions = np.array([[[0.1, 0.2, 0.9], [0.9, 0.1, 0.2]]])  # captions say candidate 2, then 0
    zero_shot = np.array([[[0.9, 0.1, 0.0], [0.0, 0.1, 0.9]]])
    evidence = Evidence(probs, np.array([[0, 1]]), zero_shot, captions)
    named = {method: decode(evidence, index, model, policy(method=method)).tolist()
             for method in ("steps", "captions", "zero_shot", "joint")}
    assert named == {"steps": [[1, 2]], "captions": [[2, 0]], "zero_shot": [[0, 2]], "joint": [[1, 2]]}
    # joint: confident captions outvote the step probabilities (1 * log 0.1 vs 0.07-sharp captions)
    assert decode(evidence, index, model, policy(method="joint", captions=1.0)).tolist() == [[2, 0]]


def test_joint_follows_the_carried_transition_prior(encoder, model):
    index = LabelIndex(RENAMED, encoder)
    transition = np.array([[0.01, 0.98, 0.01], [0.5, 0.01, 0.49], [0.98, 0.01, 0.01]])
    probs = np.array([[[0.45, 0.1, 0.45], [0.05, 0.9, 0.05]]])  # position 0 undecided between steps 0 and 2
    evidence = Evidence(probs, np.array([[0, 1]]), None, None)
    # step 0 -> step 1 has p 0.98, step 2 -> step 1 has 0.01: the prior picks step 0, i.e. candidate 1
    assert decode(evidence, index, model, policy(transition, method="joint")).tolist() == [[1, 2]]
    off = decode(evidence, index, model, policy(transition, method="joint", transition=0.0))
    assert off.tolist() == [[0, 2]]  # an exact tie at position 0: the first candidate


def test_a_step_the_model_never_learned_is_reached_through_the_captions(encoder, model):
    candidates = [*RENAMED, "wash the dishes"]
    index = LabelIndex(candidates, encoder)
    matrix = index.mapping(model, None, settings()).matrix
    assert matrix[:, 3].sum() == 0  # no known step is assigned to the new one
    probs = np.array([[[0.7, 0.2, 0.1], [0.4, 0.3, 0.3]]])
    # position 1: the new candidate gets log(1/4) from the steps, the others at best log 0.4 but
    # 0.3 / 0.07 below it in the captions
    captions = np.array([[[0.1, 0.9, 0.1, 0.1], [0.1, 0.1, 0.1, 0.4]]])
    evidence = Evidence(probs, np.array([[0, 0]]), None, captions)
    assert decode(evidence, index, model, policy(method="steps")).tolist() == [[1, 1]]
    assert decode(evidence, index, model, policy(method="joint", captions=1.0)).tolist() == [[1, 3]]


def test_soft_mapping_names_each_step_by_its_nearest_candidate(encoder, model):
    index = LabelIndex(RENAMED, encoder)
    soft = index.mapping(model, None, settings(mapping="soft")).matrix
    np.testing.assert_allclose(soft.sum(axis=1), 1.0)
    assert soft.argmax(axis=1).tolist() == [1, 2, 0] and (soft > 0).all()


def test_described_candidates_are_embedded_with_their_descriptions(encoder):
    plain = LabelIndex(["cut it"], encoder).embeddings
    described = LabelIndex(["cut it"], encoder, ["Cut the tomato into thin slices with a knife."]).embeddings
    assert torch.allclose(described.norm(dim=1), torch.ones(1))
    assert (described @ encoder.encode(["slice the tomato"]).t()).item() > \
        (plain @ encoder.encode(["slice the tomato"]).t()).item()
    with pytest.raises(ValueError, match="appears twice"):
        LabelIndex(["cut it", "cut it"], encoder)
    with pytest.raises(ValueError, match="2 descriptions for 1"):
        LabelIndex(["cut it"], encoder, ["a", "b"])


def test_config_rejects_unknown_methods_and_negative_weights():
    for values, message in [({"method": "vote"}, "method must be one of"), ({"mapping": "greedy"}, "mapping"),
                            ({"captions": -1.0}, "weights must be >= 0"), ({"label_weight": 1.5}, "label_weight"),
                            ({"method": "joint", "steps": 0.0}, "needs a positive")]:
        with pytest.raises(ConfigError, match=message):
            PlanLLMConfig.from_dict({"decoding": {"open_vocab": values}})
    assert PlanLLMConfig.from_dict({}).decoding.open_vocab == OpenVocabConfig()


def test_requirements_name_what_the_model_lacks(encoder):
    no_mim = PlanLLM(PlanLLMConfig.from_dict({**tiny_config(backbone=None, feature_dim=8).to_dict(),
                                               "variant": {"use_mim": False}}), encoder.encode(KNOWN), KNOWN)
    assert "no MIM" in requirement_problem(no_mim, policy(method="zero_shot"))
    quiet = DecodingPolicy(captions=False, open_vocab=settings(method="joint", captions=0.5))
    assert "switched off" in requirement_problem(no_mim, quiet)
    assert requirement_problem(no_mim, DecodingPolicy(captions=False, open_vocab=settings(method="steps"))) is None


def test_pipeline_names_plans_from_the_models_own_labels_as_the_closed_set_does(encoder, model):
    """With the model's own labels the assignment is the identity, so `steps` gives the closed-set
    plan and `joint` with steps and the transition prior alone gives Viterbi's."""
    rng = np.random.default_rng(0)
    start, goal = torch.from_numpy(rng.normal(size=(6, 8)).astype(np.float32)), \
        torch.from_numpy(rng.normal(size=(6, 8)).astype(np.float32))
    transition = rng.random((3, 3)) + 0.05
    transition /= transition.sum(axis=1, keepdims=True)
    index = LabelIndex(KNOWN, encoder)
    out = plan_batch(model, TorchGraphs(model), start, goal,
                     DecodingPolicy.for_model(model, transition, open_vocab=settings(method="steps")), labels=index,
                     keep_evidence=True)
    np.testing.assert_array_equal(out.open_vocab_ids, out.step_ids)
    assert out.open_vocab_method == "steps" and "open_vocab" in out.timings_ms
    evidence = out.open_vocab_evidence
    assert evidence.zero_shot.shape == (6, 2, 3) and evidence.captions.shape == (6, 2, 3)
    joint = decode(evidence, index, model, policy(transition, method="joint"))
    np.testing.assert_array_equal(joint, out.step_ids)
    lean = plan_batch(model, TorchGraphs(model), start, goal,
                      DecodingPolicy.for_model(model, transition, captions=False), labels=index)
    assert lean.open_vocab_method == OpenVocabConfig().method and lean.open_vocab_evidence is None
    np.testing.assert_array_equal(lean.open_vocab_ids, out.step_ids)
