"""The package installs both ways the design asks: `pip install -e .` (this venv) and
`colcon build` in a ROS 2 workspace, with its console scripts and share/ data."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from planllm_ros.cli import SUBCOMMANDS, main

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_cli_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in ("data", "train", "eval", "export", "plan", "bench", "describe", "ros"):
        assert name in SUBCOMMANDS and name in out


def test_console_script_is_installed():
    out = subprocess.run([str(BIN / "planllm"), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "procedure planning" in out.stdout


def _tracked_tree(dest: Path) -> None:
    """Copy what a fresh clone would hold (tracked + untracked-not-ignored files)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


@pytest.mark.slow
def test_colcon_build_installs_scripts_and_share(tmp_path):
    colcon = BIN / "colcon"
    if not colcon.exists():
        pytest.skip("colcon is not installed in this environment")
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    _tracked_tree(tmp_path / "src" / "planllm_ros")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    build = subprocess.run([str(colcon), "build", "--event-handlers", "console_direct+"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=600, env=env)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    prefix = tmp_path / "install" / "planllm_ros"
    assert (prefix / "lib" / "planllm_ros" / "planner_node").is_file()  # where `ros2 run` looks
    assert (prefix / "lib" / "planllm_ros" / "planllm").is_file()
    share = prefix / "share" / "planllm_ros"
    assert (share / "package.xml").is_file()
    assert (share / "config" / "fastdds_shm.xml").is_file()
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / "planllm_ros").is_file()
    # Installed (not a checkout), the package finds its share directory through ament_index.
    site = next(prefix.glob("lib/python*/site-packages"))
    probe = subprocess.run(
        [sys.executable, "-c", "from planllm_ros.paths import share_dir; print(share_dir())"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**env, "PYTHONPATH": str(site), "AMENT_PREFIX_PATH": str(prefix)})
    assert probe.returncode == 0, probe.stderr
    assert Path(probe.stdout.strip()) == share
