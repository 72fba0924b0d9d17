"""Tabletop samples and splits, served as a `ProcedureDataset` of images or backbone features.

An episode is one task done once: a sampled plan, the states it passes through and a scene
(layout and nuisance). Like a benchmark video, every window of T consecutive steps of an
episode is one sample: start = the image before the window's first step, goal = the image
after its last. Splits draw disjoint episode seeds:

- train / val: the seen tasks (val is carved from the same distribution, other seeds);
- test: new episodes of the seen tasks; paraphrase: the very same samples as test, but the
  vocabulary's labels are the test paraphrases (open-vocabulary test, scored once);
- paraphrase-val: the very same samples as val, labelled with the second, independently
  written paraphrase set: the only place open-vocabulary weights are tuned
  (training/tabletop/paraphrases.py);
- novel: episodes of the held-out tasks, made of seen steps.

A paraphrase split's descriptions hold the new label alone (no description text, no state
sentences): whoever brings new labels does not have our descriptions. Richer ones come from
`planllm describe` run over the new labels, as a user would.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from tqdm import tqdm

from training.datasets.base import ProcedureDataset, Sample, StepDescription, StepVocabulary
from training.tabletop.paraphrases import paraphrase_labels
from training.tabletop.renderer import Scene, make_scene, render
from training.tabletop.tasks import NOVEL_TASKS, SEEN_TASKS, TASK_INDEX, TASKS
from training.tabletop.world import STEP_INDEX, STEPS, State, before_after

SPLITS = ("train", "val", "test", "novel", "paraphrase", "paraphrase-val")
# samples per split when num_samples is None: a tiny training config's feature cache builds in
# a couple of minutes on two cores (the backbone does ~25 images/s there)
DEFAULT_SAMPLES = {"train": 2400, "val": 300, "test": 600, "novel": 300, "paraphrase": 600, "paraphrase-val": 300}
MAX_HORIZON = 6  # every task's shortest plan has 6 steps, so each task gives windows up to T = 6
_STREAM = {"train": 0, "val": 1, "test": 2, "novel": 3}
# paraphrase split -> the split whose episodes it serves, which also names its paraphrase set
PARAPHRASE_SPLITS = {"paraphrase": "test", "paraphrase-val": "val"}


@dataclass(frozen=True)
class Episode:
    task: int
    seed: int
    plan: tuple[int, ...]  # global step ids
    states: tuple[State, ...]  # len(plan) + 1

    @cached_property
    def scene(self) -> Scene:
        return make_scene(tuple(self.states[0]), self.seed)

    def frame(self, k: int) -> np.ndarray:
        """The camera image of the state before step k (k = len(plan): after the last step)."""
        return render(self.states[k], self.scene, k)


def make_episode(task: int, seed: int) -> Episode:
    spec = TASKS[task]
    plan = spec.sample_plan(np.random.default_rng([seed, 1]))
    return Episode(task, seed, tuple(STEP_INDEX[k] for k in plan), tuple(spec.simulate(plan)))


def _check(split: str, horizon: int) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown tabletop split {split!r}: expected one of {SPLITS}")
    if not 1 <= horizon <= MAX_HORIZON:
        raise ValueError(f"tabletop horizon must be in 1..{MAX_HORIZON}, got {horizon}")


def generation_split(split: str) -> str:
    """The split whose episodes `split` serves (paraphrase serves test's, paraphrase-val val's)."""
    return PARAPHRASE_SPLITS.get(split, split)


def split_tasks(split: str) -> tuple[int, ...]:
    """The task indices whose episodes `split` draws: the held-out tasks for novel, else the seen ones."""
    return NOVEL_TASKS if split == "novel" else SEEN_TASKS


def windows(split: str, horizon: int, seed: int, num_samples: int) -> tuple[list[Episode], list[tuple[int, int]]]:
    """Episodes of `split` and the (episode index, first step) of `num_samples` windows."""
    _check(split, horizon)
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    tasks = split_tasks(split)
    episodes: list[Episode] = []
    picked: list[tuple[int, int]] = []
    while len(picked) < num_samples:
        i = len(episodes)
        ep_seed = int(np.random.SeedSequence([seed, _STREAM[generation_split(split)], i]).generate_state(1)[0])
        episodes.append(make_episode(tasks[i % len(tasks)], ep_seed))
        picked += [(i, k) for k in range(len(episodes[-1].plan) - horizon + 1)]
    return episodes, picked[:num_samples]


def vocabulary(paraphrase: bool = False, paraphrase_set: str = "test") -> StepVocabulary:
    """All steps (index = global step id) and all tasks, held-out ones included; with
    `paraphrase`, the steps are named by the paraphrase set `paraphrase_set` ("test" or "val")."""
    labels = paraphrase_labels(paraphrase_set) if paraphrase else tuple(s.label for s in STEPS)
    task_steps = {i: tuple(sorted(STEP_INDEX[k] for k in t.steps)) for i, t in enumerate(TASKS)}
    return StepVocabulary(labels, tuple(t.name for t in TASKS), task_steps)


def descriptions(paraphrase: bool = False, paraphrase_set: str = "test") -> list[StepDescription]:
    """One SCHEMA-style description per global step id (label + description + state sentences).
    With `paraphrase`: the paraphrase alone, since our descriptions come with our labels only."""
    if paraphrase:
        return [StepDescription(label, "") for label in paraphrase_labels(paraphrase_set)]
    return [StepDescription(step.label, step.description, *before_after(step)) for step in STEPS]


def write_descriptions_json(path: str | Path) -> Path:
    """The descriptions in the benchmark JSON layout: task -> step label -> {description, before, after}."""
    table = {}
    for task in TASKS:
        table[task.name] = {}
        for key in task.steps:
            d = descriptions()[STEP_INDEX[key]]
            table[task.name][d.label] = {"description": d.description, "before": list(d.before), "after": list(d.after)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(table, indent=1))
    return path


def render_frames(episodes: list[Episode], keys: list[tuple[int, int]], progress: bool = False) -> list[np.ndarray]:
    """The images of the (episode, state) keys, in order."""
    return [episodes[e].frame(k) for e, k in tqdm(keys, desc="render", unit="img", disable=not progress)]


def load_tabletop(split: str, horizon: int, seed: int = 0, num_samples: int | None = None,
                  observation: str = "features", cache_dir: str | Path | None = None,
                  backbone: str = "mobilenet_v2", layer: int = -1, progress: bool = True) -> ProcedureDataset:
    """The tabletop dataset of one split and horizon.

    observation="images": start/goal are (224, 224, 3) uint8 (the camera path; frames shared by
    windows of one episode are one array). observation="features": the frozen backbone's token
    map at block `layer`, (L, C) float16, read from (or written to) the feature cache in `cache_dir`.
    """
    _check(split, horizon)
    if observation not in ("features", "images"):
        raise ValueError(f"observation must be 'features' or 'images', got {observation!r}")
    num_samples = DEFAULT_SAMPLES[split] if num_samples is None else int(num_samples)
    episodes, picked = windows(split, horizon, seed, num_samples)
    keys = sorted({(e, k) for e, k0 in picked for k in (k0, k0 + horizon)})
    if observation == "images":
        observed = dict(zip(keys, render_frames(episodes, keys, progress)))
    else:
        from training.tabletop.features import cached_features

        feats = cached_features(episodes, keys, backbone=backbone, layer=layer, cache_dir=cache_dir, progress=progress,
                                identity={"split": generation_split(split), "seed": seed,
                                          "num_samples": num_samples, "horizon": horizon})
        observed = dict(zip(keys, feats))
    name = generation_split(split)
    samples = [Sample(observed[(e, k)], observed[(e, k + horizon)],
                      np.asarray(episodes[e].plan[k:k + horizon], dtype=np.int64), episodes[e].task,
                      f"tabletop-{name}-s{seed}-e{e}", np.asarray(episodes[e].plan[:k], dtype=np.int64),
                      np.asarray(episodes[e].plan[k + horizon:], dtype=np.int64))
               for e, k in picked]
    if split in PARAPHRASE_SPLITS:
        vocab, descs = vocabulary(True, name), descriptions(True, name)
    else:
        vocab, descs = vocabulary(), descriptions()
    return ProcedureDataset("tabletop", split, horizon, samples, vocab, descs, observation)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Scenario:
    """One whole episode for the ROS demo: frames[0] = start, frames[i] = after step i, frames[-1] = goal.
    `states` are the world's hidden symbolic states of those frames, for diagnostics only (what
    the exact ceiling's planner would answer on the demo's windows)."""

    task: str
    step_ids: tuple[int, ...]
    labels: tuple[str, ...]
    frames: tuple[np.ndarray, ...]
    states: tuple[State, ...]


def scenario(task: str | int | None = None, seed: int = 0) -> Scenario:
    """Render one episode of `task` (a name or id; None = a seen task picked by `seed`)."""
    if task is None:
        task_id = SEEN_TASKS[seed % len(SEEN_TASKS)]
    elif isinstance(task, str):
        if task not in TASK_INDEX:
            raise ValueError(f"unknown tabletop task {task!r}: expected one of {sorted(TASK_INDEX)}")
        task_id = TASK_INDEX[task]
    else:
        if not 0 <= task < len(TASKS):
            raise ValueError(f"tabletop task id {task} out of range 0..{len(TASKS) - 1}")
        task_id = int(task)
    ep = make_episode(task_id, int(np.random.SeedSequence([seed, 9]).generate_state(1)[0]))
    return Scenario(TASKS[task_id].name, ep.plan, tuple(STEPS[i].label for i in ep.plan),
                    tuple(ep.frame(k) for k in range(len(ep.states))), tuple(ep.states))
