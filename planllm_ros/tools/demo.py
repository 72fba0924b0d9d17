"""`make demo`: the planner node on the bundled model, a tabletop scenario played to it, and
each plan printed next to the true steps as it arrives.

The node starts exactly as launch/planllm.launch.xml says; the camera and task manager are
`planllm ros demo-source`; both are child processes under the localhost ROS settings and are
stopped by PID at the end (or on Ctrl-C). Nothing is installed here: `make demo` did that.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

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
    for i, (planned, true) in enumerate(zip(plan["labels"], true_steps, strict=True), start=1):
        lines.append(f"  {i}  {planned:<{width}}  {true}  {'ok' if planned == true else '--'}")
    captions = [c for c in plan.get("captions", []) if c]
    if captions:
        lines.append(f"  LLM: {' | '.join(captions)}")
    return "\n".join(lines)


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
    logs = Path(tempfile.mkdtemp(prefix="planllm-demo-"))
    print(f"planllm demo: model {model_dir} (T={horizon}, {args.backend}), "
          f"ROS domain {env['ROS_DOMAIN_ID']}, logs in {logs}")
    node_log, source_log = open(logs / "node.log", "w"), open(logs / "source.log", "w")
    node = start_planner({"model_dir": str(model_dir), "backend": args.backend}, env, node_log)
    source = None
    rclpy.init()
    client = PlannerClient()
    truths: dict[tuple[int, int], dict] = {}

    def on_truth(msg: String) -> None:
        truth = json.loads(msg.data)
        if "goal_stamp" in truth:  # a goal's steps (episode announcements carry no goal)
            truths[(truth["goal_stamp"]["sec"], truth["goal_stamp"]["nanosec"])] = truth

    latched = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    client.node.create_subscription(String, f"/{SOURCE_NAME}/truth", on_truth, latched)
    shown, agree, total, whole, scored = 0, 0, 0, 0, 0
    try:
        print("waiting for the planner node to load the model ...")
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not any(d.get("state") == "active" for d in client.snapshot()["diagnostics"]):
            if node.poll() is not None or time.monotonic() > deadline:
                log_text = (logs / "node.log").read_text()
                print(f"demo: the planner node did not come up; its log:\n{log_text}", file=sys.stderr)
                return 1
            time.sleep(0.2)
        if args.replay:
            print(f"planner active; replaying {len(args.replay)} recording(s)")
            command = ["replay", *map(str, args.replay), "--wait-for-subscribers", "30"]
        else:
            print("planner active; playing the tabletop scenario")
            command = ["demo-source", "--horizon", str(horizon), "--seed", str(args.seed), "--scenarios",
                       str(args.scenarios), "--max-goals", str(args.max_goals), "--seconds-per-goal",
                       str(args.seconds_per_goal), *(["--task", args.task] if args.task else [])]
        source = start([sys.executable, "-m", "planllm_ros.cli", "ros", *command], env, source_log)
        finished_at = None
        pending: list[tuple[float, dict]] = []  # plans whose truth message has not arrived yet
        while (finished_at is None or time.monotonic() - finished_at < args.seconds_per_goal) or pending:
            plans = client.snapshot()["plans"]
            pending += [(time.monotonic(), plan) for plan in plans[shown:]]
            shown = len(plans)
            waiting = []
            for arrived, plan in pending:
                stamp = plan["goal_header"]["stamp"]
                truth = truths.get((stamp["sec"], stamp["nanosec"]))
                if truth is None and time.monotonic() - arrived < TRUTH_WAIT_S:
                    waiting.append((arrived, plan))  # its goal's truth is on another topic: may come later
                    continue
                print(show(plan, truth), flush=True)
                if truth:
                    agree += sum(p == t for p, t in zip(plan["labels"], truth["steps"], strict=True))
                    total += len(truth["steps"])
                    whole, scored = whole + (plan["labels"] == truth["steps"]), scored + 1
            pending = waiting
            if finished_at is None and source.poll() is not None:
                finished_at = time.monotonic()  # give the last goal's plan time to arrive
            time.sleep(0.1)
    except KeyboardInterrupt:
        print("\ninterrupted")
    finally:
        client.close()
        rclpy.try_shutdown()
        codes = {"source": stop(source) if source else 0, "node": stop(node)}
        node_log.close()
        source_log.close()
    accuracy = (f", {whole} of {scored} wholly right ({100.0 * whole / scored:.0f}%), {100.0 * agree / total:.0f}% "
                f"of steps match the truth") if total else ""
    print(f"\n{shown} plans{accuracy}; node exit {codes['node']}, source exit {codes['source']}")
    if codes["source"] != 0:
        print((logs / "source.log").read_text(), file=sys.stderr)
    return 0 if shown and codes["node"] == 0 and codes["source"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
