"""Training runs for the quality and open-vocabulary benchmarks.

A benchmark run is an ordinary `planllm train` run (training.train.trainer.train) in a directory of
its own; a directory that already holds a finished model is reused, and one holding a
checkpoint is resumed, so an interrupted full benchmark continues where it stopped. Each run
that trains here records its time beside it (RUN/bench-train.json: wall and CPU seconds, and
how many runs trained at once), so a results table can quote it even when it reuses the run.
`in_processes` runs several at once, each in its own process with one torch thread.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from pathlib import Path

import torch
from tqdm import tqdm

from planllm_ros.model.folder import CHECKPOINT_DIR, MODEL_DIR, TRAIN_CONFIG_FILE
from training.evaluation.evaluate import EvalModel, load_for_eval
from training.train.config import ConfigError, RunConfig, load_config
from training.train.trainer import train

# CI-sized training: a few dozen samples, one epoch per stage (the variants still run every
# code path of the full benchmark: both stages, LoRA, captions, Viterbi).
QUICK_OVERRIDES = ("data.train_samples=48", "data.eval_samples=24", "train.stage1.epochs=1",
                   "train.stage2.epochs=1", "train.batch_size=16")

# The paper's ablations (Tables 4-6) as config overrides of the full model, and the two additions
# of ours that the paper does not have: the per-location change tokens goal - start and the
# built-in LLM's pretraining on the training plans.
VARIANTS: dict[str, tuple[str, ...]] = {
    "full": (),
    "no-mim-llm": ("variant.use_mim=false", "variant.use_llm=false"),
    "no-llm": ("variant.use_llm=false",),
    "no-mim": ("variant.use_mim=false",),
    "frozen-llm": ("variant.llm_trainable=false",),
    "one-stage": ("train.stages=[2]",),
    "llm-only": ("variant.planning=llm_only",),
    "step-only": ("variant.planning=step_only",),
    "no-state-change": ("model.visual.state_change=false",),
    "no-llm-pretrain": ("model.llm.builtin.pretrain_steps=0",),
}
VARIANT_TITLES = {"full": "Full (fused, progressive)", "no-mim-llm": "w/o MIM/LLM", "no-llm": "w/o LLM",
                  "no-mim": "w/o MIM", "frozen-llm": "Frozen LLM", "one-stage": "One-stage",
                  "llm-only": "LLM only", "step-only": "Step only",
                  "no-state-change": "w/o state-change tokens", "no-llm-pretrain": "w/o LLM pretraining"}
TRAIN_RECORD = "bench-train.json"  # how long the run took to train, written when it trains here


def add_set_argument(parser) -> None:
    """`--set KEY=VALUE` (repeatable): config overrides on top of the preset (and of --quick's)."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override the training preset, e.g. --set data.train_samples=600 (as in planllm train)")


def seed_overrides(seed: int) -> list[str]:
    """A benchmark seed sets the training seed and the data seed (docs/evaluation.md, "Seeds"):
    on the tabletop world the data seed draws every split's episodes, on the benchmark datasets
    the validation carve and any training subset."""
    return [f"train.seed={seed}", f"data.seed={seed}"]


def run_directory(work_dir: Path, quick: bool, dataset: str, horizon: int, variant: str, seed: int) -> Path:
    """Where one benchmark training run lives (shared by the quality and open-vocabulary benchmarks)."""
    return work_dir / ("quick" if quick else "full") / f"{dataset}-T{horizon}" / f"{variant}-seed{seed}"


def run_config(config_name: str, overrides: list[str]) -> RunConfig:
    """The preset with the benchmark's overrides (progress bars off: logs stay readable)."""
    return load_config(config_name, [*overrides, "train.progress=false"])


def is_trained(run_dir: Path) -> bool:
    return (run_dir / MODEL_DIR / TRAIN_CONFIG_FILE).is_file()


def train_timed(config: RunConfig, run_dir: Path, jobs: int = 1) -> dict:
    """Train `config` into `run_dir` (resuming a checkpoint there) and record the time it took
    in RUN/bench-train.json: wall and CPU seconds of this process, how many runs trained at once
    (`jobs`), its torch threads, and whether it resumed (then the seconds cover only the part
    after resuming)."""
    resumed = (run_dir / CHECKPOINT_DIR).exists()
    wall, cpu = time.perf_counter(), time.process_time()
    train(config, run_dir, resume=resumed)
    record = {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu, "jobs": jobs,
              "threads": torch.get_num_threads(), "resumed": resumed}
    tmp = run_dir / (TRAIN_RECORD + ".tmp")
    tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
    os.replace(tmp, run_dir / TRAIN_RECORD)
    return record


def train_record(run_dir: Path) -> dict | None:
    """The run's RUN/bench-train.json, or None for a run trained elsewhere (its time is unknown)."""
    path = run_dir / TRAIN_RECORD
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def check_config(loaded: EvalModel, config: RunConfig, run_dir: Path) -> EvalModel:
    if loaded.config.to_dict() != config.to_dict():
        raise ConfigError(f"{run_dir} holds a model trained with another config (the preset or --set values "
                          f"changed): remove it or choose another --work-dir")
    return loaded


def trained_model(config: RunConfig, run_dir: Path) -> EvalModel:
    """Train `config` into `run_dir` (or reuse / resume what is there) and load it for evaluation."""
    if not is_trained(run_dir):
        train_timed(config, run_dir)
    return check_config(load_for_eval(run_dir), config, run_dir)


def _one_thread() -> None:
    torch.set_num_threads(1)


Phase = tuple[Callable, Sequence[tuple], str]  # (work, items, progress bar label)


def in_processes(jobs: int, phases: Sequence[Phase]) -> list[list]:
    """For each phase in turn, `work(*item)` for every item, up to `jobs` at once on one pool of
    processes (spawned: fresh interpreters, no forked torch thread pool), each with one torch
    thread; each phase's results in item order. The first failure cancels what has not started
    and is raised. jobs=1 runs everything here, one after the other, with this process's torch
    threads."""
    if jobs == 1:
        return [[work(*item) for item in tqdm(items, desc=desc, unit="item")] for work, items, desc in phases]
    largest = max((len(items) for _, items, _ in phases), default=0)
    if largest == 0:
        return [[] for _ in phases]
    results = []
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(jobs, largest), mp_context=context, initializer=_one_thread) as pool:
        for work, items, desc in phases:
            futures = [pool.submit(work, *item) for item in items]
            with tqdm(total=len(futures), desc=desc, unit="item") as bar:
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                    bar.update(len(done))
                    failed = next((f for f in done if f.exception() is not None), None)
                    if failed is not None:
                        pool.shutdown(wait=True, cancel_futures=True)
                        raise failed.exception()
            results.append([f.result() for f in futures])
    return results
