"""Step ids first, words after, in the real node over DDS: a plan's ~/plan document goes out as
soon as its step ids are decoded (captions_pending) and again, same seq, with the captions;
~/plan_now_steps plans without captions; a model without captions publishes once; the node's
`threads` launch argument reaches the planner it loads (and the one a live model_dir loads)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from std_srvs.srv import Trigger

from conftest import wait_for
from node_helpers import (  # noqa: F401 (model_dir and ros are fixtures)
    latest, model_dir, picture, planner_node, ros, sending,
)
from planllm_ros.runtime.threads import thread_settings
from runtime_helpers import save_tiny_model, tiny_config

pytestmark = pytest.mark.ros
THREADS = 2  # not the default (1), so the diagnostics show the parameter was taken


def _with_seq(documents: list[dict], seq: int) -> list[dict]:
    return [d for d in documents if d["seq"] == seq]


def _queued_seq(response: Trigger.Response) -> int:
    """The seq of the plan a ~/plan_now or ~/plan_now_steps answer queued."""
    assert response.success, response.message
    return int(re.search(r"#(\d+) queued", response.message).group(1))


def test_step_ids_go_out_before_their_captions(ros: dict[str, str], tmp_path: Path, model_dir: Path) -> None:
    no_captions = tiny_config(planning="step_only")
    no_captions.variant.use_llm = False
    plain_model = save_tiny_model(tmp_path / "no_llm", no_captions)
    with planner_node(ros, tmp_path, model_dir, threads=str(THREADS)) as (_, client):
        client.send_goal(picture())
        assert sending(lambda: client.send_frame(picture(), frame_id="cam"), lambda: bool(client.snapshot()["plans"]))
        plan = client.snapshot()["plans"][0]
        (early,) = _with_seq(client.snapshot()["steps"], plan["seq"])
        assert early["captions_pending"] and not plan["captions_pending"]
        assert early["captions"] == [] and len(plan["captions"]) == plan["horizon"] == 3
        for key in ("step_ids", "labels", "scores", "header", "goal_header", "trigger", "start_state", "goal_state"):
            assert early[key] == plan[key], key
        assert "captions" not in early["latency_ms"] and "captions" in plan["latency_ms"]
        assert early["latency_ms"]["node_total"] <= plan["latency_ms"]["node_total"]
        # instructions come from the final plan only: one per plan
        assert wait_for(lambda: len(client.snapshot()["instructions"]) == 1, 15)

        threads = thread_settings(THREADS).describe()
        assert wait_for(lambda: latest(client).get("threads") == threads, 15), latest(client)

        response = client.plan_now_steps()
        assert "step ids only" in response.message, response.message
        seq = _queued_seq(response)
        assert wait_for(lambda: bool(_with_seq(client.snapshot()["plans"], seq)), 60)
        (ids_only,) = _with_seq(client.snapshot()["plans"], seq)
        assert ids_only["trigger"] == "service" and ids_only["captions"] == [] and not ids_only["captions_pending"]
        assert len(ids_only["step_ids"]) == 3 and "captions" not in ids_only["latency_ms"]
        assert _with_seq(client.snapshot()["steps"], seq) == []  # ~/plan is ordered: an early one came first

        # a model without captions, swapped in live: each plan is published once, complete
        assert client.set_parameters(model_dir=str(plain_model))[0].successful
        assert wait_for(lambda: latest(client).get("model") == "no_llm", 90), latest(client)
        assert latest(client)["threads"] == threads
        seq = _queued_seq(client.plan_now())
        assert wait_for(lambda: bool(_with_seq(client.snapshot()["plans"], seq)), 60)
        (single,) = _with_seq(client.snapshot()["plans"], seq)
        assert single["captions"] == [] and not single["captions_pending"] and len(single["step_ids"]) == 3
        assert _with_seq(client.snapshot()["steps"], seq) == []
        assert latest(client)["errors"] == "0", latest(client)["last_error"]
