"""`planllm eval --checkpoint DIR [--split test|val|novel|paraphrase] [--decode viterbi|argmax] [--json]`.

DIR is a run directory from `planllm train` (its model/ is used) or such a model directory. The
dataset comes from the config saved with the model; `--set data.KEY=VALUE` points it elsewhere
(e.g. another features directory). Prints closed-set and open-vocabulary SR / mAcc / mIoU.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from training.config import ConfigError, apply_override, from_tree


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="run directory or model directory written by planllm train")
    parser.add_argument("--split", default="test", help="test (default), val, or for tabletop also novel / paraphrase")
    parser.add_argument("--decode", choices=("viterbi", "argmax"), default="viterbi",
                        help="closed-set decoding (viterbi uses the train transition matrix)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="data.KEY=VALUE",
                        help="change the data section of the saved config, e.g. --set data.eval_samples=200")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from training.checkpoint import CheckpointError
    from training.datasets.base import DatasetError
    from training.evaluate import evaluate, format_table, load_for_eval
    from training.splits import load_split

    try:
        loaded = load_for_eval(args.checkpoint, args.device)
        if args.overrides:
            tree = loaded.config.to_dict()
            for assignment in args.overrides:
                if not assignment.startswith("data."):
                    raise ConfigError(f"--set {assignment!r}: eval only changes data.* keys")
                apply_override(tree, assignment)
            loaded = dataclasses.replace(loaded, config=from_tree(tree, "--set"))
        dataset = load_split(loaded.config.data, args.split, loaded.config.visual())
        result = evaluate(loaded, dataset, args.decode, args.batch_size)
    except (ConfigError, CheckpointError, DatasetError) as error:
        print(f"planllm eval: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=1) if args.json else format_table(result))
    return 0
