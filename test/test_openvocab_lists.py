"""Label lists as users bring them (planllm_ros.model.openvocab): the hubness correction, the
"no match" option of the one-to-one mapping, steps without a label coming out unknown through
the pipeline and the Planner, the label report, and refused label files. Real MiniLM, real
models (a tiny one, and the bundled tabletop model)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from planllm_ros.model.config import OpenVocabConfig
from planllm_ros.model.decoding import DecodingPolicy
from planllm_ros.model.openvocab import UNKNOWN, Evidence, LabelIndex, decode, hubness_corrected, label_mapping
from planllm_ros.model.text_encoder import TextEncoder
from planllm_ros.runtime.labels import MAX_LABEL_CHARS, LabelFileError, read_label_file
from runtime_helpers import text_model

TEMPERATURE = 0.07
BUNDLED = Path(__file__).resolve().parents[1] / "models" / "tabletop-tiny"
KNOWN = ["slice the tomato", "add salt", "pour water"]
DESCRIBED = ["Cut the tomato into thin slices. The tomato is whole. The tomato is sliced.",
             "Sprinkle salt over the food. The salt is on the table.",
             "Pour water into the pot. The pot is empty. The pot is full."]


@pytest.fixture(scope="module")
def encoder():
    return TextEncoder()


@pytest.fixture(scope="module")
def model(encoder):
    """A tiny model whose known steps are KNOWN, described by DESCRIBED (texts kept)."""
    return text_model(encoder, KNOWN, DESCRIBED)


def test_a_step_without_an_allowed_partner_gets_no_label():
    score = np.array([[0.9, 0.1],
                      [0.2, 0.3],
                      [0.1, 0.8]])
    allowed = np.array([[True, False],
                        [False, False],  # step 1: no candidate similar enough
                        [False, True]])
    np.testing.assert_array_equal(label_mapping(score, "assign", TEMPERATURE, allowed), [[1, 0], [0, 0], [0, 1]])
    assert label_mapping(score, "assign", TEMPERATURE, np.zeros_like(allowed)).sum() == 0
    # without a floor, every step while candidates last, the step left over spreads its row
    older = label_mapping(score, "assign", TEMPERATURE)
    assert (older.sum(axis=1) == 1).all() and (older > 0).sum(axis=1).tolist() == [1, 2, 1]


def test_the_assignment_pairs_as_many_steps_as_it_can_then_the_best_pairs():
    score = np.array([[0.9, 0.0],
                      [0.8, 0.7]])  # both prefer candidate 0; step 0 has no other allowed partner
    allowed = np.array([[True, False],
                        [True, True]])
    np.testing.assert_array_equal(label_mapping(score, "assign", TEMPERATURE, allowed), [[1, 0], [0, 1]])
    # more steps than labels: one stays without, and it is the one whose pairing scores less
    np.testing.assert_array_equal(label_mapping(score[:, :1], "assign", TEMPERATURE, allowed[:, :1]), [[1], [0]])
    soft = label_mapping(score, "soft", TEMPERATURE, np.array([[True, False], [False, False]]))
    assert soft[0].sum() == pytest.approx(1.0) and soft[1].sum() == 0


def test_hubness_correction_lets_the_specific_candidate_win_over_a_generic_one():
    # candidate 0 is generic: fairly similar to every step, and a little more to step 0 than
    # candidate 1, the specific one, which resembles step 0 alone
    similarity = np.array([[0.62, 0.60],
                           [0.58, 0.10],
                           [0.57, 0.12]])
    assert similarity[0].argmax() == 0
    corrected = hubness_corrected(similarity, 2)
    expected = 2 * similarity - np.sort(similarity, 1)[:, -2:].mean(1, keepdims=True) \
        - np.sort(similarity, 0)[-2:].mean(0, keepdims=True)
    np.testing.assert_allclose(corrected, expected)
    assert corrected[0].argmax() == 1
    np.testing.assert_array_equal(hubness_corrected(similarity, 0), similarity)
    assert hubness_corrected(similarity, 10).shape == similarity.shape  # k beyond the sizes: all of them


def test_steps_without_a_label_are_named_unknown_and_reported(encoder, model):
    candidates = ["cut the tomato into slices", "fix a flat bicycle tyre", "file the tax return"]
    index = LabelIndex(candidates, encoder)
    settings = OpenVocabConfig()
    mapping = index.mapping(model, None, settings)
    assert mapping.partner.tolist() == [0, UNKNOWN, UNKNOWN]
    evidence = Evidence(np.full((1, 2, 3), 1 / 3), np.array([[0, 2]]), None, None)
    named = decode(evidence, index, model, DecodingPolicy(open_vocab=settings))
    assert named.tolist() == [[0, UNKNOWN]]
    report = index.report(model, None, settings)
    assert report.unlabelled == ["add salt", "pour water"]
    assert [m.label for m in report.matches] == ["cut the tomato into slices", None, None]
    assert report.matches[0].margin > 0 > report.matches[1].margin
    assert set(report.unused) == {"fix a flat bicycle tyre", "file the tax return"}
    line = report.summary()
    assert "\n" not in line and line.startswith("1 of 3 known steps have a label, 2 labels name none")
    # the older mapping names every step while candidates last
    older = index.mapping(model, None, OpenVocabConfig(first_sentence=0.0, hubness_k=0, no_match=None))
    assert UNKNOWN not in older.partner.tolist()


@pytest.fixture(scope="module")
def planner():
    from planllm_ros.runtime.planner import Planner

    loaded = Planner.from_dir(BUNDLED, backend="torch", threads=1)
    yield loaded
    loaded.close()


def test_the_bundled_model_names_only_the_labelled_steps_of_a_half_list(planner):
    """Half the steps get their own training label: the report names exactly the other half as
    unlabelled, and a plan names each step by its label or says unknown, consistently with the
    report. Unrelated labels added to the list take none of the labelled steps, and name an
    unlabelled one only where they are at least as similar as the no-match floor (the report
    shows how similar: no floor tells a missing label from a distractor)."""
    labels = planner.step_labels
    half = labels[::2]
    report = planner.label_report(half)
    assert report.unlabelled == labels[1::2] and not report.unused
    assert {m.step: m.label for m in report.matches if m.label} == {label: label for label in half}
    unrelated = ["change the car's oil", "tie a bow tie", "repot the orchid", "replace the bike chain"]
    mixed = planner.label_report([*half, *unrelated])
    floor = planner.policy.open_vocab.no_match
    assert {m.step: m.label for m in mixed.matches if m.label in half} == {label: label for label in half}
    taken = [m for m in mixed.matches if m.label in unrelated]
    assert all(m.similarity >= floor and m.step in labels[1::2] for m in taken)
    assert len(taken) < len(unrelated)  # most are unlike every step
    rng = np.random.default_rng(0)
    for _ in range(3):
        start, goal = (rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(2))
        plan = planner.plan(start, goal, labels=half, captions=False)
        expected = [label if label in half else None for label in plan.labels]
        assert plan.open_vocab_labels == expected
        assert plan.open_vocab_unknown == [t for t, label in enumerate(expected) if label is None]
        assert plan.to_dict()["open_vocab_unknown"] == plan.open_vocab_unknown
    assert planner.plan(start, goal, captions=False).open_vocab_unknown is None


@pytest.mark.parametrize("content, message", [
    (b"", "holds no labels"),
    (b"# only a comment\n\n", "holds no labels"),
    (b"cut the bread\nCut  the bread\n", ":2: label 'Cut  the bread' is already on line 1"),
    (b"cut the bread\n\xff\xfe wash\n", ":2: not UTF-8 text (byte 0xff)"),
    (b"cut the bread, " * 40, f":1: a label of 599 characters (at most {MAX_LABEL_CHARS})"),
])
def test_bad_label_files_are_refused_in_one_line(tmp_path, content, message):
    path = tmp_path / "labels.txt"
    path.write_bytes(content)
    with pytest.raises(LabelFileError) as error:
        read_label_file(path)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_long_but_reasonable_label_is_kept(tmp_path):
    label = "x" * MAX_LABEL_CHARS
    (tmp_path / "labels.txt").write_text(f"{label}\nshort one\n", encoding="utf-8")
    assert read_label_file(tmp_path / "labels.txt").labels == (label, "short one")
