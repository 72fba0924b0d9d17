"""`planllm bench latency`: planner stages per backend, the node end to end over DDS, 30 Hz drops.

1. Planner: per-stage p50 / p95 at batch 1 for every backend that loads here, and the ONNX
   Runtime / torch speed-up (measured in process by training/benchmarks/latency.py).
2. Node end to end: the planner node runs as a child process exactly as the launch file starts
   it (planllm_ros.tools.processes, localhost-only discovery, its own domain id); this process
   publishes goal images and times goal message -> step ids (the first ~/plan document, with
   captions_pending) and goal message -> the plan with its captions (on_goal mode); then the same
   for tabletop goals 1 to 6 steps away with the node's horizon 0 (the model chooses the number
   of steps) and told each one's true number.
3. A busy computer: with 0, 1 and 2 other processes keeping cores busy at the node's own
   priority, and a 640x480 camera streaming at 30 Hz, goal message -> plan message and
   ~/plan_now's answer time; the frames sent, received, reported lost by DDS and replaced unread
   in the subscription's queue; the node's queue depth and RSS.
4. 30 Hz input: the same node switched to continuous mode gets 640x480 frames at 30 Hz; its
   diagnostics count the frames received and the stale frames it dropped. A model with a state
   head plans once there and then follows the plan (the frames are read for progress, a new plan
   only when a frame leaves it), so its plan count is small by design.
5. Open vocabulary: the torch planner given 100 candidate labels (training/benchmarks/latency.py),
   against the 20 ms budget.

The node is driven from here, among the tools, because the trainer never imports ROS.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from planllm_ros.tools.env import scaled
from planllm_ros.tools.processes import busy_processes, rss_mb
from training.benchmarks.latency import (
    OPEN_VOCAB_BUDGET_MS,
    cpu_backends,
    open_vocab_latency,
    planner_latency,
    speedup_line,
)
from training.benchmarks.report import Table, bar_plot, write_report

NAMESPACE = "/bench"
FRAME_RATE_HZ = 30.0
WAIT_S = 60.0  # bound (scaled for the machine) on any one wait for the node, model loading included
BUSY_LEVELS = (0, 1, 2)  # other busy processes at the node's priority
NODE_WARMUP_GOALS = 3  # after the first goal's plan; like the planner rows' 3 warm-up runs
# a goal published right after a camera frame from one process reached the node 25-545 ms later
# (Fast DDS, 224x224 frames; 23-37 ms with this gap, one 126): the goal row times the node, not that
FRAME_BEFORE_GOAL_S = 0.05
NODE_BACKEND = "onnxruntime"  # how an exported model is deployed on a CPU
UNTOLD_SEED = 600  # first tabletop scenario of the goals whose number of steps the node is not told
UNTOLD_MAX_T = 6  # their true T runs through 1..6, the most a model with a state head chooses


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=None, help="model folder (default: the bundled tabletop-tiny)")
    parser.add_argument("--runs", type=int, default=None, help="timed planner runs per backend (default 50; quick 5)")
    parser.add_argument("--goals", type=int, default=None, help="goal messages timed through the node (default 20; quick 3)")
    parser.add_argument("--stream-seconds", type=float, default=None, help="length of the 30 Hz stream (default 20; quick 4)")


def _wait(condition, what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + scaled(timeout)
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"latency benchmark: {what} within {scaled(timeout):.0f} s")
        time.sleep(0.01)


def node_latency(model: Path, goals: int, stream_seconds: float, threads: int, log_path: Path,
                 backend: str = NODE_BACKEND) -> dict:
    """Goal -> step ids and goal -> plan latencies (ms) in on_goal mode, then goal -> plan with a
    30 Hz camera and each of BUSY_LEVELS busy processes (_under_load), then the 30 Hz stream
    counts in continuous mode. The node's `threads` parameter is `threads`, like the in-process
    planner's."""
    from planllm_ros.tools.env import apply_ros_environment, random_domain_id

    env = apply_ros_environment(domain_id=random_domain_id())  # before rclpy is imported
    import rclpy
    from std_msgs.msg import String

    from planllm_ros.ros.image_conv import rgb_to_image
    from planllm_ros.ros.planner_node import NODE_NAME
    from planllm_ros.tools.client import PlannerClient
    from planllm_ros.tools.demo import model_horizon
    from planllm_ros.tools.processes import start_planner, stop

    rng = np.random.default_rng(0)
    arrivals: dict[str, tuple[float, dict]] = {}  # goal frame_id -> (arrival, latency_ms) of its complete plan
    steps_at: dict[str, float] = {}  # goal frame_id -> arrival of its step ids (the first document)
    chosen: dict[str, int] = {}  # goal frame_id -> the number of steps of its complete plan

    def on_plan(msg: String) -> None:
        now, document = time.perf_counter(), json.loads(msg.data)
        name = document["goal_header"]["frame_id"]
        steps_at.setdefault(name, now)  # a model without captions sends one document, ids and all
        if not document["captions_pending"]:
            arrivals.setdefault(name, (now, document["latency_ms"]))
            chosen.setdefault(name, int(document["horizon"]))

    with open(log_path, "w") as log:
        # at the model's own T, as the planner rows: the goals are random images
        process = start_planner({"model_dir": str(model), "namespace": NAMESPACE, "backend": backend,
                                 "threads": str(threads)}, env, log, extra_ros_args=["-p", f"horizon:={model_horizon(model)}"])
        rclpy.init()
        client = None
        try:
            client = PlannerClient(namespace=NAMESPACE, plan_images=False)  # a robot's task manager reads ~/plan
            client.node.create_subscription(String, f"{NAMESPACE}/{NODE_NAME}/plan", on_plan, 10)
            frame = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)

            def warmed_up() -> bool:  # best-effort frames may be lost while discovery runs: keep sending
                client.send_frame(frame)
                time.sleep(0.1)
                return "warmup" in arrivals

            client.send_goal(frame, frame_id="warmup")
            _wait(warmed_up, "no plan for the first goal")
            # as many warm-up goals as the planner rows have warm-up runs, new images like the timed
            # ones. A camera frame goes out FRAME_BEFORE_GOAL_S before every goal: a camera silent
            # for 2 s makes the node hold a new goal for the next frame
            for k in range(NODE_WARMUP_GOALS):
                client.send_frame(frame)
                time.sleep(FRAME_BEFORE_GOAL_S)
                client.send_goal(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8), frame_id=f"warmup-{k}")
                _wait(lambda: f"warmup-{k}" in arrivals, f"no plan for warm-up goal {k}")
            steps, latencies, reported = [], [], []
            for k in range(goals):
                name = f"goal-{k}"
                client.send_frame(frame)
                time.sleep(FRAME_BEFORE_GOAL_S)
                sent = time.perf_counter()
                client.send_goal(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8), frame_id=name)
                _wait(lambda: name in arrivals, f"no plan for {name}")
                steps.append((steps_at[name] - sent) * 1000.0)
                latencies.append((arrivals[name][0] - sent) * 1000.0)
                reported.append(arrivals[name][1])

            untold = _untold(client, goals, arrivals, steps_at, chosen, model_horizon(model))

            image = rgb_to_image(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8))
            image.header.frame_id = "camera"
            load = [_under_load(client, process.pid, image, busy, goals, stream_seconds, arrivals, rng)
                    for busy in BUSY_LEVELS]

            if not all(r.successful for r in client.set_parameters(mode="continuous")):
                raise RuntimeError("latency benchmark: the node refused mode=continuous")
            before = _counters(client, fresh=True)
            with client.camera_stream(image, FRAME_RATE_HZ) as published:
                time.sleep(stream_seconds)  # the measuring window
            sent_frames = published()
            time.sleep(1.0)  # a plan may still be running on the last frames
            after = _counters(client, fresh=True)
        finally:
            if client is not None:
                client.close()
            rclpy.shutdown()
            code = stop(process)
    if code != 0:
        raise RuntimeError(f"latency benchmark: the node exited with {code}; its log: {log_path}")
    stream = {key: after[key] - before[key] for key in after}
    return {"steps_ms": steps, "latencies_ms": latencies, "reported_ms": reported, "load": load, "untold": untold,
            "stream": {"seconds": stream_seconds, "sent": sent_frames, **stream}}


