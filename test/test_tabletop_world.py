"""The tabletop world and renderer: plans follow the partial orders, every step shows in the
image, rendering is deterministic from a seed, and the held-out splits hold out what they say."""
from __future__ import annotations

import json

import numpy as np
import pytest

from training.datasets.base import StepDescription
from training.tabletop import descriptions, load_tabletop, scenario, vocabulary, write_descriptions_json
from training.tabletop.dataset import make_episode, windows
from training.tabletop.renderer import make_scene, render
from training.tabletop.tasks import NOVEL_TASKS, SEEN_TASKS, TASKS
from training.tabletop.world import STEP_INDEX, STEPS, Condition, PreconditionError, apply


def test_world_size_and_sharing():
    assert len(SEEN_TASKS) >= 12 and len(STEPS) >= 40
    seen_steps = set().union(*(TASKS[i].steps for i in SEEN_TASKS))
    assert {s.key for s in STEPS} <= seen_steps | set().union(*(TASKS[i].steps for i in NOVEL_TASKS))
    shared = [k for k in seen_steps if sum(k in TASKS[i].steps for i in SEEN_TASKS) > 1]
    assert len(shared) >= 10, "steps must be shared across tasks"


@pytest.mark.parametrize("task_id", range(len(TASKS)))
def test_sampled_plans_respect_partial_order_and_preconditions(task_id):
    task = TASKS[task_id]
    preds = task.predecessors()
    orders = set()
    for seed in range(60):
        plan = task.sample_plan(np.random.default_rng(seed))
        assert len(plan) >= 6 and len(set(plan)) == len(plan)
        for i, key in enumerate(plan):
            assert not (preds[key] & set(plan[i + 1:])), f"{task.name}: {key} came before one of {preds[key]}"
        task.simulate(plan)  # raises PreconditionError if a step cannot happen where it was put
        orders.add(tuple(plan))
    assert len(orders) > 1, f"{task.name} has a single valid order"


def test_preconditions_are_enforced():
    state = TASKS[0].start_state()
    with pytest.raises(PreconditionError, match="boil_kettle"):
        apply(state, STEPS[STEP_INDEX["boil_kettle"]])  # the kettle is still empty
    with pytest.raises(ValueError, match="obj.attr=value"):
        Condition.parse("kettle full")


def test_middle_of_a_plan_is_not_fixed_by_its_ends():
    """Two different 3-step windows share the same start and goal states."""
    by_ends = {}
    for seed in range(200):
        ep = make_episode(SEEN_TASKS[seed % len(SEEN_TASKS)], seed)
        for k in range(len(ep.plan) - 2):
            ends = (ep.task, tuple(sorted(ep.states[k].items())), tuple(sorted(ep.states[k + 3].items())))
            by_ends.setdefault(ends, set()).add(ep.plan[k:k + 3])
    assert sum(len(v) > 1 for v in by_ends.values()) >= 10


def test_rendering_is_deterministic_and_every_step_changes_the_image():
    for task_id in range(len(TASKS)):
        ep = make_episode(task_id, 1234 + task_id)
        again = make_episode(task_id, 1234 + task_id)
        assert ep.plan == again.plan
        frames = [ep.frame(k) for k in range(len(ep.states))]
        assert all(f.shape == (224, 224, 3) and f.dtype == np.uint8 for f in frames)
        assert np.array_equal(frames[0], again.frame(0))
        scene = ep.scene
        for k, step in enumerate(ep.plan):
            # same frame number, so only the state differs: the step must be visible
            before = render(ep.states[k], scene, 0).astype(int)
            after = render(ep.states[k + 1], scene, 0).astype(int)
            changed = (np.abs(after - before).max(axis=2) > 40).sum()
            assert changed >= 15, f"{TASKS[task_id].name}: step {STEPS[step].key!r} barely changes the image ({changed} px)"
    other = make_scene(tuple(ep.states[0]), ep.seed + 1)
    assert not np.array_equal(render(ep.states[0], other, 0), frames[0])


def test_splits_are_disjoint_and_hold_out_what_they_say():
    train_eps, _ = windows("train", 3, 0, 200)
    val_eps, _ = windows("val", 3, 0, 100)
    test_eps, _ = windows("test", 3, 0, 100)
    novel_eps, _ = windows("novel", 3, 0, 100)
    seeds = [{e.seed for e in eps} for eps in (train_eps, val_eps, test_eps, novel_eps)]
    assert all(not (a & b) for i, a in enumerate(seeds) for b in seeds[i + 1:])
    assert {e.task for e in train_eps} == set(SEEN_TASKS) == {e.task for e in test_eps}
    assert {e.task for e in novel_eps} == set(NOVEL_TASKS)
    assert not {e.task for e in novel_eps} & {e.task for e in train_eps}


def test_descriptions_schema_format(tmp_path):
    descs = descriptions()
    assert len(descs) == len(STEPS) and all(isinstance(d, StepDescription) for d in descs)
    assert all(d.before and d.after and d.description for d in descs)
    assert descs[STEP_INDEX["slice_tomato"]].after == ("The tomato is sliced.",)
    table = json.loads(write_descriptions_json(tmp_path / "d.json").read_text())
    assert set(table) == {t.name for t in TASKS}
    entry = table["make tea"]["boil the kettle"]
    assert set(entry) == {"description", "before", "after"} and entry["after"] == ["The kettle is hot."]


def test_dataset_api_images():
    ds = load_tabletop("train", 4, seed=3, num_samples=7, observation="images", progress=False)
    assert len(ds) == 7 and ds.horizon == 4 and ds.observation == "images"
    s = ds[0]
    assert s.start.shape == (224, 224, 3) and s.start.dtype == np.uint8 and s.steps.shape == (4,)
    assert set(s.steps.tolist()) <= set(ds.vocab.task_steps[s.task])
    assert len(ds.descriptions) == ds.vocab.num_steps == len(STEPS)
    para = load_tabletop("paraphrase", 4, seed=3, num_samples=7, observation="images", progress=False)
    test = load_tabletop("test", 4, seed=3, num_samples=7, observation="images", progress=False)
    assert [p.steps.tolist() for p in para] == [t.steps.tolist() for t in test]
    assert np.array_equal(para[2].goal, test[2].goal) and para.vocab.labels != test.vocab.labels
    with pytest.raises(ValueError, match="split"):
        load_tabletop("dev", 3)
    with pytest.raises(ValueError, match="horizon"):
        load_tabletop("train", 9)


def test_scenario_frames_and_labels():
    sc = scenario("make tea", seed=5)
    assert sc.task == "make tea" and len(sc.frames) == len(sc.labels) + 1 == len(sc.step_ids) + 1
    assert sc.labels[0] == STEPS[sc.step_ids[0]].label
    assert np.array_equal(scenario("make tea", seed=5).frames[-1], sc.frames[-1])
    with pytest.raises(ValueError, match="unknown tabletop task"):
        scenario("fly a kite")
