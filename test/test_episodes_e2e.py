"""Your own procedures end to end, on real processes: the tabletop demo source plays whole
episodes, `planllm ros record --steps-from` records them and turns the truth topic into steps
files, then `planllm data episodes import`, `planllm train` (episodes-tiny, fewer epochs),
`planllm export`, and the planner node (started as the launch file says) plans while
`planllm ros replay` plays the held-out recordings. Its plans, scored against the recorded
truth, must beat the nearest-neighbour planner on the same training data.

The recording is quick on purpose (each state held 0.2 s at 15 fps, so `--context 0.1`); the
README walks the same path at a human pace.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from std_msgs.msg import String

from conftest import wait_for
from planllm_ros.tools.client import PlannerClient
from planllm_ros.tools.demo_source import TRUTH_QOS
from planllm_ros.tools.processes import start, start_planner, stop
from training.episodes.baseline import nearest_neighbour_metrics
from training.episodes.frames import typestore
from training.train.config import load_config
from training.train.splits import load_split

pytestmark = [pytest.mark.slow, pytest.mark.ros]

TASKS = "boil an egg,fry an egg,make mashed potatoes"
SCENARIOS, HELD_OUT = 48, 6
SECONDS_PER_STATE, FPS, CONTEXT = 0.2, 15, "0.1"  # 3 frames a state; a boundary's neighbours share its state
TRUTH = "/planllm_demo_source/truth"
TRAIN = ["--set", "train.stage2.epochs=25"]


def planllm(*args: str) -> list[str]:
    return [sys.executable, "-m", "planllm_ros.cli", *args]


def run(env: dict[str, str], *args: str, timeout: float) -> str:
    result = subprocess.run(planllm(*args), env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"planllm {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def recorded_goals(bags: list[Path]) -> dict[tuple[int, int], list[str]]:
    """goal stamp -> true steps, from the goal truth messages inside the held-out bags."""
    from rosbags.rosbag2 import Reader

    types = typestore()
    goals = {}
    for bag in bags:
        with Reader(bag) as reader:
            connections = [c for c in reader.connections if c.topic == TRUTH]
            for connection, _, raw in reader.messages(connections=connections):
                document = json.loads(types.deserialize_cdr(raw, connection.msgtype).data)
                goals[(document["goal_stamp"]["sec"], document["goal_stamp"]["nanosec"])] = document["steps"]
    return goals


def test_record_import_train_export_and_plan_held_out_recordings(ros_env: dict[str, str], tmp_path: Path) -> None:
    began = time.monotonic()
    source_dir, dataset, run_dir, model = (tmp_path / n for n in ("source", "dataset", "run", "model"))
    env = {**ros_env, "OMP_NUM_THREADS": "1", "PLANLLM_CACHE": str(tmp_path / "cache")}
    with open(tmp_path / "demo-source.log", "w") as log:
        source = start(planllm("ros", "demo-source", "--play", "episodes", "--task", TASKS, "--scenarios",
                               str(SCENARIOS), "--seconds-per-state", str(SECONDS_PER_STATE), "--fps", str(FPS),
                               "--wait-for-subscribers", "60"), env, log)
        try:
            out = run(env, "ros", "record", "--out", str(source_dir), "--topics", "/image", "/goal_image",
                      "--steps-from", TRUTH, "--held-out", str(HELD_OUT), "--idle-timeout", "5", timeout=400)
            assert source.wait(30) == 0
        finally:
            stop(source)
    cut = re.search(rf"cut into (\d+) episodes \({HELD_OUT} held out", out)
    assert cut and int(cut[1]) >= SCENARIOS - 2, out  # an episode whose frames the recorder lost is skipped
    episodes = int(cut[1])
    recorded = time.monotonic()

    out = run(env, "data", "episodes", "validate", str(source_dir), "--image-topic", "/image", "--context", CONTEXT,
              timeout=120)
    assert f"{episodes} episodes valid ({HELD_OUT} held out), 0 with errors" in out
    out = run(env, "data", "episodes", "import", str(source_dir), "--out", str(dataset), "--image-topic", "/image",
              "--context", CONTEXT, timeout=300)
    assert f"imported {episodes} episodes ({HELD_OUT} held out)" in out
    out = run(env, "train", "--config", "episodes-tiny", "--set", f"data.root={dataset}", *TRAIN, "--out", str(run_dir),
              timeout=900)
    trained = time.monotonic()
    run(env, "export", "--checkpoint", str(run_dir), "--out", str(model), timeout=600)
    exported = time.monotonic()

    held_out = sorted(line.split(",")[0] for line in (source_dir / "episodes.csv").read_text().splitlines()
                      if line.endswith(",test"))
    bags = [source_dir / name for name in held_out]
    truth = recorded_goals(bags)
    config = load_config("episodes-tiny")
    config.data.root = str(dataset)
    train, test = load_split(config.data, "train", config.visual()), load_split(config.data, "test", config.visual())
    assert len(truth) == len(test) > 0  # one goal per held-out window

    rclpy.init()
    client = PlannerClient()
    replayed: list[dict] = []  # the truth as the replay publishes it, beside the plans
    client.node.create_subscription(String, TRUTH, lambda m: replayed.append(json.loads(m.data)), TRUTH_QOS)
    with open(tmp_path / "node.log", "w") as log:
        node = start_planner({"model_dir": str(model)}, env, log)
        try:
            assert wait_for(lambda: any(d.get("state") == "active" for d in client.snapshot()["diagnostics"]), 180), \
                (tmp_path / "node.log").read_text()
            run(env, "ros", "replay", *map(str, bags), "--rate", "0.5", "--wait-for-subscribers", "30", timeout=300)
            wait_for(lambda: len(client.snapshot()["plans"]) >= len(truth) and len(replayed) >= len(truth), 15)
        finally:
            client.close()
            rclpy.shutdown()
            code = stop(node)
    assert code == 0, (tmp_path / "node.log").read_text()
    assert {(d["goal_stamp"]["sec"], d["goal_stamp"]["nanosec"]): d["steps"] for d in replayed} == truth
    plans = {(p["goal_header"]["stamp"]["sec"], p["goal_header"]["stamp"]["nanosec"]): p["labels"]
             for p in client.snapshot()["plans"]}
    model_sr = 100.0 * np.mean([plans.get(stamp) == steps for stamp, steps in truth.items()])  # a missed goal is wrong
    baseline = nearest_neighbour_metrics(train, test)
    print(f"held-out goals {len(truth)}, planned {len(set(plans) & set(truth))}; node SR {model_sr:.1f} vs "
          f"nearest neighbour {baseline['sr']:.1f} (mAcc {baseline['macc']:.1f}); record {recorded - began:.0f} s, "
          f"import + train {trained - recorded:.0f} s, export {exported - trained:.0f} s, "
          f"plan {time.monotonic() - exported:.0f} s")
    assert model_sr > baseline["sr"]
