"""`planllm states --model DIR --out DIR`: fit a state head and step-effect model onto a trained model.

The head learns which state sentences (the step descriptions' before/after sentences) hold in
an image; the step-effect model says what each step needs and changes. Grounded decoding plans
through both, which lets the model plan tasks it was never trained on
(training.train.state_head).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, type=Path,
                        help="a trained model folder or `planllm train` run directory (with its train_config.json)")
    parser.add_argument("--out", required=True, type=Path, help="where to write the model folder with the state head")
    parser.add_argument("--epochs", type=int, default=12, help="passes over the training split (default 12)")
    parser.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (default 1e-3)")
    parser.add_argument("--batch-size", type=int, default=64, help="windows per batch (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="initialisation and order seed (default 0)")
    parser.add_argument("--train-samples", type=int, default=None,
                        help="fit on the first N training samples of the model's own training stream "
                             "(default: as many as the model trained on)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--horizon-only", action="store_true",
                        help="keep the folder's state head and refit only how it chooses the number of steps when a "
                             "caller gives none (decoding.horizon), on val windows of every length")
    parser.add_argument("--horizon-samples", type=int, default=200,
                        help="val windows per number of steps for that fit (default 200)")


def run(args: argparse.Namespace) -> int:
    import torch

    from planllm_ros.model.config import ConfigError as ModelConfigError
    from planllm_ros.model.folder import ModelFolderError
    from training.datasets.base import DatasetError
    from training.train.config import ConfigError
    from training.train.state_head import fit_horizon_choice, fit_state_head, summary

    if args.epochs < 1 or args.batch_size < 1:
        print("planllm states: --epochs and --batch-size must be >= 1", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if args.horizon_only:
            out, accuracy = fit_horizon_choice(args.model, args.out, args.horizon_samples)
            print(f"val horizon accuracy when the model chooses the number of steps: {accuracy:.1f} %")
            print(f"model written to {out}; exported graphs are not carried over: run `planllm export` on it")
            return 0
        out, report = fit_state_head(args.model, args.out, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                                     seed=args.seed, train_samples=args.train_samples)
    except (ModelFolderError, ConfigError, ModelConfigError, DatasetError) as error:
        print(f"planllm states: {error}", file=sys.stderr)
        return 2
    print(summary(report))
    print(f"model written to {out}")
    return 0
