"""Tasks of the tabletop world: partial orders of steps with optional steps and alternatives.

A task lists its steps and, per step, the steps that must come before it. Optional groups are
done together or not at all; a choice picks exactly one of its alternatives. An episode's plan
is a random linear extension of the included steps, so several orders are valid and the middle
of a plan is not fixed by its two ends. Held-out (novel) tasks reuse only steps of seen tasks,
in combinations no seen task shows: `novel_overlap` gives the share of held-out windows whose
step sequence a training window can show (0 for the tasks below).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from training.tabletop.world import STEP_INDEX, STEPS, State, apply, initial_state


@dataclass(frozen=True)
class Task:
    name: str
    steps: tuple[str, ...]
    after: dict[str, tuple[str, ...]]  # step -> steps that must come before it (when included)
    optional: tuple[tuple[str, ...], ...] = ()  # each group: included (all of it) with p = 0.5
    choices: tuple[tuple[str, ...], ...] = ()  # each: exactly one of these steps is included
    init: dict[str, dict] = field(default_factory=dict)  # initial attributes that differ from defaults
    novel: bool = False  # held out of training: only in the "novel" split

    def objects(self) -> set[str]:
        """Every object any variant of the task touches (drawn in every episode of the task,
        so which objects are on the table never gives away which options were taken)."""
        return set().union(*(STEPS[STEP_INDEX[k]].objects for k in self.steps)) | set(self.init)

    def predecessors(self) -> dict[str, set[str]]:
        """Transitive closure of `after`, so dropping an excluded step keeps the order around it."""
        closure = {k: set(self.after.get(k, ())) for k in self.steps}
        changed = True
        while changed:
            changed = False
            for k, preds in closure.items():
                extra = set().union(*(closure[p] for p in preds)) - preds if preds else set()
                if extra:
                    preds |= extra
                    changed = True
        return closure

    def included(self, rng: np.random.Generator) -> list[str]:
        dropped: set[str] = set()
        for group in self.optional:
            if rng.random() < 0.5:
                dropped |= set(group)
        for alternatives in self.choices:
            keep = alternatives[int(rng.integers(len(alternatives)))]
            dropped |= set(alternatives) - {keep}
        return [k for k in self.steps if k not in dropped]

    def sample_plan(self, rng: np.random.Generator) -> list[str]:
        """A random valid plan: options and alternatives drawn, then a random linear extension."""
        steps = self.included(rng)
        preds = self.predecessors()
        remaining, plan = list(steps), []
        while remaining:
            ready = [k for k in remaining if not (preds[k] & set(remaining))]
            pick = ready[int(rng.integers(len(ready)))]
            plan.append(pick)
            remaining.remove(pick)
        return plan

    def plan_distribution(self) -> dict[tuple[str, ...], Fraction]:
        """Every plan `sample_plan` can return, with its exact probability.

        Mirrors `included` (each optional group dropped with p = 1/2, one alternative of each
        choice uniformly) and `sample_plan` (a uniform pick among the ready steps at each
        position). Linear extensions are therefore not equally likely: a step that is ready
        early has more chances to be picked early. Exact (rational) so that ceilings and
        overlap shares computed from it carry no sampling error.
        """
        preds = self.predecessors()
        out: dict[tuple[str, ...], Fraction] = {}

        def extend(plan: tuple[str, ...], remaining: tuple[str, ...], p: Fraction, ways: int) -> None:
            """Add every completion of `plan`; `ways`: the product of the ready-set sizes so far."""
            if not remaining:
                out[plan] = out.get(plan, Fraction(0)) + p / ways
                return
            ready = [k for k in remaining if not (preds[k] & set(remaining))]
            for k in ready:
                extend(plan + (k,), tuple(r for r in remaining if r != k), p, ways * len(ready))

        for drops in itertools.product((False, True), repeat=len(self.optional)):
            for keeps in itertools.product(*self.choices):
                dropped = set().union(*(g for g, d in zip(self.optional, drops) if d))
                dropped |= set().union(*(set(alts) - {k} for alts, k in zip(self.choices, keeps)))
                p = Fraction(1, 2 ** len(self.optional))
                for alternatives in self.choices:
                    p /= len(alternatives)
                extend((), tuple(k for k in self.steps if k not in dropped), p, 1)
        return out

    def start_state(self) -> State:
        return initial_state(self.objects(), self.init)

    def simulate(self, plan: list[str]) -> list[State]:
        """States before the first step, after each step (len(plan) + 1 states)."""
        states = [self.start_state()]
        for key in plan:
            states.append(apply(states[-1], STEPS[STEP_INDEX[key]]))
        return states


def _hand_in_hand(*rounds: tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """(steps, after) of two procedures done hand in hand: each round takes one step of each (in
    either order) and comes after the whole previous round. Three consecutive steps then always
    mix the two procedures, and no seen task has both, so a held-out window is a new combination
    of seen steps and never a piece of a seen plan (`novel_overlap` measures it)."""
    after = {k: prev for prev, now in zip(rounds, rounds[1:]) for k in now}
    return tuple(k for r in rounds for k in r), after


_DRINK_BASE = {"boil_kettle": ("fill_kettle",), "pour_kettle": ("boil_kettle", "take_cup")}
_MILK_SUGAR = {"add_milk": ("pour_kettle", "open_milk"), "add_sugar": ("take_cup",)}
_POT_BOIL = {"pot_to_stove": (), "boil_pot": ("pot_to_stove", "fill_pot")}

TASKS: tuple[Task, ...] = (
    Task("make tea",
         ("take_cup", "fill_kettle", "boil_kettle", "pour_kettle", "add_teabag", "remove_teabag",
          "open_milk", "add_milk", "add_sugar"),
         {**_DRINK_BASE, **_MILK_SUGAR, "add_teabag": ("take_cup",), "remove_teabag": ("pour_kettle", "add_teabag")},
         optional=(("open_milk", "add_milk"), ("add_sugar",))),
    Task("make coffee",
         ("take_cup", "open_jar", "spoon_coffee", "close_jar", "fill_kettle", "boil_kettle", "pour_kettle",
          "open_milk", "add_milk", "add_sugar", "stir_cup"),
         {**_DRINK_BASE, **_MILK_SUGAR, "spoon_coffee": ("open_jar", "take_cup"), "close_jar": ("spoon_coffee",),
          "stir_cup": ("pour_kettle", "spoon_coffee")},
         optional=(("close_jar",), ("open_milk", "add_milk"), ("add_sugar",), ("stir_cup",))),
    Task("make a salad",
         ("wash_lettuce", "tear_lettuce", "slice_tomato", "dice_tomato", "tomato_to_bowl", "peel_cucumber",
          "slice_cucumber", "cucumber_to_bowl", "dress_salad", "toss_salad"),
         {"tear_lettuce": ("wash_lettuce",), "tomato_to_bowl": ("slice_tomato", "dice_tomato"),
          "slice_cucumber": ("peel_cucumber",), "cucumber_to_bowl": ("slice_cucumber",),
          "dress_salad": ("tear_lettuce", "tomato_to_bowl", "cucumber_to_bowl"), "toss_salad": ("dress_salad",)},
         optional=(("peel_cucumber",), ("toss_salad",)), choices=(("slice_tomato", "dice_tomato"),)),
    Task("make a sandwich",
         ("take_plate", "slice_bread", "toast_bread", "butter_bread", "bread_to_plate", "slice_cheese",
          "cheese_to_plate", "slice_tomato", "tomato_to_plate"),
         {"toast_bread": ("slice_bread",), "butter_bread": ("slice_bread", "toast_bread"),
          "bread_to_plate": ("take_plate", "toast_bread"), "cheese_to_plate": ("slice_cheese", "bread_to_plate", "butter_bread"),
          "tomato_to_plate": ("slice_tomato", "bread_to_plate", "butter_bread")},
         optional=(("toast_bread",), ("slice_tomato", "tomato_to_plate"))),
    Task("wash the dishes",
         ("cup_to_sink", "scrub_cup", "rinse_cup", "dry_cup", "shelve_cup",
          "plate_to_sink", "scrub_plate", "rinse_plate", "dry_plate", "shelve_plate"),
         {"scrub_cup": ("cup_to_sink",), "rinse_cup": ("scrub_cup",), "dry_cup": ("rinse_cup",), "shelve_cup": ("dry_cup",),
          "scrub_plate": ("plate_to_sink",), "rinse_plate": ("scrub_plate",), "dry_plate": ("rinse_plate",),
          "shelve_plate": ("dry_plate",)},
         optional=(("shelve_cup",), ("shelve_plate",)),
         init={"cup": {"loc": "table", "clean": "dirty"}, "plate": {"loc": "table", "clean": "dirty"}}),
    Task("boil an egg",
         ("fill_pot", "pot_to_stove", "boil_pot", "egg_to_pot", "egg_to_bowl", "peel_egg", "salt_egg"),
         {**_POT_BOIL, "egg_to_pot": ("boil_pot",), "egg_to_bowl": ("egg_to_pot",), "peel_egg": ("egg_to_bowl",),
          "salt_egg": ("peel_egg",)},
         optional=(("salt_egg",),)),
    Task("fry an egg",
         ("take_plate", "pan_to_stove", "heat_pan", "oil_pan", "crack_egg", "flip_egg", "salt_egg", "egg_to_plate"),
         {"heat_pan": ("pan_to_stove",), "oil_pan": ("pan_to_stove",), "crack_egg": ("heat_pan", "oil_pan"),
          "flip_egg": ("crack_egg",), "salt_egg": ("crack_egg",), "egg_to_plate": ("take_plate", "flip_egg", "salt_egg")},
         optional=(("flip_egg",), ("salt_egg",))),
    Task("make mashed potatoes",
         ("peel_potato", "dice_potato", "fill_pot", "pot_to_stove", "boil_pot", "potato_to_pot", "drain_pot",
          "potato_to_bowl", "mash_potato", "butter_bowl"),
         {**_POT_BOIL, "dice_potato": ("peel_potato",), "potato_to_pot": ("boil_pot", "dice_potato"),
          "drain_pot": ("potato_to_pot",), "potato_to_bowl": ("drain_pot",), "mash_potato": ("potato_to_bowl",),
          "butter_bowl": ("potato_to_bowl",)},
         optional=(("dice_potato",), ("butter_bowl",))),
    Task("make a fruit salad",
         ("peel_banana", "slice_banana", "banana_to_bowl", "peel_apple", "slice_apple", "dice_apple",
          "apple_to_bowl", "toss_salad"),
         {"slice_banana": ("peel_banana",), "banana_to_bowl": ("slice_banana",), "slice_apple": ("peel_apple",),
          "dice_apple": ("peel_apple",), "apple_to_bowl": ("slice_apple", "dice_apple"),
          "toss_salad": ("banana_to_bowl", "apple_to_bowl")},
         optional=(("peel_apple",),), choices=(("slice_apple", "dice_apple"),)),
    Task("make lemonade",
         ("slice_lemon", "squeeze_lemon", "fill_jug", "sugar_jug", "stir_jug", "take_cup", "pour_jug"),
         {"squeeze_lemon": ("slice_lemon",), "stir_jug": ("fill_jug", "squeeze_lemon", "sugar_jug"),
          "pour_jug": ("stir_jug", "take_cup")},
         optional=(("sugar_jug",),)),
    Task("make vegetable soup",
         ("peel_carrot", "slice_carrot", "peel_potato", "dice_potato", "fill_pot", "pot_to_stove", "boil_pot",
          "carrot_to_pot", "potato_to_pot", "dice_tomato", "tomato_to_pot", "stir_pot"),
         {**_POT_BOIL, "slice_carrot": ("peel_carrot",), "dice_potato": ("peel_potato",),
          "carrot_to_pot": ("slice_carrot", "boil_pot"), "potato_to_pot": ("dice_potato", "boil_pot"),
          "tomato_to_pot": ("dice_tomato", "boil_pot"), "stir_pot": ("carrot_to_pot", "potato_to_pot", "tomato_to_pot")},
         optional=(("peel_carrot",), ("peel_potato",), ("dice_tomato", "tomato_to_pot"))),
    Task("cook pasta",
         ("take_plate", "fill_pot", "pot_to_stove", "boil_pot", "pasta_to_pot", "stir_pot", "drain_pot",
          "pasta_to_plate", "slice_cheese", "cheese_to_plate"),
         {**_POT_BOIL, "pasta_to_pot": ("boil_pot",), "stir_pot": ("pasta_to_pot",), "drain_pot": ("pasta_to_pot", "stir_pot"),
          "pasta_to_plate": ("drain_pot", "take_plate"), "cheese_to_plate": ("slice_cheese", "pasta_to_plate")},
         optional=(("stir_pot",), ("slice_cheese", "cheese_to_plate"))),
    # held out: two seen procedures done hand in hand (see _hand_in_hand)
    Task("make tea and toast", *_hand_in_hand(
        ("fill_kettle", "slice_bread"), ("boil_kettle", "toast_bread"), ("take_cup", "take_plate"),
        ("add_teabag", "butter_bread"), ("pour_kettle", "bread_to_plate"), ("remove_teabag",)), novel=True),
    Task("wash a cup and serve lemonade", *_hand_in_hand(
        ("cup_to_sink", "slice_lemon"), ("scrub_cup", "squeeze_lemon"), ("rinse_cup", "fill_jug"),
        ("dry_cup", "stir_jug"), ("pour_jug",)), init={"cup": {"loc": "table", "clean": "dirty"}}, novel=True),
    Task("make a warm potato salad", *_hand_in_hand(
        ("peel_potato", "wash_lettuce"), ("fill_pot", "peel_cucumber"), ("pot_to_stove", "slice_cucumber"),
        ("boil_pot", "tear_lettuce"), ("potato_to_pot", "cucumber_to_bowl"), ("drain_pot", "dress_salad"),
        ("potato_to_bowl",), ("toss_salad",)), novel=True),
)
TASK_INDEX: dict[str, int] = {t.name: i for i, t in enumerate(TASKS)}
SEEN_TASKS = tuple(i for i, t in enumerate(TASKS) if not t.novel)
NOVEL_TASKS = tuple(i for i, t in enumerate(TASKS) if t.novel)


def step_windows(plan: tuple[str, ...], horizon: int) -> list[tuple[str, ...]]:
    """The step sequences of a plan's windows of `horizon` consecutive steps, in order."""
    return [plan[k:k + horizon] for k in range(len(plan) - horizon + 1)]


def seen_windows(horizon: int) -> set[tuple[str, ...]]:
    """Every step sequence that any window of any plan of any seen task can show in training."""
    return {w for i in SEEN_TASKS for plan in TASKS[i].plan_distribution() for w in step_windows(plan, horizon)}


def overlap_with_seen(tasks: list[Task], horizon: int) -> Fraction:
    """The share of the windows of a split over `tasks` whose step sequence a training window can show.

    Exact, over every plan of every seen task (so it bounds the overlap with a training split of
    any size and seed) and weighted as the split sampler draws windows: the tasks in turn, each
    episode giving all its windows, so this is the share a large split converges to.
    """
    seen = seen_windows(horizon)
    hits = total = Fraction(0)
    for task in tasks:
        for plan, p in task.plan_distribution().items():
            windows = step_windows(plan, horizon)
            hits += p * sum(w in seen for w in windows)
            total += p * len(windows)
    return hits / total


def novel_overlap(horizon: int = 3) -> Fraction:
    """`overlap_with_seen` of the novel split (held-out tasks): 0 for the tasks above."""
    return overlap_with_seen([TASKS[i] for i in NOVEL_TASKS], horizon)
