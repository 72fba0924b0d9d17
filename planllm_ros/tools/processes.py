"""Child ROS processes for the demo, the tools and the tests: started from the launch file,
stopped by PID (never by name: other people's processes share these machines)."""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from planllm_ros.tools.env import ros_environment, scaled
from planllm_ros.tools.launch_reader import read_launch

STOP_TIMEOUT_S = 15.0  # on a quiet machine: scaled(STOP_TIMEOUT_S) here
# A busy process spins at the caller's priority and ends by itself after its lifetime, so a
# crashed caller never leaves one behind for long.
BUSY_LOOP = "import sys, time\nend = time.monotonic() + float(sys.argv[1])\nwhile time.monotonic() < end: pass"


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


def stop(process: subprocess.Popen, timeout: float | None = None) -> int:
    """SIGTERM (rclpy shuts down cleanly on it), then SIGKILL if it has not ended in `timeout`
    (default scaled(STOP_TIMEOUT_S))."""
    if process.poll() is None:
        process.terminate()
        try:
            return process.wait(scaled(STOP_TIMEOUT_S) if timeout is None else timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


@contextmanager
def busy_processes(count: int, lifetime_s: float) -> Iterator[list[int]]:
    """`count` processes that each keep one core busy at this process's priority (what other
    nodes on a robot's computer do), for at most `lifetime_s`; yields their PIDs and stops them
    by PID on exit."""
    processes = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP, str(lifetime_s)]) for _ in range(count)]
    try:
        yield [process.pid for process in processes]
    finally:
        for process in processes:
            process.kill()
            process.wait()


def rss_mb(pid: int) -> float:
    """The resident memory of process `pid` in MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"process {pid} reports no VmRSS")
