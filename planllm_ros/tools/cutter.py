"""A recording of `planllm ros demo-source --play episodes`, cut into a source folder.

The demo source announces each episode it played on its truth topic (`"kind": "episode"`:
task, first and last frame stamps, every step's start and end stamp). `planllm ros record
--steps-from TOPIC` records as usual, then calls `cut_recording`, which writes, per episode, a
bag of the messages that belong to it (by header stamp where the message has one, else by
recording time) and its `<episode>.steps.csv`, plus labels.txt (every label seen, sorted) and
episodes.csv (task per episode; the last `held_out` episodes split=test): what `planllm data
episodes import` reads. The goal truth messages stay in each bag, so replaying a held-out
bag to the node can be scored; the episode announcements do not.
It is a tool, not part of the trainer: it reads the demo source's truth topic and writes bags.
"""
from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rosbags.rosbag2 import Reader, Writer

from planllm_ros.tools.bag import BAG_VERSION, STORAGES
from training.datasets.base import DatasetError
from training.episodes.frames import typestore
from training.episodes.layout import LABELS_FILE, MANIFEST_FILE, STEPS_SUFFIX


@dataclass
class Episode:
    """One announced episode: its name, task, camera topic, time span and steps (ns stamps)."""

    name: str
    task: str
    camera: str
    start: int
    end: int
    steps: list[tuple[str, int, int]]


def _ns(stamp: dict[str, int]) -> int:
    return int(stamp["sec"]) * 10**9 + int(stamp["nanosec"])


def _announced(bag: Path, truth_topic: str) -> list[Episode]:
    types = typestore()
    episodes = []
    with Reader(bag) as reader:
        connections = [c for c in reader.connections if c.topic == truth_topic]
        if not connections:
            raise DatasetError(f"{bag}: no messages on {truth_topic} (topics: "
                               f"{', '.join(sorted({c.topic for c in reader.connections}))})")
        for connection, _, raw in reader.messages(connections=connections):
            document = json.loads(types.deserialize_cdr(raw, connection.msgtype).data)
            if document.get("kind") != "episode":
                continue
            steps = [(s["label"], _ns(s["start"]), _ns(s["end"])) for s in document["steps"]]
            episodes.append(Episode(document["episode"], document["task"], document["camera_topic"],
                                    _ns(document["start"]), _ns(document["end"]), steps))
    if not episodes:
        raise DatasetError(f"{bag}: {truth_topic} announces no episode: was the source played with --play episodes, "
                           f"and did the recording last until its first episode ended?")
    return episodes


def _message_time(types: Any, connection: Any, logtime: int, raw: bytes, truth_topic: str) -> int | None:
    """A message's time: its header stamp, a goal truth's goal stamp, else its recording time;
    None for the episode announcements, which stay out of the episode bags."""
    if connection.topic == truth_topic:
        document = json.loads(types.deserialize_cdr(raw, connection.msgtype).data)
        return _ns(document["goal_stamp"]) if "goal_stamp" in document else None
    try:
        message = types.deserialize_cdr(raw, connection.msgtype)
    except Exception:  # a type this typestore does not know: recording time
        return logtime
    stamp = getattr(getattr(message, "header", None), "stamp", None)
    return stamp.sec * 10**9 + stamp.nanosec if stamp is not None else logtime


def cut_recording(bag: Path, out: Path, truth_topic: str, held_out: int = 0, storage: str = "sqlite3") -> dict[str, Any]:
    """Write the source folder `out` from a demo recording `bag`. An episode is skipped (and
    listed) when the recording lacks its first frame or a frame at one of its step boundaries
    (the source marks each boundary with a frame): it began before the recording, or frames were lost."""
    types = typestore()
    announced = _announced(bag, truth_topic)
    out.mkdir(parents=True, exist_ok=True)
    writers: dict[str, Any] = {}
    connections: dict[tuple[str, int], Any] = {}
    frames: dict[str, set[int]] = {e.name: set() for e in announced}  # camera stamps recorded per episode
    try:
        with Reader(bag) as reader:
            for connection, logtime, raw in reader.messages():
                when = _message_time(types, connection, logtime, raw, truth_topic)
                episode = next((e for e in announced if when is not None and e.start <= when <= e.end), None)
                if episode is None:
                    continue
                if episode.name not in writers:
                    writers[episode.name] = Writer(out / episode.name, version=BAG_VERSION,
                                                   storage_plugin=STORAGES[storage])
                    writers[episode.name].open()
                key = (episode.name, connection.id)
                if key not in connections:
                    connections[key] = writers[episode.name].add_connection(connection.topic, connection.msgtype,
                                                                           typestore=types)
                writers[episode.name].write(connections[key], logtime, raw)
                if connection.topic == episode.camera:
                    frames[episode.name].add(when)
    finally:
        for writer in writers.values():
            writer.close()
    kept, skipped = [], []
    for episode in announced:
        boundaries = {episode.start} | {t for _, start, end in episode.steps for t in (start, end)}
        if not boundaries <= frames[episode.name]:  # begun before the recording, or frames lost
            skipped.append(episode.name)
            shutil.rmtree(out / episode.name, ignore_errors=True)
            continue
        with (out / f"{episode.name}{STEPS_SUFFIX}").open("w", newline="", encoding="utf-8") as f:
            rows = csv.writer(f)
            rows.writerow(["start_s", "end_s", "label"])
            for label, start, end in episode.steps:
                rows.writerow([f"{(start - episode.start) / 1e9:.3f}", f"{(end - episode.start) / 1e9:.3f}", label])
        kept.append(episode)
    if not kept:
        raise DatasetError(f"{bag}: no episode was recorded whole (skipped: {', '.join(skipped)})")
    labels = sorted({label for e in kept for label, _, _ in e.steps})
    (out / LABELS_FILE).write_text("\n".join(labels) + "\n", encoding="utf-8")
    with (out / MANIFEST_FILE).open("w", newline="", encoding="utf-8") as f:
        rows = csv.writer(f)
        rows.writerow(["episode", "task", "split"])
        for i, episode in enumerate(kept):
            rows.writerow([episode.name, episode.task, "test" if i >= len(kept) - held_out else "train"])
    return {"episodes": len(kept), "held_out": min(held_out, len(kept)), "skipped": skipped, "labels": len(labels),
            "camera_topic": kept[0].camera}
