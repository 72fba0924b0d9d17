"""The one place that says how every planllm_ros ROS process is started on our machines.

Without these settings Fast DDS multicasts discovery onto every network interface (this ROS
release ignores ROS_LOCALHOST_ONLY), and its default shared-memory segment is too small for a
camera frame. Tests, the demo, the tools and scripts all build their environment here.

It is also the one place that says how long to wait for a ROS process: every bound (a service
answer, a node coming up, a test's wait) is a base value for a quiet 2-core machine times
`time_scale()`, so that a machine that also runs other work waits longer instead of failing.
"""
from __future__ import annotations

import functools
import os
import random
from collections.abc import Mapping

from planllm_ros.paths import config_file

FASTDDS_PROFILE = "fastdds_shm.xml"
# Domain ids 1..100 stay clear of 0 (the default every stray ROS process uses) and of the
# ids whose ports overflow on Linux (> 101).
DOMAIN_ID_RANGE = (1, 100)
# Set it (a positive number) to scale every wait by hand, e.g. 3 on a slow shared CI runner.
TIME_SCALE_VARIABLE = "PLANLLM_TIME_SCALE"
MAX_AUTOMATIC_TIME_SCALE = 4.0


def random_domain_id(rng: random.Random | None = None) -> int:
    """A per-run domain id, so concurrent runs on one machine never see each other."""
    return (rng or random.SystemRandom()).randint(*DOMAIN_ID_RANGE)


def ros_environment(base: Mapping[str, str] | None = None, domain_id: int | None = None) -> dict[str, str]:
    """`base` (default os.environ) plus the localhost-only discovery settings.

    An explicit `domain_id` wins; otherwise an existing ROS_DOMAIN_ID in `base` is kept (so a
    Makefile or test fixture that already chose one is honoured), else a random one is drawn.
    """
    env = dict(os.environ if base is None else base)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    if domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(domain_id)
    elif not env.get("ROS_DOMAIN_ID"):
        env["ROS_DOMAIN_ID"] = str(random_domain_id())
    env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(config_file(FASTDDS_PROFILE)))
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    return env


def apply_ros_environment(domain_id: int | None = None) -> dict[str, str]:
    """Set the settings in this process's environment (call before importing rclpy)."""
    env = ros_environment(domain_id=domain_id)
    os.environ.update(env)
    return env


@functools.cache
def time_scale() -> float:
    """How many times longer than on a quiet 2-core machine this process allows for waits and
    budgets: PLANLLM_TIME_SCALE when set, else the machine's load per core when this was first
    called (1-minute load average, at least 1, at most MAX_AUTOMATIC_TIME_SCALE). Read once, so
    load that a test adds on purpose does not stretch its own budget."""
    given = os.environ.get(TIME_SCALE_VARIABLE, "").strip()
    if given:
        try:
            value = float(given)
        except ValueError:
            value = 0.0  # refused below
        if not value > 0.0:
            raise ValueError(f"{TIME_SCALE_VARIABLE} must be a positive number, got {given!r}")
        return value
    load_per_core = os.getloadavg()[0] / (os.cpu_count() or 1)
    return min(MAX_AUTOMATIC_TIME_SCALE, max(1.0, load_per_core))


def scaled(seconds: float) -> float:
    """`seconds` on a quiet machine, as a bound here (see time_scale)."""
    return seconds * time_scale()
