"""`make demo`: the planner node on the bundled model, a tabletop scenario played to it, and
each plan printed next to the true steps as it arrives.

`--play procedure` shows the robot at work instead: the node in continuous mode, each scenario
played state by state towards goals up to 6 steps ahead; the plan is printed once per goal,
then each change of ~/progress ("step 2 done, next: ..."), and at the end how often the
announced next step was the played one and whether each new plan came when the played
procedure had left the old one.

The node starts exactly as launch/planllm.launch.xml says; the camera and task manager are
`planllm ros demo-source`; both are child processes under the localhost ROS settings and are
stopped by PID at the end (or on Ctrl-C). Nothing is installed here: `make demo` did that.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from planllm_ros.tools.env import apply_ros_environment

READY_TIMEOUT_S = 180.0  # loading torch and the model on two busy cores
SOURCE_NAME = "planllm_demo_source"
TRUTH_WAIT_S = 3.0  # how long a plan waits for its goal's truth message (another topic) before it is shown


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m planllm_ros.tools.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=None, help="model folder (default: the bundled model)")
    parser.add_argument("--backend", default="torch", help="torch, onnxruntime or tensorrt")
    parser.add_argument("--task", default=None, help="tabletop task name (default: picked by the seed)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scenarios", type=int, default=1)
    parser.add_argument("--max-goals", type=int, default=0, help="stop after this many goals (0: the whole scenario)")
    parser.add_argument("--seconds-per-goal", type=float, default=5.0)
    parser.add_argument("--play", choices=("windows", "procedure"), default="windows",
                        help="windows: one plan per window of the model's T steps; procedure: the node in "
                             "continuous mode follows each scenario's procedure (progress, re-plans)")
    parser.add_argument("--seconds-per-state", type=float, default=3.0, help="procedure: how long each state is shown")
    parser.add_argument("--goal-steps", type=int, default=6, help="procedure: steps from a goal's start to the goal")
    parser.add_argument("--replay", type=Path, nargs="+", default=None, metavar="BAG",
                        help="play these recordings of the demo source (`planllm ros record --steps-from`) instead "
                             "of a live scenario")
    return parser.parse_args(argv)


def model_horizon(model_dir: Path) -> int:
    """The number of steps the model plans (the demo source cuts windows of that length)."""
    config = model_dir / "config.json"
    try:
        return int(json.loads(config.read_text())["horizon"])
    except (OSError, ValueError, KeyError) as error:
        raise SystemExit(f"demo: cannot read the model's horizon from {config}: {error}") from error


def show(plan: dict, truth: dict | None) -> str:
    """One plan as a small table: planned step, true step, a mark where they agree."""
    true_steps = truth["steps"] if truth else ["?"] * len(plan["labels"])
    title = f"goal {truth['goal']} ({truth['task']})" if truth else "goal (no ground truth)"
    width = max(len(label) for label in plan["labels"] + ["planned"])
    lines = [f"\n{title}: planned in {plan['latency_ms'].get('total', 0.0):.0f} ms",
             f"  #  {'planned':<{width}}  true"]
    for i, (planned, true) in enumerate(itertools.zip_longest(plan["labels"], true_steps, fillvalue="-"), start=1):
        lines.append(f"  {i}  {planned:<{width}}  {true}  {'ok' if planned == true else '--'}")
    captions = [c for c in plan.get("captions", []) if c]
    if captions:
        lines.append(f"  LLM: {' | '.join(captions)}")
    return "\n".join(lines)


Stamp = tuple[int, int]


def _key(stamp: dict[str, int]) -> Stamp:
    return stamp["sec"], stamp["nanosec"]


def watch_windows(client: Any, truth_log: list[dict], source: Any, args: argparse.Namespace) -> tuple[int, str]:
    """Print each plan next to its goal's true steps until the source has ended and the last
    plans are in; (plans shown, the summary)."""
    shown, agree, total, whole, scored = 0, 0, 0, 0, 0
    best = Counter()  # the exact ceiling's planner on the same windows: steps right, steps, windows right, windows
    finished_at = None
    pending: list[tuple[float, dict]] = []  # plans whose truth message has not arrived yet
    while (finished_at is None or time.monotonic() - finished_at < args.seconds_per_goal) or pending:
        truths = {_key(t["goal_stamp"]): t for t in list(truth_log) if t.get("kind") == "goal"}
        plans = client.snapshot()["plans"]
        pending += [(time.monotonic(), plan) for plan in plans[shown:]]
        shown = len(plans)
        waiting = []
        for arrived, plan in pending:
            truth = truths.get(_key(plan["goal_header"]["stamp"]))
            if truth is None and time.monotonic() - arrived < TRUTH_WAIT_S:
                waiting.append((arrived, plan))  # its goal's truth is on another topic: may come later
                continue
            print(show(plan, truth), flush=True)
            if truth:
                agree += sum(p == t for p, t in zip(plan["labels"], truth["steps"]))  # a shorter plan misses the rest
                total += len(truth["steps"])
                whole, scored = whole + (plan["labels"] == truth["steps"]), scored + 1
                if truth.get("ceiling") is not None:
                    best.update(agree=sum(c == t for c, t in zip(truth["ceiling"], truth["steps"])),
                                total=len(truth["steps"]), whole=truth["ceiling"] == truth["steps"], windows=1)
        pending = waiting
        if finished_at is None and source.poll() is not None:
            finished_at = time.monotonic()  # give the last goal's plan time to arrive
        time.sleep(0.1)
    accuracy = (f", {whole} of {scored} wholly right ({100.0 * whole / scored:.0f}%), {100.0 * agree / total:.0f}% "
                f"of steps match the truth") if total else ""
    if best["total"]:  # commuting steps leave identical images: no planner gets every window right
        accuracy += (f"; on the same {best['windows']} windows the planner that reads the true states (the exact "
                     f"ceiling's) gets {best['whole']} wholly right ({100.0 * best['whole'] / best['windows']:.0f}%), "
                     f"{100.0 * best['agree'] / best['total']:.0f}% of steps")
    return shown, f"{shown} plans{accuracy}"


def read_truth(truth_log: list[dict]) -> tuple[dict[Stamp, dict], dict[Stamp, list[dict]]]:
    """The procedure source's truth by goal stamp: each goal's message, and its step boundaries."""
    goals = {_key(t["goal_stamp"]): t for t in truth_log if t.get("kind") == "procedure"}
    boundaries: dict[Stamp, list[dict]] = {}
    for truth in truth_log:
        if truth.get("kind") == "step":
            boundaries.setdefault(_key(truth["goal_stamp"]), []).append(truth)
    return goals, boundaries


def played_next(boundaries: list[dict], stamp: dict[str, int]) -> dict | None:
    """The played state at a frame: the last step boundary of its goal at or before `stamp`
    (None for a frame before the goal's first boundary)."""
    before = [b for b in boundaries if _key(b["stamp"]) <= _key(stamp)]
    return max(before, key=lambda b: _key(b["stamp"])) if before else None


def left_the_plan(plan: dict, steps: list[str], boundaries: list[dict], stamp: dict[str, int]) -> bool:
    """Whether the played procedure had left `plan` by the frame at `stamp`: the steps played
    since the plan's own start frame are not its first steps (in any order: steps that commute
    leave the same picture), or there are more of them than the plan has."""
    started, now = played_next(boundaries, plan["header"]["stamp"]), played_next(boundaries, stamp)
    begin, end = (started or {"done": 0})["done"], (now or {"done": 0})["done"]
    return end - begin > len(plan["labels"]) or Counter(steps[begin:end]) != Counter(plan["labels"][:end - begin])


def progress_line(document: dict) -> str:
    """One ~/progress change as a line for the operator."""
    if document["left_plan"]:
        return f"  plan #{document['seq']}: left the plan ({document['reason']}): planning again"
    if document["finished"]:
        return f"  plan #{document['seq']}: all {document['done']} steps done: goal reached"
    done = f"step {document['done']} done" if document["done"] else "nothing done yet"
    return f"  plan #{document['seq']}: {done}, next: {document['next_label']} ({document['confidence']:.2f})"


def watch_procedure(client: Any, truth_log: list[dict], source: Any, args: argparse.Namespace) -> tuple[int, str]:
    """Print each plan once, then each change of ~/progress, until the source has ended and
    the last frames are read; (plans shown, the summary: next-step accuracy and re-plans)."""
    last: dict[int, tuple[int, bool]] = {}  # per plan: the (done, left_plan) printed last
    shown, seen_progress, finished_at = 0, 0, None
    while finished_at is None or time.monotonic() - finished_at < args.seconds_per_state:
        snapshot = client.snapshot()
        goals, boundaries = read_truth(list(truth_log))
        for plan in snapshot["plans"][shown:]:
            goal = _key(plan["goal_header"]["stamp"])
            truth = goals.get(goal)
            title = f"goal {truth['goal']} ({truth['task']}, {len(truth['steps'])} steps)" if truth else "goal"
            sure = f", {plan['horizon_confidence']:.2f} sure of {plan['horizon']} steps" if plan["horizon_probs"] else ""
            started = played_next(boundaries.get(goal, []), plan["header"]["stamp"])  # where the robot was
            true = truth["steps"][started["done"] if started else 0:] if truth else None
            print(f"\nplan #{plan['seq']} ({plan['trigger']}) for {title}{sure}:\n  planned: "
                  f"{' | '.join(plan['labels'])}" + (f"\n  true:    {' | '.join(true)}" if truth else ""), flush=True)
        shown = len(snapshot["plans"])
        for document in snapshot["progress"][seen_progress:]:
            state = (document["done"], document["left_plan"])
            if last.get(document["seq"]) != state:
                last[document["seq"]] = state
                print(progress_line(document), flush=True)
        seen_progress = len(snapshot["progress"])
        if finished_at is None and source.poll() is not None:
            finished_at = time.monotonic()  # the last state's frames are still being read
        time.sleep(0.1)
    return shown, procedure_summary(client.snapshot(), list(truth_log))


def procedure_summary(snapshot: dict[str, list], truth_log: list[dict]) -> str:
    """How often the announced next step was the played one (frames read after a boundary of
    their goal), and whether each re-plan came when the played procedure had left the plan."""
    goals, boundaries = read_truth(truth_log)
    right = total = 0
    # a frame that left the plan has two documents, the old plan's and the new one's: the last counts
    frames = {(_key(d["goal_header"]["stamp"]), _key(d["header"]["stamp"])): d for d in snapshot["progress"]}
    for document in frames.values():
        played = played_next(boundaries.get(_key(document["goal_header"]["stamp"]), []), document["header"]["stamp"])
        if played is not None:
            right, total = right + (document["next_label"] == played["next"]), total + 1
    plans = {plan["seq"]: plan for plan in snapshot["plans"]}
    replans = [d for d in snapshot["progress"] if d["left_plan"]]
    justified = sum(
        left_the_plan(plans[d["seq"]], goals[goal]["steps"], boundaries[goal], d["header"]["stamp"])
        for d in replans if d["seq"] in plans and (goal := _key(d["goal_header"]["stamp"])) in goals)
    first = [p for p in plans.values() if p["trigger"] != "left_plan" and _key(p["goal_header"]["stamp"]) in goals]
    exact = sum(p["labels"] == goals[_key(p["goal_header"]["stamp"])]["steps"] for p in first)
    accuracy = f"{100.0 * right / total:.1f}%" if total else "-"
    return (f"{len(goals)} goals, {len(plans)} plans ({exact} of {len(first)} first plans exactly the played steps); "
            f"next step right on {right} of {total} frames after a step boundary ({accuracy}); {len(replans)} "
            f"re-plans, {justified} of them when the played procedure had left the plan")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = apply_ros_environment()
    import rclpy
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String

    from planllm_ros.runtime.cli import default_model_dir
    from planllm_ros.tools.client import PlannerClient
    from planllm_ros.tools.processes import start, start_planner, stop

    model_dir = args.model_dir or default_model_dir()
    horizon = model_horizon(model_dir)
    procedure = args.play == "procedure" and not args.replay
    logs = Path(tempfile.mkdtemp(prefix="planllm-demo-"))
    print(f"planllm demo: model {model_dir} (T={horizon}, {args.backend}), "
          f"ROS domain {env['ROS_DOMAIN_ID']}, logs in {logs}")
    node_log, source_log = open(logs / "node.log", "w"), open(logs / "source.log", "w")
    # procedures: the model chooses how many steps each goal needs; one-goal windows are played
    # `horizon` steps ahead, so the node is told that number (the benchmarks' protocol)
    node = start_planner({"model_dir": str(model_dir), "backend": args.backend}, env, node_log,
                         extra_ros_args=["-p", "mode:=continuous"] if procedure else ["-p", f"horizon:={horizon}"])
    source = None
    rclpy.init()
    client = PlannerClient()
    truth_log: list[dict] = []  # every truth message of the source, in arrival order
    latched = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    client.node.create_subscription(String, f"/{SOURCE_NAME}/truth", lambda msg: truth_log.append(json.loads(msg.data)),
                                    latched)
    shown, summary = 0, "no plans"
    try:
        print("waiting for the planner node to load the model ...")
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not any(d.get("state") == "active" for d in client.snapshot()["diagnostics"]):
            if node.poll() is not None or time.monotonic() > deadline:
                log_text = (logs / "node.log").read_text()
                print(f"demo: the planner node did not come up; its log:\n{log_text}", file=sys.stderr)
                return 1
            time.sleep(0.2)
        common = ["--seed", str(args.seed), "--scenarios", str(args.scenarios), *(["--task", args.task] if args.task else [])]
        watch: Callable[[Any, list[dict], Any, argparse.Namespace], tuple[int, str]] = watch_windows
        if args.replay:
            print(f"planner active; replaying {len(args.replay)} recording(s)")
            command = ["replay", *map(str, args.replay), "--wait-for-subscribers", "30"]
        elif procedure:
            print("planner active (continuous mode); playing the tabletop procedures")
            command = ["demo-source", "--play", "procedure", "--goal-steps", str(args.goal_steps),
                       "--seconds-per-state", str(args.seconds_per_state), *common]
            watch = watch_procedure
        else:
            print("planner active; playing the tabletop scenario")
            command = ["demo-source", "--horizon", str(horizon), "--max-goals", str(args.max_goals),
                       "--seconds-per-goal", str(args.seconds_per_goal), *common]
        source = start([sys.executable, "-m", "planllm_ros.cli", "ros", *command], env, source_log)
        shown, summary = watch(client, truth_log, source, args)
    except KeyboardInterrupt:
        print("\ninterrupted")
    finally:
        client.close()
        rclpy.try_shutdown()
        codes = {"source": stop(source) if source else 0, "node": stop(node)}
        node_log.close()
        source_log.close()
    print(f"\n{summary}; node exit {codes['node']}, source exit {codes['source']}")
    if codes["source"] != 0:
        print((logs / "source.log").read_text(), file=sys.stderr)
    return 0 if shown and codes["node"] == 0 and codes["source"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
