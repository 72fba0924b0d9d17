"""Plans whose number of steps nobody gives, and progress along a plan: the per-depth grounded
search, the horizon choice and its fit, the ragged metrics, the untold true-state planners, and
progress tracking (unit level on a small described world; the Planner on the bundled model)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from planllm_ros.model.config import GroundedConfig, HorizonConfig
from planllm_ros.model.decoding import grounded_beam, grounded_candidates
from planllm_ros.model.horizon import at_horizon, choose_horizons, horizon_distribution, horizon_scores
from planllm_ros.model.progress import ProgressConfig, plan_beliefs, track
from training.evaluation.metrics import procedure_metrics, ragged_metrics
from training.datasets.state_labels import fit_state_model
from training.train.horizon import fit_choice

# slice, toast, butter the bread; fill the cup; take the cup down
BEFORE = [["The bread is whole."], ["The bread is sliced.", "The bread is cold."], ["The bread is sliced."],
          ["The cup is empty."], ["The cup is on the shelf."]]
AFTER = [["The bread is sliced."], ["The bread is hot."], ["The bread has butter on it."], ["The cup is full."],
         ["The cup is on the table."]]
MODEL = fit_state_model(BEFORE, AFTER, [[0, 1, 2], [4, 3]])
CONFIG = GroundedConfig(width=16)


def reading(sentences: set[str], sure: float = 0.97) -> np.ndarray:
    return np.array([sure if s in sentences else 1.0 - sure for s in MODEL.sentences])


START = {"The bread is whole.", "The bread is cold.", "The cup is empty.", "The cup is on the shelf."}
AFTER_SLICE = START - {"The bread is whole."} | {"The bread is sliced."}
AFTER_TOAST = AFTER_SLICE - {"The bread is cold."} | {"The bread is hot."}
AFTER_BUTTER = AFTER_TOAST | {"The bread has butter on it."}


def test_one_deep_search_scores_every_horizon_as_its_own_search_would():
    probs = np.full((4, MODEL.num_steps), 1.0 / MODEL.num_steps)
    start, goal = reading(START), reading(AFTER_TOAST)
    depths = list(grounded_beam(probs, start, goal, MODEL, CONFIG))
    assert len(depths) == 4
    for h, (paths, final) in enumerate(depths, start=1):
        own_paths, own_scores = grounded_candidates(probs[:h], start, goal, MODEL, CONFIG)
        assert final.max() == pytest.approx(own_scores[0])
        assert paths.shape[1] == h


def test_the_goal_two_steps_away_is_chosen_at_two_steps():
    probs = np.full((1, 3, MODEL.num_steps), 1.0 / MODEL.num_steps)
    start, goal = reading(START)[None], reading(AFTER_TOAST)[None]
    scores = horizon_scores(probs, start, goal, MODEL, CONFIG, 4)
    assert scores.shape == (1, 4) and scores[0].argmax() == 1  # slice, then toast
    chosen, p = choose_horizons(probs, start, goal, MODEL, CONFIG, HorizonConfig(max_horizon=4))
    assert chosen.tolist() == [2] and p.shape == (1, 4) and p.sum() == pytest.approx(1.0)
    # an offset is a prior over horizons: a large enough one overrides the evidence
    forced = HorizonConfig(max_horizon=4, offsets=[0.0, 0.0, 100.0, 0.0])
    assert choose_horizons(probs, start, goal, MODEL, CONFIG, forced)[0].tolist() == [3]


def test_other_horizons_read_the_decoders_position_free_distribution():
    probs = np.zeros((1, 3, 5))
    probs[0, np.arange(3), [0, 1, 2]] = 1.0
    assert at_horizon(probs, 3) is not None and np.array_equal(at_horizon(probs, 3), probs)
    free = at_horizon(probs, 5)
    assert free.shape == (1, 5, 5) and np.allclose(free[0], [1 / 3, 1 / 3, 1 / 3, 0, 0])


def test_the_horizon_distribution_is_a_tempered_softmax_with_offsets():
    scores = np.array([[-3.0, -1.0, -2.0]])
    p = horizon_distribution(scores, HorizonConfig(max_horizon=3, temperature=2.0, offsets=[0.0, 0.0, 1.0]))
    logits = np.array([-1.5, -0.5, 0.0])
    assert np.allclose(p, np.exp(logits) / np.exp(logits).sum())


def test_fitting_the_choice_recovers_a_bias_the_scores_hide():
    rng = np.random.default_rng(0)
    truth = rng.integers(1, 5, size=2000)
    # every step costs more than missing the goal by one: the scores favour one step too few
    h = np.arange(1, 5)[None]
    scores = -2.0 * np.abs(h - truth[:, None]) - 2.5 * h + rng.normal(0, 0.3, (2000, 4))
    raw = (scores.argmax(1) + 1 == truth).mean()
    choice = fit_choice(scores, truth)
    fitted = ((scores / choice.temperature + np.array(choice.offsets)).argmax(1) + 1 == truth).mean()
    assert raw < 0.5 and fitted > 0.7 and len(choice.offsets) == 4 and choice.temperature > 0


def test_ragged_metrics_score_plans_of_any_length():
    m = ragged_metrics([[1, 2], [3], [4, 5, 6]], [[1, 2], [3, 7], [4, 5]])
    assert m["horizon"] == pytest.approx(100 / 3)
    assert m["sr"] == pytest.approx(100 / 3)
    assert m["macc"] == pytest.approx(100 * 5 / 6)  # the second plan misses its second position
    assert m["miou_set"] == pytest.approx(100 * (1 + 0.5 + 2 / 3) / 3)
    same = np.array([[1, 2, 3], [4, 5, 6]]), np.array([[1, 2, 0], [4, 5, 6]])
    fixed = procedure_metrics(*same)
    ragged = ragged_metrics(*same)
    assert all(ragged[k] == pytest.approx(fixed[k]) for k in ("sr", "macc", "miou_set"))
    with pytest.raises(ValueError):
        ragged_metrics([[1]], [])


def test_untold_true_state_planners_on_real_windows():
    from training.tabletop.baselines import seen_window_table
    from training.tabletop.baselines import untold_state_plans
    from training.tabletop.dataset import windows

    tables = {h: seen_window_table(h) for h in (1, 2)}
    likely, shortest = untold_state_plans("test", 2, 0, 30, tables)
    episodes, picked = windows("test", 2, 0, 30)
    truth = [episodes[e].plan[k:k + 2] for e, k in picked]
    assert len(likely) == len(shortest) == 30
    assert all(len(s) <= 2 for s in shortest)  # never longer than the true window, which is one way there
    assert np.mean([len(s) == 2 for s in shortest]) > 0.9  # two steps rarely have a one-step shortcut
    assert np.mean([list(p) == list(t) for p, t in zip(likely, truth)]) > 0.4


def test_progress_follows_the_plan_and_notices_when_the_frame_leaves_it():
    plan = [0, 1, 2]  # slice, toast, butter
    start = reading(START)
    beliefs = plan_beliefs(start, plan, MODEL, 0.02)
    assert beliefs.shape == (4, MODEL.num_propositions)
    done = 0
    for k, frame in enumerate([START, AFTER_SLICE, AFTER_TOAST, AFTER_BUTTER]):
        progress = track(start, plan, reading(frame), MODEL, done)
        assert (progress.done, progress.left_plan) == (k, False)
        assert progress.confidence > 0.9 and len(progress.probs) == 4
        done = progress.done
    assert progress.finished
    # the cup was filled instead: the plan's own propositions do not say so, the plan still holds
    assert not track(start, plan, reading(START - {"The cup is empty."} | {"The cup is full."}), MODEL, 0).left_plan
    # toasted bread turned whole again after two steps: undone
    undone = track(start, plan, reading(START), MODEL, 2)
    assert undone.left_plan and "undone" in undone.reason
    # buttered without toasting: two of the plan's propositions read against every point near it
    odd = AFTER_SLICE | {"The bread has butter on it."}
    strict = track(start, plan, reading(odd), MODEL, 1, dataclasses.replace(ProgressConfig(), tolerance=0))
    assert strict.left_plan and "against" in strict.reason


@pytest.fixture(scope="module")
def planner():
    from planllm_ros.runtime.planner import Planner

    return Planner.from_dir("models/tabletop-tiny", captions=False)


def test_the_bundled_planner_chooses_its_horizon_and_follows_a_played_episode(planner):
    from planllm_ros.runtime.errors import PlannerError
    from training.tabletop.dataset import scenario

    played = scenario(seed=302)
    assert planner.chooses_horizon and planner.max_horizon == 6
    chosen = planner.plan(played.frames[0], played.frames[1], captions=False)
    assert chosen.horizon == len(chosen.step_ids) and len(chosen.horizon_probs) == 6
    assert chosen.horizon_confidence == max(chosen.horizon_probs)
    told = planner.plan(played.frames[0], played.frames[5], horizon=5, captions=False)
    assert told.horizon == 5 and told.horizon_probs is None and "start_probs" not in told.to_dict()
    with pytest.raises(PlannerError, match="1 to 6"):
        planner.plan(played.frames[0], played.frames[5], horizon=7)
    plan = planner.plan(played.frames[0], played.frames[3], horizon=3, captions=False)
    done = [planner.track(plan, played.frames[0]).done]
    for frame in played.frames[1:4]:
        done.append(planner.track(plan, frame, done[-1]).done)
    assert done == sorted(done) and done[0] == 0 and done[-1] >= 2