def untold_windows(count: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(true T, start frame, goal frame) of `count` tabletop windows whose true T runs through
    1..UNTOLD_MAX_T, from fresh demo scenarios (seeds UNTOLD_SEED...): what a task manager that
    does not know the number of steps sends. Random pixels would not do here: the number of steps
    the model chooses, and so the work of the plan, depends on the images."""
    from training.tabletop import scenario

    out = []
    for k in range(count):
        played = scenario(None, UNTOLD_SEED + k)
        horizon = min(1 + k % UNTOLD_MAX_T, len(played.step_ids))
        out.append((horizon, played.frames[0], played.frames[horizon]))
    return out


def _untold(client, goals: int, arrivals: dict, steps_at: dict, chosen: dict, own_horizon: int) -> dict:
    """Goal -> step ids and goal -> plan (ms) over `goals` tabletop windows of 1..UNTOLD_MAX_T steps,
    first with the node's horizon 0 (the model chooses the number of steps), then told each
    window's true T (the parameter set before its goal), on_goal mode, an idle computer; and the
    number of steps chosen. A model that cannot choose (no state head) gets an empty result."""
    if not all(r.successful for r in client.set_parameters(horizon=0)):
        return {}
    windows = untold_windows(goals)
    out: dict[str, dict] = {}
    for told in (False, True):
        row: dict[str, list] = {"steps_ms": [], "plan_ms": [], "true": [], "chosen": []}
        for k, (horizon, start, goal) in enumerate(windows):
            if told and not all(r.successful for r in client.set_parameters(horizon=horizon)):
                raise RuntimeError(f"latency benchmark: the node refused horizon={horizon}")
            name = f"{'told' if told else 'untold'}-{k}"
            client.send_frame(start)
            time.sleep(FRAME_BEFORE_GOAL_S)
            sent = time.perf_counter()
            client.send_goal(goal, frame_id=name)
            _wait(lambda: name in arrivals, f"no plan for {name}")
            row["steps_ms"].append((steps_at[name] - sent) * 1000.0)
            row["plan_ms"].append((arrivals[name][0] - sent) * 1000.0)
            row["true"].append(horizon)
            row["chosen"].append(chosen[name])
        out["told" if told else "untold"] = row
    if not all(r.successful for r in client.set_parameters(horizon=own_horizon)):
        raise RuntimeError("latency benchmark: the node refused its model's horizon again")
    return out


def _under_load(client, pid: int, image, busy: int, goals: int, seconds: float, arrivals: dict, rng) -> dict:
    """With `busy` busy processes and `image` streaming at 30 Hz for `seconds` (or as long as the
    goals take): goal -> plan and ~/plan_now answer times (ms), frame counts, queue depth, RSS."""
    goal_ms, answer_ms = [], []
    with busy_processes(busy, scaled(WAIT_S) * (goals + 2) + seconds):
        before, rss_before = _counters(client, fresh=True), rss_mb(pid)
        seen, began = len(client.snapshot()["diagnostics"]), time.monotonic()
        with client.camera_stream(image, FRAME_RATE_HZ) as published:
            for k in range(goals):
                name = f"busy-{busy}-goal-{k}"
                sent = time.perf_counter()
                client.send_goal(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8), frame_id=name)
                called = time.perf_counter()
                client.plan_now()  # TimeoutError if unanswered
                answer_ms.append((time.perf_counter() - called) * 1000.0)
                _wait(lambda: name in arrivals, f"no plan for {name}")
                goal_ms.append((arrivals[name][0] - sent) * 1000.0)
            time.sleep(max(0.0, began + seconds - time.monotonic()))  # the rest of the measuring window
        sent_frames = published()
        after = _counters(client, fresh=True)
    depths = [int(d["queue_depth"]) for d in client.snapshot()["diagnostics"][seen:]]
    counts = {key: after[key] - before[key] for key in after}
    return {"busy": busy, "goal_ms": goal_ms, "answer_ms": answer_ms, "sent": sent_frames, **counts,
            "queue_max": max(depths), "rss_mb": (rss_before, rss_mb(pid))}


def _counters(client, fresh: bool) -> dict[str, int]:
    """The node's cumulative counters from its diagnostics; `fresh`: from a message published
    after this call (the node reports once a second, so the last one may be up to 1 s old)."""
    seen = len(client.snapshot()["diagnostics"])
    _wait(lambda: len(client.snapshot()["diagnostics"]) > (seen if fresh else 0), "no diagnostics from the node", 10.0)
    latest = client.snapshot()["diagnostics"][-1]
    return {key: int(latest[key])
            for key in ("frames_received", "frames_lost_in_transport", "frames_dropped", "plans", "progress")}


def _spread(values_ms: list[float]) -> str:
    """p50 / p95 / max of a list of milliseconds, as a table cell."""
    return " / ".join(f"{v:.0f}" for v in (np.percentile(values_ms, 50), np.percentile(values_ms, 95), max(values_ms)))


def _stage_cell(stage: dict[str, float] | None) -> str:
    """p50 / p95 of one planner stage, as a table cell; n/a for a stage the model does not run
    (no "steps" or "captions" without an LLM branch)."""
    return "n/a" if stage is None else f"{stage['p50']:.1f} / {stage['p95']:.1f}"


def _untold_table(untold: dict, threads: int) -> list[Table]:
    """The untold-horizon rows (none for a model that cannot choose its number of steps)."""
    if not untold:
        return []
    rows = []
    for key, title in (("untold", "horizon 0: the model chooses"), ("told", "told each window's true T")):
        r = untold[key]
        ids, plan = np.asarray(r["steps_ms"]), np.asarray(r["plan_ms"])
        right = np.mean(np.asarray(r["true"]) == np.asarray(r["chosen"])) * 100.0
        rows.append([title, str(plan.size), f"{np.percentile(ids, 50):.1f}", f"{np.percentile(ids, 95):.1f}",
                     f"{np.percentile(plan, 50):.1f}", f"{np.percentile(plan, 95):.1f}", f"{plan.max():.1f}",
                     f"{right:.0f} %"])
    return [Table(f"Node end to end with the number of steps untold: tabletop windows of 1-{UNTOLD_MAX_T} steps, the "
                  f"same goals both ways ({NODE_BACKEND} backend, node parameter threads {threads}, on_goal mode, CPU, ms)",
                  ["node parameter horizon", "goals", "goal -> step ids p50", "p95", "goal -> plan p50", "p95", "max",
                   "plans with the window's true number of steps"], rows)]


def run(args: argparse.Namespace, command: str) -> list[Path]:
    from planllm_ros.runtime.cli import default_model_dir

    model = args.model or default_model_dir()
    if not (model / "config.json").is_file():
        raise FileNotFoundError(f"{model} is not a model folder (no config.json): pass --model DIR")
    runs = args.runs or (5 if args.quick else 50)
    goals = args.goals or (3 if args.quick else 20)
    seconds = args.stream_seconds or (4.0 if args.quick else 20.0)
    planner = planner_latency(model, runs, backends=cpu_backends(args.threads))
    open_vocab = open_vocab_latency(model, runs)
    with tempfile.TemporaryDirectory(prefix="planllm-bench-") as tmp:
        node = node_latency(model, goals, seconds, args.threads, Path(tmp) / "node.log")

    stages = ("backbone", "heads", "decode", "steps", "captions", "total")
    table = Table(f"Planner per stage at batch 1, CPU, {runs} timed runs after 3 warm-up runs (ms)",
                  ["backend", *[f"{s} p50 / p95" for s in stages], "peak RSS (MB)"])
    for backend, result in planner.items():
        if isinstance(result, str):
            table.rows.append([backend, *["n/a"] * len(stages), result])
            continue
        cells = [_stage_cell(result["stages_ms"].get(s)) for s in stages]
        table.rows.append([backend, *cells, f"{result['peak_rss_mb']:.0f}"])
    speedup = speedup_line(planner)
    lat, ids = np.asarray(node["latencies_ms"]), np.asarray(node["steps_ms"])
    model_total = np.asarray([r["total"] for r in node["reported_ms"]])
    node_total = np.asarray([r["node_total"] for r in node["reported_ms"]])
    node_table = Table(f"Node end to end: goal message -> step ids and -> plan with captions over DDS ({NODE_BACKEND} "
                       f"backend, node parameter threads {args.threads}, CPU, ms)",
                       ["goals", "goal -> step ids p50", "p95", "goal -> captions p50", "p95", "max",
                        "node-reported planner total p50", "node-reported node total p50"],
                       [[str(lat.size), f"{np.percentile(ids, 50):.1f}", f"{np.percentile(ids, 95):.1f}",
                         f"{np.percentile(lat, 50):.1f}", f"{np.percentile(lat, 95):.1f}", f"{lat.max():.1f}",
                         f"{np.median(model_total):.1f}", f"{np.median(node_total):.1f}"]])
    untold_table = _untold_table(node["untold"], args.threads)
    load_table = Table(f"Node on a busy computer: other processes keep cores busy at the node's priority while a "
                       f"640x480 rgb8 camera streams at 30 Hz ({NODE_BACKEND} backend, on_goal mode, "
                       f"{os.cpu_count()} CPUs; ms, frames, MB)",
                       ["busy processes", "goals", "goal -> plan p50 / p95 / max", "~/plan_now answer p50 / p95 / max",
                        "frames sent", "received", "lost in DDS", "replaced unread in the queue", "queue depth max",
                        "node RSS before / after"],
                       [[str(r["busy"]), str(len(r["goal_ms"])), _spread(r["goal_ms"]), _spread(r["answer_ms"]),
                         str(r["sent"]), str(r["frames_received"]), str(r["frames_lost_in_transport"]),
                         str(r["sent"] - r["frames_received"] - r["frames_lost_in_transport"]), str(r["queue_max"]),
                         f"{r['rss_mb'][0]:.0f} / {r['rss_mb'][1]:.0f}"] for r in node["load"]])
    stage = open_vocab["stages_ms"]["open_vocab"]
    open_table = Table(f"Open vocabulary: {open_vocab['labels']} candidate labels, torch backend, CPU, "
                       f"{open_vocab['runs']} timed plans (ms; budget {OPEN_VOCAB_BUDGET_MS:.0f} ms per plan)",
                       ["method (decoding.open_vocab)", "first plan with the list (embeds the labels, builds the "
                        "mapping)", "open_vocab p50 / p95", "within the budget (p95)", "planner total p50"],
                       [[open_vocab["method"], f"{open_vocab['first_ms']:.1f}", f"{stage['p50']:.1f} / {stage['p95']:.1f}",
                         "yes" if stage["p95"] <= OPEN_VOCAB_BUDGET_MS else "no",
                         f"{open_vocab['stages_ms']['total']['p50']:.1f}"]])
    s = node["stream"]
    stream_table = Table(f"30 Hz camera, 640x480 rgb8, {s['seconds']:.0f} s, node in continuous mode (max_rate_hz 2)",
                         ["frames sent", "received by the node", "lost in transport", "dropped as stale by the node",
                          "plans", "frames read against the followed plan", "dropped share of received"],
                         [[str(s["sent"]), str(s["frames_received"]), str(s["sent"] - s["frames_received"]),
                           str(s["frames_dropped"]), str(s["plans"]), str(s["progress"]),
                           f"{100.0 * s['frames_dropped'] / max(1, s['frames_received']):.1f} %"]])
    stem = "latency-quick" if args.quick else "latency"
    series = {b: [float("nan") if isinstance(r, str) else r["stages_ms"].get(st, {}).get("p50", float("nan"))
                  for st in stages]
              + [float(np.percentile(x, 50)) if b == NODE_BACKEND else float("nan") for x in (ids, lat)]
              for b, r in planner.items()}
    plot = bar_plot(args.out / f"{stem}.png", "Planning latency p50 (CPU, batch 1)",
                    [*stages, "node goal->steps", "node goal->captions"], series, "ms")
    notes = [speedup,
             f"model: `{model}`; inputs: 224x224 RGB frames (random pixels: latency does not depend on them), "
             "planned at the model's own T (Planner.plan(horizon=T), node parameter horizon=T): a model that chooses "
             "the number of steps would pick some number for random pixels and write captions only at its T; "
             "choosing adds one grounded search (in decode)",
             "stages: backbone (frozen image encoder), heads (projection, state interaction, Q-Former, LLM forward "
             "for h, step decoder / fusion / refiner), decode, steps (from the start of a plan to its step ids, "
             "which the planner hands out before the captions), captions (LLM generation), total",
             "node: started from launch/planllm.launch.py as a child process, ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, "
             f"its own ROS_DOMAIN_ID, node parameter threads={args.threads}; {NODE_WARMUP_GOALS} warm-up goals after "
             f"the first plan, a camera frame {1000 * FRAME_BEFORE_GOAL_S:.0f} ms before each goal (one published "
             "right before a goal delayed it by up to half a second in DDS), then goal -> step ids and goal -> captions are "
             "measured in the sending process from publishing the goal to receiving the plan's first ~/plan document "
             "(captions_pending: step ids only) and its complete one; the node-reported columns are the complete "
             "plan's own latency_ms (planner total; node_total adds the node's queueing and publishing); the measuring "
             "client reads ~/plan like a robot's task manager and does not subscribe to ~/plan_image, so the node draws "
             "no picture (a viewer of it adds about 25 ms of the planning thread per plan)",
             f"number of steps untold: the same node, after the goals above, is sent {goals} goals whose true T "
             f"runs through 1..{UNTOLD_MAX_T} (the start and the state T steps later of fresh tabletop scenarios, "
             f"seeds {UNTOLD_SEED}...: the number the model chooses depends on the images), first with its horizon "
             "parameter 0, then told each window's true T; a plan at a T other than the model's own has no captions "
             "(the LLM writes plans of its own T), so goal -> plan is the complete ~/plan document either way",
             "the node's planning thread and this process share the machine's cores with whatever else runs",
             "busy computer: each row runs that many processes spinning in a Python loop at the node's priority "
             "(planllm_ros.tools.processes.busy_processes), streams the camera from this process and calls "
             "~/plan_now right after each goal; "
             "frames lost in DDS are what the node's subscription reports (message_lost), the rest of the frames "
             "not received were replaced unread in its 5-deep queue; queue depth is the node's planning queue"]
    report = write_report(args.out / f"{stem}.md", "Latency: planner stages, node end to end, 30 Hz input", command,
                          "n/a (no training; inputs from numpy seed 0)", [table, open_table, node_table, *untold_table, load_table, stream_table],
                          notes, plot)
    return [report, plot]
