"""Child ROS processes for the demo, the tools and the tests: started from the launch file,
stopped by PID (never by name: other people's processes share these machines)."""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from planllm_ros.tools.env import ros_environment
from planllm_ros.tools.launch_reader import read_launch

STOP_TIMEOUT_S = 15.0


def start(command: list[str], env: Mapping[str, str] | None = None, log: IO[str] | None = None) -> subprocess.Popen:
    """Start `command` with the localhost ROS settings (`env`, else this process's plus them);
    its output goes to `log` (default: inherited)."""
    return subprocess.Popen(
        command,
        env=ros_environment(env),
        stdout=log,
        stderr=subprocess.STDOUT if log else None,
        text=True,
    )


def start_planner(
    arguments: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    log: IO[str] | None = None,
    launch_file: str | Path | None = None,
    extra_ros_args: list[str] | None = None,
) -> subprocess.Popen:
    """Start the planner node exactly as the launch file says (plus `extra_ros_args`, e.g.
    `-p mode:=continuous`), in this interpreter (the ROS wheels re-exec it)."""
    nodes = read_launch(launch_file, dict(arguments or {}))
    if len(nodes) != 1:
        raise ValueError(f"expected one node in the launch file, found {len(nodes)}")
    return start([*nodes[0].command(sys.executable), *(extra_ros_args or [])], env, log)


def stop(process: subprocess.Popen, timeout: float = STOP_TIMEOUT_S) -> int:
    """SIGTERM (rclpy shuts down cleanly on it), then SIGKILL if it has not ended in time."""
    if process.poll() is None:
        process.terminate()
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()
