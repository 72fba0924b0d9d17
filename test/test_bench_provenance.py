"""Results come only from a commit: the dirty-tree check, the code version that keys cached
scores, and `planllm bench` refusing (or, with --allow-dirty, marking) a dirty tree, on real
temporary git repositories."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from training.benchmarks.report import REPO, DirtyTreeError, code_version, require_committed, uncommitted_files


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=repo,
                          check=True, capture_output=True, text=True).stdout.strip()


def _commit_all(repo: Path, message: str) -> str:
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "planllm_ros").mkdir(parents=True)
    (root / "training").mkdir()
    (root / "planllm_ros" / "a.py").write_text("A = 1\n")
    (root / "training" / "b.py").write_text("B = 2\n")
    (root / "README.md").write_text("readme\n")
    _git(root, "init", "-q")
    _commit_all(root, "first")
    return root


def test_clean_dirty_and_untracked(repo: Path) -> None:
    assert uncommitted_files(repo) == []
    require_committed(False, repo)
    (repo / "notes.txt").write_text("untracked files do not make a tree dirty\n")
    assert uncommitted_files(repo) == []
    (repo / "README.md").write_text("changed\n")
    assert uncommitted_files(repo) == ["README.md"]
    with pytest.raises(DirtyTreeError, match=r"1 tracked file\(s\) have uncommitted changes: README.md.*--allow-dirty"):
        require_committed(False, repo)
    require_committed(True, repo)


def test_not_a_checkout_is_not_clean(tmp_path: Path) -> None:
    assert uncommitted_files(tmp_path) is None
    with pytest.raises(DirtyTreeError, match="not a git checkout"):
        require_committed(False, tmp_path)
    assert code_version(tmp_path).startswith("unknown+")


def test_code_version_follows_commit_and_sources(repo: Path) -> None:
    first = code_version(repo)
    commit, digest = first.split("+")
    assert commit == _git(repo, "rev-parse", "HEAD") and re.fullmatch(r"[0-9a-f]{16}", digest)
    (repo / "README.md").write_text("not a source file\n")
    assert code_version(repo) == first
    (repo / "training" / "b.py").write_text("B = 3\n")
    edited = code_version(repo)
    assert edited.split("+")[0] == commit and edited != first, "an uncommitted source edit is another version"
    new_commit = _commit_all(repo, "second")
    assert code_version(repo) == f"{new_commit}+{edited.split('+')[1]}"


def _bench(checkout: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    """`planllm bench gpu` run from `checkout` (a copy of the package). With CUDA hidden it only
    writes its not-run file, so the run itself takes seconds."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run([sys.executable, "-m", "planllm_ros.cli", "bench", "gpu", "--out", str(out), *extra],
                          cwd=checkout, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_bench_refuses_a_dirty_tree_unless_allowed(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    for package in ("planllm_ros", "training"):
        shutil.copytree(REPO / package, checkout / package, ignore=shutil.ignore_patterns("__pycache__"))
    _git(checkout, "init", "-q")
    _commit_all(checkout, "copy")

    clean = _bench(checkout, tmp_path / "clean")
    assert clean.returncode == 0, clean.stderr
    header = (tmp_path / "clean" / "gpu.md").read_text()
    assert f"- code version: {code_version(checkout)}" in header and "NOT FROM A COMMIT" not in header

    edited = checkout / "training" / "benchmarks" / "stats.py"
    edited.write_text(edited.read_text() + "\n")
    refused = _bench(checkout, tmp_path / "refused")
    assert refused.returncode == 2 and "uncommitted changes: training/benchmarks/stats.py" in refused.stderr
    assert "--allow-dirty" in refused.stderr and not (tmp_path / "refused").exists()

    allowed = _bench(checkout, tmp_path / "allowed", "--allow-dirty")
    assert allowed.returncode == 0, allowed.stderr
    header = (tmp_path / "allowed" / "gpu.md").read_text()
    assert "--allow-dirty" in header and "- **NOT FROM A COMMIT**: uncommitted changes in training/benchmarks/stats.py" in header
