"""A label list given to the running node (labels_file at run time), in real processes over DDS:
a list holding half the model's steps among labels of other tasks names those steps, says
unknown for the others, and is reported once (log line and diagnostics); a bad file is refused
in one line and the previous list stays in force."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import wait_for
from node_helpers import model_dir, picture, planner_node, plans_with, ros, sending  # noqa: F401 (fixtures)
from planllm_ros.ros.image_conv import rgb_to_image
from runtime_helpers import LABELS

pytestmark = pytest.mark.ros

DISTRACTORS = ["change the car's oil", "tie a bow tie", "repot the orchid", "replace the bike chain"]


def plan_tagged(client, frame_id: str) -> dict:
    frame = rgb_to_image(picture())
    frame.header.frame_id = frame_id
    assert sending(lambda: client.send_frame(frame) or client.plan_now(), lambda: bool(plans_with(client, frame_id)))
    return [p for p in plans_with(client, frame_id) if not p["captions_pending"]][-1]


def test_a_runtime_label_list_with_distractors_and_a_bad_file(ros: dict[str, str], tmp_path: Path,
                                                               model_dir: Path) -> None:
    half = LABELS[::2]
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join([*half, *DISTRACTORS]) + "\n", encoding="utf-8")
    with planner_node(ros, tmp_path, model_dir, "-p", "mode:=on_request") as (process, client):
        client.send_goal(picture())
        assert client.set_parameters(labels_file=str(labels))[0].successful
        plan = plan_tagged(client, "listed")
        expected = [label if label in half else None for label in plan["labels"]]
        assert plan["open_vocab_labels"] == expected
        assert plan["open_vocab_unknown"] == [t for t, label in enumerate(expected) if label is None]
        # the list is reported once: which known steps got no label, how sure the others are
        assert wait_for(lambda: any(d.get("labels_unlabelled_steps") for d in client.snapshot()["diagnostics"]), 30)
        status = [d for d in client.snapshot()["diagnostics"] if d.get("labels_unlabelled_steps")][-1]
        assert status["labels"] == f"{len(half) + len(DISTRACTORS)} from {labels}"
        assert status["labels_unlabelled_steps"] == "; ".join(LABELS[1::2])
        assert all(f"{label} -> {label}" in status["labels_least_sure"] for label in half)
        # bad files: each refused in one line, and plans keep naming steps from the list in force
        bad = {"empty.txt": b"\n# nothing\n", "twice.txt": b"wipe the table\nWipe the table\n",
               "latin1.txt": "r\xe2per le fromage\n".encode("latin-1"), "giant.txt": b"wipe the table, " * 50}
        for name, content in bad.items():
            (tmp_path / name).write_bytes(content)
            (result,) = client.set_parameters(labels_file=str(tmp_path / name))
            assert not result.successful and str(tmp_path / name) in result.reason and "\n" not in result.reason, name
        again = plan_tagged(client, "after_bad_files")
        assert again["open_vocab_labels"] == [label if label in half else None for label in again["labels"]]
    log = (tmp_path / "node.log").read_text()
    reports = [line for line in log.splitlines() if f"labels_file {labels}: " in line and "known steps have a label" in line]
    assert len(reports) == 1, reports
    assert f"{len(half)} of {len(LABELS)} known steps have a label, {len(DISTRACTORS)} labels name none" in reports[0]
