"""The two tabletop paraphrase sets and the splits that serve them: each set keeps the rules
(no training label or description, no training label inside, no repeats), the two sets differ
at every step, and "paraphrase" / "paraphrase-val" serve test's / val's very samples under
their own labels, with descriptions that carry nothing but the new label."""
from __future__ import annotations

import numpy as np
import pytest

from training.tabletop import descriptions, load_tabletop, paraphrases, vocabulary
from training.tabletop.dataset import windows
from training.tabletop.paraphrases import SETS, TEST, VAL, check, normalise, paraphrase_labels
from training.tabletop.world import STEPS
from training.train.config import DataConfig
from training.train.splits import load_split


@pytest.mark.parametrize("name", sorted(SETS))
def test_each_set_keeps_the_rules(name):
    assert check(name) == []
    labels = {normalise(s.label) for s in STEPS}
    described = {normalise(s.description) for s in STEPS}
    texts = paraphrase_labels(name)
    assert len(texts) == len(STEPS) and len({normalise(t) for t in texts}) == len(STEPS)
    for text in texts:
        words = normalise(text)
        assert words not in labels and words not in described, text
        assert not any(label in words or words in label for label in labels), text


def test_check_names_every_broken_rule(monkeypatch):
    broken = dict(TEST)
    broken["dice_tomato"] = "Chop the tomato into small cubes!"  # a description, up to case and punctuation
    broken["slice_apple"] = "carefully slice the apple"  # contains a training label
    broken["slice_lemon"] = broken["slice_banana"]  # a repeat within the set
    broken["peel_egg"] = VAL["peel_egg"]  # the same words as the other set
    del broken["flip_egg"]
    broken["juggle"] = "juggle the eggs"
    monkeypatch.setitem(SETS, "test", broken)
    problems = "\n".join(check("test"))
    for expected in ("'dice_tomato'", "equals a training label or description", "contains the training label "
                     "'slice the apple'", "share the paraphrase", "'peel_egg'", "also appears in the val set",
                     "no paraphrase for step 'flip_egg'", "'juggle' is not a step"):
        assert expected in problems, expected
    with pytest.raises(ValueError, match="unknown paraphrase set"):
        paraphrase_labels("train")


def test_the_two_sets_differ_at_every_step():
    assert set(TEST) == set(VAL) == {s.key for s in STEPS}
    for key in TEST:
        assert normalise(TEST[key]) != normalise(VAL[key]), key
    assert not {normalise(t) for t in TEST.values()} & {normalise(t) for t in VAL.values()}


@pytest.mark.parametrize("split,source,name", [("paraphrase", "test", "test"), ("paraphrase-val", "val", "val")])
def test_paraphrase_splits_serve_their_source_samples_under_their_own_labels(split, source, name):
    para = load_tabletop(split, 3, seed=4, num_samples=5, observation="images", progress=False)
    plain = load_tabletop(source, 3, seed=4, num_samples=5, observation="images", progress=False)
    assert para.split == split and len(para) == 5
    assert [p.steps.tolist() for p in para] == [s.steps.tolist() for s in plain]
    assert [p.video for p in para] == [s.video for s in plain]
    assert all(np.array_equal(p.goal, s.goal) and np.array_equal(p.start, s.start) for p, s in zip(para, plain))
    assert para.vocab.labels == paraphrase_labels(name) == vocabulary(True, name).labels
    assert plain.vocab.labels == vocabulary().labels == tuple(s.label for s in STEPS)
    assert para.vocab.task_steps == plain.vocab.task_steps
    # a reader of new labels has no descriptions of ours: the label alone, no state sentences
    assert [d.label for d in para.descriptions] == list(para.vocab.labels)
    assert all(d.description == "" and d.before == () and d.after == () for d in para.descriptions)
    assert [d.text() for d in para.descriptions] == list(para.vocab.labels)
    assert [d.text() for d in para.descriptions] == [d.text() for d in descriptions(True, name)]
    ours = {normalise(s.description) for s in STEPS}
    assert not any(normalise(d.text()) in ours for d in para.descriptions)


def test_paraphrase_val_is_val_episodes_and_never_test_ones():
    val_eps, val_picked = windows("val", 3, 0, 200)
    pv_eps, pv_picked = windows("paraphrase-val", 3, 0, 200)
    test_eps, _ = windows("paraphrase", 3, 0, 200)
    assert [e.seed for e in pv_eps] == [e.seed for e in val_eps] and pv_picked == val_picked
    assert not {e.seed for e in pv_eps} & {e.seed for e in test_eps}


def test_the_splits_are_registered_for_configs():
    data = DataConfig(observation="images", eval_samples=4)
    dataset = load_split(data, "paraphrase-val")
    assert dataset.split == "paraphrase-val" and dataset.vocab.labels == paraphrase_labels("val")
    assert load_split(data, "paraphrase").vocab.labels == paraphrase_labels("test")


def test_label_words_kept_measures_how_close_a_set_stays_to_the_labels(monkeypatch):
    """The val set keeps more of the labels' content words than the test set (41 % vs 26 %), the
    gap the open-vocabulary report quotes; a set that is the labels themselves keeps all of them
    and one that shares no content word keeps none (negative controls of the measure)."""
    assert round(100 * paraphrases.label_words_kept("val")) == 41
    assert round(100 * paraphrases.label_words_kept("test")) == 26
    monkeypatch.setitem(paraphrases.SETS, "val", {s.key: s.label for s in STEPS})
    assert paraphrases.label_words_kept("val") == 1.0
    monkeypatch.setitem(paraphrases.SETS, "val", {s.key: "do the thing" for s in STEPS})
    assert paraphrases.label_words_kept("val") == 0.0
