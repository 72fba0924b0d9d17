"""The one place that says how every planllm_ros ROS process is started on our machines.

Without these settings Fast DDS multicasts discovery onto every network interface (this ROS
release ignores ROS_LOCALHOST_ONLY), and its default shared-memory segment is too small for a
camera frame. Tests, the demo, the tools and scripts all build their environment here.
"""
from __future__ import annotations

import os
import random
from collections.abc import Mapping

from planllm_ros.paths import config_file

FASTDDS_PROFILE = "fastdds_shm.xml"
# Domain ids 1..100 stay clear of 0 (the default every stray ROS process uses) and of the
# ids whose ports overflow on Linux (> 101).
DOMAIN_ID_RANGE = (1, 100)


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
