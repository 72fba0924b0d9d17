"""Exact plan distributions of the tabletop tasks, and held-out tasks that are really new: their
step windows are not pieces of seen plans."""
from __future__ import annotations

from collections import Counter
from fractions import Fraction

import numpy as np
import pytest

from training.tabletop.dataset import windows
from training.tabletop.tasks import (NOVEL_TASKS, SEEN_TASKS, TASK_INDEX, TASKS, Task, novel_overlap, overlap_with_seen,
                                     seen_windows)
from training.tabletop.world import STEPS


def test_plan_distribution_exact_small_case():
    """b after a, c free: a and c are ready first (1/2 each); after a, b and c are (1/4 each).
    The three linear extensions are not equally likely."""
    task = Task("toy", ("take_cup", "pour_kettle", "fill_kettle"), {"pour_kettle": ("take_cup",)})
    assert task.plan_distribution() == {("take_cup", "pour_kettle", "fill_kettle"): Fraction(1, 4),
                                        ("take_cup", "fill_kettle", "pour_kettle"): Fraction(1, 4),
                                        ("fill_kettle", "take_cup", "pour_kettle"): Fraction(1, 2)}
    chosen = Task("toy", ("slice_tomato", "dice_tomato", "tomato_to_bowl"),
                  {"tomato_to_bowl": ("slice_tomato", "dice_tomato")}, optional=(("tomato_to_bowl",),),
                  choices=(("slice_tomato", "dice_tomato"),))
    assert chosen.plan_distribution() == {("slice_tomato", "tomato_to_bowl"): Fraction(1, 4),
                                          ("dice_tomato", "tomato_to_bowl"): Fraction(1, 4),
                                          ("slice_tomato",): Fraction(1, 4), ("dice_tomato",): Fraction(1, 4)}


@pytest.mark.parametrize("task_id", range(len(TASKS)))
def test_plan_distribution_is_a_distribution_of_valid_plans(task_id):
    dist = TASKS[task_id].plan_distribution()
    assert sum(dist.values()) == 1 and all(p > 0 for p in dist.values())
    for plan in list(dist)[::max(1, len(dist) // 200)]:
        TASKS[task_id].simulate(list(plan))  # raises if a step cannot happen where it is


def test_plan_distribution_matches_the_sampler():
    """20000 sampled plans of "cook pasta" (248 plans, probabilities from 1/4096 to 1/16) against
    the exact probabilities: every count within 5 standard deviations."""
    task = TASKS[TASK_INDEX["cook pasta"]]
    dist = task.plan_distribution()
    rng, n = np.random.default_rng(0), 20_000
    counts = Counter(tuple(task.sample_plan(rng)) for _ in range(n))
    assert set(counts) <= set(dist)
    for plan, p in dist.items():
        p = float(p)
        assert abs(counts[plan] - n * p) <= 5 * (n * p * (1 - p)) ** 0.5 + 1, plan


def test_held_out_tasks_are_new_combinations_of_seen_steps():
    assert len(NOVEL_TASKS) == 3 and "boil potatoes" not in TASK_INDEX
    seen_steps = set().union(*(TASKS[i].steps for i in SEEN_TASKS))
    for i in NOVEL_TASKS:
        task = TASKS[i]
        dist = task.plan_distribution()
        assert set(task.steps) <= seen_steps and len(dist) >= 8, task.name
        assert min(len(plan) for plan in dist) >= 6, task.name
        for plan in dist:
            task.simulate(list(plan))
    assert {s.key for s in STEPS} <= seen_steps


@pytest.mark.parametrize("horizon", [3, 4])
def test_novel_windows_are_not_pieces_of_seen_plans(horizon):
    """At most 5 % of the novel split's step windows can occur in any training window: exactly,
    over every plan of every seen task; and as measured on the preset's splits (4800 training
    samples, 1000 novel samples, data seed 0)."""
    assert novel_overlap(horizon) <= Fraction(5, 100)
    seen = seen_windows(horizon)
    train_eps, train_picked = windows("train", horizon, 0, 4800)
    trained = {train_eps[e].plan[k:k + horizon] for e, k in train_picked}
    assert {tuple(STEPS[i].key for i in w) for w in trained} <= seen
    novel_eps, novel_picked = windows("novel", horizon, 0, 1000)
    shared = sum(novel_eps[e].plan[k:k + horizon] in trained for e, k in novel_picked)
    assert shared <= 0.05 * len(novel_picked)


def test_the_old_held_out_tasks_would_fail_the_bound():
    """The measure can fail: a held-out task that is a seen task minus two steps shares most of
    its windows with training."""
    mashed = TASKS[TASK_INDEX["make mashed potatoes"]]
    boiled = Task("boil potatoes", tuple(k for k in mashed.steps if k not in ("dice_potato", "mash_potato")),
                  {k: tuple(p for p in v if p not in ("dice_potato", "mash_potato"))
                   for k, v in mashed.after.items() if k not in ("dice_potato", "mash_potato")},
                  optional=(("butter_bowl",),), novel=True)
    assert overlap_with_seen([boiled], 3) > Fraction(1, 2)
