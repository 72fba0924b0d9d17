"""Goals without a horizon: with `horizon` 0 the bundled model (a state head) chooses how many
steps a goal needs, and ~/plan says how sure it is; a nonzero horizon is checked against what the
loaded model can plan. End to end in real processes over DDS."""
from __future__ import annotations

from pathlib import Path

import pytest

from node_helpers import planner_node, plans_with, ros, sending  # noqa: F401 (ros is a fixture)
from planllm_ros.runtime.cli import default_model_dir
from training.tabletop import scenario

pytestmark = pytest.mark.ros

SEED, STEPS = 31, 4  # a goal 4 steps ahead that the bundled model plans exactly, choosing 4 itself


def test_the_model_chooses_the_horizon_and_a_set_one_is_checked(ros: dict[str, str], tmp_path: Path) -> None:
    played = scenario(None, SEED)
    with planner_node(ros, tmp_path, default_model_dir(), "-p", "mode:=on_request") as (_, client):
        client.send_goal(played.frames[STEPS])
        assert sending(lambda: client.send_frame(played.frames[0], frame_id="chosen") or client.plan_now(),
                       lambda: bool(plans_with(client, "chosen")))  # fmt: skip
        plan = plans_with(client, "chosen")[0]
        assert plan["horizon"] == STEPS and plan["step_ids"] == list(played.step_ids[:STEPS])
        probs = plan["horizon_probs"]
        assert len(probs) == 6 and abs(sum(probs) - 1.0) < 1e-3 and max(probs) == probs[STEPS - 1]
        assert plan["horizon_confidence"] == probs[STEPS - 1]

        assert client.set_parameters(horizon=5)[0].successful  # other than the trained T = 3
        assert sending(lambda: client.send_frame(played.frames[0], frame_id="told") or client.plan_now(),
                       lambda: bool(plans_with(client, "told")))  # fmt: skip
        assert plans_with(client, "told")[0]["horizon"] == 5 and len(plans_with(client, "told")[0]["step_ids"]) == 5
        (refused,) = client.set_parameters(horizon=7)
        assert not refused.successful and "plans 1 to 6 steps" in refused.reason
