"""`planllm data episodes ACTION`: your own annotated recordings as a training dataset.

    planllm data episodes validate SOURCE                       check a source folder, list its episodes
    planllm data episodes preview SOURCE --out sheet.png        each step's first and last frame, to check the times
    planllm data episodes import SOURCE --out data/episodes     features from the config's backbone -> dataset
    planllm data episodes stats data/episodes                   samples per split, and the nearest-neighbour baseline

SOURCE is the folder training/episodes/layout.py describes (recordings, `<episode>.steps.csv`,
labels.txt, optional episodes.csv and descriptions.json); `planllm ros record --steps-from`
writes one from the tabletop demo source. Every fault is reported with its file and line, and
the import writes nothing unless every episode passes.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from training.datasets.base import DatasetError
from training.episodes.features import CONTEXT_S

DEFAULT_CONFIG = "episodes-tiny"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    recording = argparse.ArgumentParser(add_help=False)
    recording.add_argument("source", type=Path, help="source folder (recordings, <episode>.steps.csv, labels.txt)")
    recording.add_argument("--image-topic", default=None,
                           help="the camera topic of rosbag2 recordings (default: their only image topic)")
    recording.add_argument("--context", type=float, default=CONTEXT_S, metavar="S",
                           help=f"a step's start or end state is the mean of the frames within S seconds of it "
                                f"(default {CONTEXT_S})")
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument("--config", default=DEFAULT_CONFIG,
                        help=f"training config whose model.visual backbone makes the features (default {DEFAULT_CONFIG})")
    config.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, as `planllm train --set`")
    actions.add_parser("validate", parents=[recording], help="check a source folder and list its episodes")
    preview = actions.add_parser("preview", parents=[recording], help="contact sheet of one episode's steps")
    preview.add_argument("--episode", default=None, help="episode name (default: the first)")
    preview.add_argument("--out", type=Path, required=True, help="PNG file to write")
    imported = actions.add_parser("import", parents=[recording, config],
                                  help="compute the episodes' features and write a dataset")
    imported.add_argument("--out", type=Path, required=True, help="dataset folder to write (data.root of the config)")
    imported.add_argument("--cache-dir", type=Path, default=None,
                          help="feature cache (default $PLANLLM_CACHE/episodes or ~/.cache/planllm_ros/episodes)")
    imported.add_argument("--overwrite", action="store_true", help="replace an existing dataset at --out")
    stats = actions.add_parser("stats", parents=[config], help="samples per split and the nearest-neighbour baseline")
    stats.add_argument("dataset", type=Path, help="a dataset folder written by `planllm data episodes import`")
    stats.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def run(args: argparse.Namespace) -> int:
    from training.train.config import ConfigError

    try:
        return {"validate": _validate, "preview": _preview, "import": _import, "stats": _stats}[args.action](args)
    except (DatasetError, ConfigError) as err:
        print(f"planllm data episodes {args.action}: error: {err}", file=sys.stderr)
        return 2


def _validate(args: argparse.Namespace) -> int:
    from training.episodes.dataset import check_source

    def show(spec, recording) -> None:
        print(f"  {spec.name:<24} {spec.split:<5} {spec.task:<24} {len(spec.steps):>3} steps  "
              f"{len(recording.times):>6} frames  {recording.times[-1]:8.1f} s  "
              f"{recording.size[1]}x{recording.size[0]}  {recording.kind}{' ' + recording.topic if recording.topic else ''}")

    print(f"{args.source}:")
    checked = check_source(args.source, args.image_topic, args.context, on_episode=show)
    for err in checked.errors:
        print(f"error: {err}", file=sys.stderr)
    held_out = sum(spec.split == "test" for spec, _ in checked.episodes)
    print(f"{len(checked.episodes)} episodes valid ({held_out} held out), {len(checked.errors)} with errors; "
          f"{len(checked.source.labels)} labels in the vocabulary")
    return 1 if checked.errors else 0


def _import(args: argparse.Namespace) -> int:
    from training.episodes.dataset import import_dataset
    from training.episodes.features import backbone_arguments
    from training.train.config import load_config

    visual = load_config(args.config, args.overrides).visual()
    meta = import_dataset(args.source, args.out, backbone_arguments(visual), args.image_topic, args.context,
                          args.cache_dir, args.overwrite)
    episodes = meta["episodes"]
    held_out = sum(e["split"] == "test" for e in episodes)
    settings = ", ".join(f"{k} {v}" for k, v in meta["backbone"]["settings"].items())
    print(f"imported {len(episodes)} episodes ({held_out} held out), {sum(len(e['steps']) for e in episodes)} steps "
          f"into {args.out}; features: {meta['backbone']['backbone']} ({settings}), "
          f"{tuple(meta['feature_shape'])} float16 per state ({meta['from_cache']} of {len(episodes)} episodes from "
          f"the feature cache)")
    return 0


def _stats(args: argparse.Namespace) -> int:
    from training.episodes.baseline import nearest_neighbour_metrics
    from training.episodes.dataset import read_meta
    from training.train.config import load_config
    from training.train.splits import load_split

    config = load_config(args.config, args.overrides)
    config.data.root = str(args.dataset)
    meta = read_meta(args.dataset)
    declared = {"test"} if any(e["split"] == "test" for e in meta["episodes"]) else set()
    splits = {name: load_split(config.data, name, config.visual()) for name in ("train", "val", *declared)}
    result = {"dataset": str(args.dataset), "horizon": config.data.horizon, "backbone": meta["backbone"],
              "feature_shape": meta["feature_shape"], "labels": splits["train"].vocab.num_steps,
              "tasks": list(splits["train"].vocab.tasks), "splits": {}}
    for name, dataset in splits.items():
        baseline = nearest_neighbour_metrics(splits["train"], dataset) if name != "train" else None
        result["splits"][name] = {"episodes": len({s.video for s in dataset}), "samples": len(dataset),
                                  "steps_used": len({int(i) for s in dataset for i in s.steps}),
                                  "nearest_neighbour": baseline}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{args.dataset}  T={result['horizon']}  {result['labels']} labels, {len(result['tasks'])} tasks, "
          f"features {meta['backbone']['backbone']} {tuple(meta['feature_shape'])}")
    print("split  episodes  samples  steps used  nearest-neighbour SR / mAcc (trained on train)")
    for name, row in result["splits"].items():
        baseline = row["nearest_neighbour"]
        score = f"{baseline['sr']:.1f} / {baseline['macc']:.1f}" if baseline else "-"
        print(f"{name:<5}  {row['episodes']:>8}  {row['samples']:>7}  {row['steps_used']:>10}  {score}")
    return 0


def _preview(args: argparse.Namespace) -> int:
    from training.episodes.dataset import check_source
    from training.episodes.preview import step_sheet

    checked = check_source(args.source, args.image_topic, args.context)
    chosen = [(s, r) for s, r in checked.episodes if args.episode in (None, s.name)]
    if not chosen:
        problems = [str(e) for e in checked.errors if args.episode is None or args.episode in str(e)]
        raise DatasetError("\n".join(problems) or f"{args.source}: no episode {args.episode!r}")
    spec, recording = chosen[0]
    step_sheet(spec, recording).save(args.out)
    print(f"wrote {args.out}: {spec.name} ({spec.task}), {len(spec.steps)} steps, first and last frame of each")
    return 0
