"""Progress in continuous mode: the node plans once for a goal, then follows that plan frame by
frame on ~/progress, and plans again only when a frame leaves it. End to end in real processes
over DDS with the bundled model (a state head), fed the states of a played tabletop procedure;
plus the progress marks ~/plan_image writes (plan_text), which need no ROS."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import wait_for
from node_helpers import planner_node, ros, sending  # noqa: F401 (ros is a fixture)
from planllm_ros.model.progress import Progress
from planllm_ros.ros.plan_output import plan_text
from planllm_ros.runtime.cli import default_model_dir
from planllm_ros.runtime.plan import Plan
from planllm_ros.tools.client import PlannerClient
from training.tabletop import scenario

pytestmark = pytest.mark.ros

# The bundled model plans this scenario's first STEPS steps exactly from its start and goal
# images (choosing STEPS itself), and reads each state on the way as that many steps done.
SEED, STEPS = 31, 4
FRAMES_PER_STATE = 2  # progress documents awaited for each state before the next one is shown


def test_plan_text_marks_done_and_next() -> None:
    plan = Plan(horizon=3, step_ids=[4, 7, 2], labels=["fill the kettle", "boil water", "pour"], scores=[0.9] * 3)
    halfway = Progress(done=1, probs=(0.1, 0.8, 0.1, 0.0), left_plan=False)
    assert plan_text(plan, halfway).splitlines() == [
        "[x] 1. fill the kettle", "[ ] 2. boil water  <- next", "[ ] 3. pour",
    ]
    finished = Progress(done=3, probs=(0.0, 0.0, 0.0, 1.0), left_plan=False)
    assert plan_text(plan, finished).splitlines() == ["[x] 1. fill the kettle", "[x] 2. boil water", "[x] 3. pour"]
    assert plan_text(plan) == plan.instructions()  # without progress: the plan as it was made


def _read(client: PlannerClient, frame_id: str) -> list[dict]:
    return [p for p in client.snapshot()["progress"] if p["header"]["frame_id"] == frame_id]


def test_progress_follows_a_played_procedure_and_an_undone_step_replans(ros: dict[str, str], tmp_path: Path) -> None:
    played = scenario(None, SEED)
    with planner_node(ros, tmp_path, default_model_dir(), "-p", "mode:=continuous", "-p", "max_rate_hz:=5.0",
                      "-p", "publish_image:=true") as (_, client):  # fmt: skip
        client.send_goal(played.frames[STEPS], frame_id="goal")
        for k in range(STEPS + 1):  # the robot does the procedure: each state until the node has read it
            assert sending(lambda k=k: client.send_frame(played.frames[k], frame_id=f"state-{k}"),
                           lambda k=k: len(_read(client, f"state-{k}")) >= FRAMES_PER_STATE), k  # fmt: skip
        (plan,) = client.snapshot()["plans"]  # one plan for the goal, then only progress
        assert plan["trigger"] == "continuous" and plan["header"]["frame_id"] == "state-0"
        assert plan["horizon"] == STEPS and plan["step_ids"] == list(played.step_ids[:STEPS])
        for k in range(STEPS + 1):
            for document in _read(client, f"state-{k}"):
                assert document["seq"] == plan["seq"] and document["labels"] == plan["labels"]
                assert document["done"] == k and not document["left_plan"], document
                assert document["next_label"] == (played.labels[k] if k < STEPS else None)
                assert document["finished"] == (k == STEPS) and len(document["probs"]) == STEPS + 1
                assert document["confidence"] == document["probs"][k] >= 0.5
        # ~/plan_image was drawn again each time a step was done
        assert wait_for(lambda: {m.header.frame_id for m in client.snapshot()["plan_images"]}
                        >= {f"state-{k}" for k in range(STEPS + 1)}, 15)  # fmt: skip

        # the first step undone: the frame leaves the plan, and a new plan is made from it
        assert sending(lambda: client.send_frame(played.frames[0], frame_id="undone"),
                       lambda: any(p["trigger"] == "left_plan" for p in client.snapshot()["plans"]))  # fmt: skip
        left = _read(client, "undone")[0]
        assert left["seq"] == plan["seq"] and left["left_plan"] and "undone" in left["reason"], left
        replan = client.snapshot()["plans"][-1]
        assert replan["seq"] > plan["seq"] and replan["header"]["frame_id"] == "undone"
        assert replan["goal_header"] == plan["goal_header"]  # the same goal, from where the robot stands
        assert wait_for(lambda: any(d["seq"] == replan["seq"] and d["done"] == 0 for d in _read(client, "undone")), 15)
        assert len(client.snapshot()["plans"]) == 2
