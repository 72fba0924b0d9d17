"""`planllm eval --checkpoint DIR [--split test|val|novel|paraphrase] [--decode viterbi|argmax|grounded]
[--backend torch|onnxruntime|tensorrt] [--card] [--json]`.

DIR is a run directory from `planllm train` (its model/ is used) or a model folder (trained or
exported). The dataset comes from the config saved with the model; `--set data.KEY=VALUE` points
it elsewhere (e.g. another features directory). Prints closed-set and open-vocabulary SR / mAcc
/ mIoU, computed by the inference pipeline the robot runs; `--backend onnxruntime` scores an
exported folder's ONNX graphs (int8 included), and `--card` records the result in its model card.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from planllm_ros.model.config import CLOSED_SET_METHODS
from training.train.config import ConfigError, apply_override, from_tree


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="run directory or model directory written by planllm train")
    parser.add_argument("--split", default="test", help="test (default), val, or for tabletop also novel / paraphrase")
    parser.add_argument("--decode", choices=CLOSED_SET_METHODS, default=None,
                        help="closed-set decoding (default: the folder's own, its decoding.method; viterbi uses the "
                             "train transition matrix, grounded also the state head and step-effect model)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="data.KEY=VALUE",
                        help="change the data section of the saved config, e.g. --set data.eval_samples=200")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backend", choices=("torch", "onnxruntime", "tensorrt"), default="torch",
                        help="what runs the graphs: the model's torch modules, or an exported folder's ONNX graphs")
    parser.add_argument("--card", action="store_true",
                        help="record the metrics in the exported folder's model card (under the split name, plus the "
                             "backend when it is not torch and 'images' when the observations are images)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from planllm_ros.export.model_card import ModelCardError, add_metrics
    from planllm_ros.runtime.errors import PlannerError
    from training.datasets.base import DatasetError
    from training.evaluation.evaluate import evaluate, format_table, load_for_eval
    from training.train.checkpoint import CheckpointError
    from training.train.splits import load_split

    try:
        loaded = load_for_eval(args.checkpoint, args.device, args.backend)
        if args.overrides:
            tree = loaded.config.to_dict()
            for assignment in args.overrides:
                if not assignment.startswith("data."):
                    raise ConfigError(f"--set {assignment!r}: eval only changes data.* keys")
                apply_override(tree, assignment)
            loaded = dataclasses.replace(loaded, config=from_tree(tree, "--set"))
        dataset = load_split(loaded.config.data, args.split, loaded.config.visual())
        result = {**evaluate(loaded, dataset, loaded.policy(method=args.decode), args.batch_size),
                  "backend": args.backend, "observation": dataset.observation}
        if args.card:
            name = " ".join([args.split] + [v for v in (args.backend, dataset.observation) if v not in ("torch", "features")])
            add_metrics(loaded.path, name, {k: result[k] for k in ("split", "samples", "decode", "backend", "observation",
                                                                   "closed", "open")})
    except (ConfigError, CheckpointError, DatasetError, PlannerError, ModelCardError) as error:
        print(f"planllm eval: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=1) if args.json else format_table(result))
    return 0
