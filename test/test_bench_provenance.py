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


def test_a_model_folder_records_the_commit_that_trained_it(repo: Path, tmp_path: Path) -> None:
    """The training record names the commit and, when the tree was dirty, the changed files; the
    card and the benchmark tables describe it in those words, and a folder without a record (a
    model trained before records existed) says "not recorded" instead of guessing."""
    from planllm_ros.export.model_card import describe_training, read_training_record
    from training.train.logging_utils import training_record, write_training_record

    commit = _git(repo, "rev-parse", "HEAD")
    clean = training_record(repo)
    assert clean["commit"] == commit and clean["uncommitted"] == [] and clean["code_version"] == code_version(repo)
    (repo / "training" / "b.py").write_text("B = 3\n")
    dirty = training_record(repo)
    assert dirty["commit"] == commit and dirty["uncommitted"] == ["training/b.py"]
    assert dirty["code_version"] != clean["code_version"]  # the sources on disk differ from the commit's
    model = tmp_path / "model"
    model.mkdir()
    assert read_training_record(model) is None and describe_training(None) == "not recorded"
    write_training_record(model, dirty)
    assert read_training_record(model) == dirty
    assert describe_training(dirty) == f"{commit[:7]} with uncommitted changes in training/b.py"
    assert describe_training(clean) == commit[:7]
    outside = training_record(tmp_path / "model")  # not a checkout: no commit to name
    assert outside["commit"] is None and outside["uncommitted"] is None and describe_training(outside) == "not recorded"


def test_a_resumed_run_names_the_code_of_every_part(repo: Path) -> None:
    """A run resumed from a checkpoint that other code wrote names that code too; resumed by the
    same code it reads like a run trained in one go; a checkpoint from before checkpoints kept
    their records says the earlier part is unrecorded."""
    from planllm_ros.export.model_card import describe_training
    from training.train.logging_utils import training_record

    first = training_record(repo)
    (repo / "training" / "b.py").write_text("B = 4\n")
    second_commit = _commit_all(repo, "second")
    second = training_record(repo)
    assert describe_training({**second, "earlier_segments": [first]}) == (
        f"{second_commit[:7]} (resumed from a checkpoint trained at {first['commit'][:7]})")
    assert describe_training({**second, "earlier_segments": [second, second]}) == second_commit[:7]
    assert describe_training({**second, "earlier_segments": [{"note": "an unrecorded commit"}]}) == (
        f"{second_commit[:7]} (resumed from a checkpoint trained at an unrecorded commit)")
