"""Training and scoring runs for the quality and open-vocabulary benchmarks.

A benchmark run is an ordinary `planllm train` run (training.trainer.train) in a directory of
its own; a directory that already holds a finished model is reused, and one holding a
checkpoint is resumed, so an interrupted full benchmark continues where it stopped. Scoring
uses the trainer's own evaluation path (training.evaluate): only start and goal reach the model.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from planllm_ros.model.folder import TRAIN_CONFIG_FILE
from training.config import ConfigError, RunConfig, load_config
from training.datasets.base import ProcedureDataset
from training.evaluate import EvalModel, load_for_eval, predict_split, step_ids
from training.metrics import procedure_metrics
from training.trainer import CHECKPOINT_DIR, MODEL_DIR, train

# CI-sized training: a few dozen samples, one epoch per stage (the variants still run every
# code path of the full benchmark: both stages, LoRA, captions, Viterbi).
QUICK_OVERRIDES = ("data.train_samples=48", "data.eval_samples=24", "train.stage1.epochs=1",
                   "train.stage2.epochs=1", "train.batch_size=16")

# The paper's ablations (Tables 4-6) as config overrides of the full model.
VARIANTS: dict[str, tuple[str, ...]] = {
    "full": (),
    "no-mim-llm": ("variant.use_mim=false", "variant.use_llm=false"),
    "no-llm": ("variant.use_llm=false",),
    "no-mim": ("variant.use_mim=false",),
    "frozen-llm": ("variant.llm_trainable=false",),
    "one-stage": ("train.stages=[2]",),
    "llm-only": ("variant.planning=llm_only",),
    "step-only": ("variant.planning=step_only",),
}
VARIANT_TITLES = {"full": "Full (fused, progressive)", "no-mim-llm": "w/o MIM/LLM", "no-llm": "w/o LLM",
                  "no-mim": "w/o MIM", "frozen-llm": "Frozen LLM", "one-stage": "One-stage",
                  "llm-only": "LLM only", "step-only": "Step only"}


def add_set_argument(parser) -> None:
    """`--set KEY=VALUE` (repeatable): config overrides on top of the preset (and of --quick's)."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override the training preset, e.g. --set data.train_samples=600 (as in planllm train)")


def run_directory(work_dir: Path, quick: bool, dataset: str, horizon: int, variant: str, seed: int) -> Path:
    """Where one benchmark training run lives (shared by the quality and open-vocabulary benchmarks)."""
    return work_dir / ("quick" if quick else "full") / f"{dataset}-T{horizon}" / f"{variant}-seed{seed}"


def run_config(config_name: str, overrides: list[str]) -> RunConfig:
    """The preset with the benchmark's overrides (progress bars off: logs stay readable)."""
    return load_config(config_name, [*overrides, "train.progress=false"])


def trained_model(config: RunConfig, run_dir: Path) -> EvalModel:
    """Train `config` into `run_dir` (or reuse / resume what is there) and load it for evaluation."""
    if not (run_dir / MODEL_DIR / TRAIN_CONFIG_FILE).is_file():
        train(config, run_dir, resume=(run_dir / CHECKPOINT_DIR).exists())
    loaded = load_for_eval(run_dir)
    if loaded.config.to_dict() != config.to_dict():
        raise ConfigError(f"{run_dir} holds a model trained with another config (the preset or --set values "
                          f"changed): remove it or choose another --work-dir")
    return loaded


def closed_set_metrics(loaded: EvalModel, dataset: ProcedureDataset, decode: str) -> dict[str, float]:
    """SR / mAcc / both mIoU forms (percent) of the model's closed-set plans on `dataset`."""
    pred = step_ids(predict_split(loaded, dataset, decode, captions=False))
    return procedure_metrics(pred, np.stack(dataset.sequences()).astype(np.int64))
