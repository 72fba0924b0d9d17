"""The rooms' import rules (docs/architecture.md), read from the source with `ast`: the model
imports no other room; the runtime never imports training or export; export never imports
training; the node's room never imports training or export; training never imports the node's
room; and the tools are reached only from the command line. Lazy imports inside functions count too."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRODUCT = ("planllm_ros", "training")  # the folders of product code; tests, launch files and the Makefile are not
# room -> modules no file under it may import
FORBIDDEN = {
    "planllm_ros/model": ("training", "planllm_ros.runtime", "planllm_ros.export", "planllm_ros.ros"),
    "planllm_ros/runtime": ("training", "planllm_ros.export", "planllm_ros.ros"),
    "planllm_ros/export": ("training", "planllm_ros.ros"),
    "planllm_ros/ros": ("training", "planllm_ros.export"),
    "training": ("planllm_ros.ros",),
}
TOOLS = "planllm_ros.tools"
# The only product code that may import the tools: the tools themselves and the two command tables.
TOOLS_IMPORTERS = ("planllm_ros/tools", "planllm_ros/cli.py", "training/cli/bench.py")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _is_under(name: str, module: str) -> bool:
    return name == module or name.startswith(module + ".")


def _inside(relative: str, place: str) -> bool:
    return relative == place or relative.startswith(place + "/")


def offences(root: Path) -> list[str]:
    """'FILE imports MODULE' for every import of the product code under `root` that breaks a rule."""
    found = []
    for path in sorted(p for folder in PRODUCT for p in (root / folder).rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        forbidden = [bad for room, bads in FORBIDDEN.items() if _inside(relative, room) for bad in bads]
        if not any(_inside(relative, place) for place in TOOLS_IMPORTERS):
            forbidden.append(TOOLS)
        found += [f"{relative} imports {name}" for name in sorted(imported_modules(path))
                  if any(_is_under(name, bad) for bad in forbidden)]
    return found


def test_the_rooms_follow_the_rules():
    assert offences(REPO) == []


def test_the_checker_sees_lazy_imports(tmp_path):
    source = tmp_path / "probe.py"
    source.write_text("def f():\n    from training.train.trainer import train\n    import planllm_ros.export.cli\n")
    assert imported_modules(source) == {"training.train.trainer", "planllm_ros.export.cli"}


def test_the_checker_reports_each_broken_rule(tmp_path):
    probes = {
        "planllm_ros/ros/probe.py": "import planllm_ros.tools.client\ndef f():\n    from training.tabletop import scenario\n",
        "planllm_ros/runtime/probe.py": "def f():\n    from planllm_ros.tools.env import ros_environment\n",
        "training/probe.py": "def f():\n    from planllm_ros.ros.image_conv import image_to_rgb\n",
        "training/benchmarks/probe.py": "import planllm_ros.tools.latency\n",
        "planllm_ros/paths_probe.py": "from planllm_ros.tools import bag\n",
        # allowed: the tools import the node's room and training, the command tables name the tools
        "planllm_ros/tools/probe.py": "from planllm_ros.ros.image_conv import rgb_to_image\nimport training.tabletop\n",
        "planllm_ros/cli.py": "import planllm_ros.tools.cli\n",
        "training/cli/bench.py": "import planllm_ros.tools.latency\n",
        "planllm_ros/ros/allowed.py": "from planllm_ros.runtime.planner import Planner\nfrom planllm_ros.model.config import ModelConfig\n",
    }
    for name, text in probes.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert offences(tmp_path) == [
        "planllm_ros/paths_probe.py imports planllm_ros.tools",
        "planllm_ros/ros/probe.py imports planllm_ros.tools.client",
        "planllm_ros/ros/probe.py imports training.tabletop",
        "planllm_ros/runtime/probe.py imports planllm_ros.tools.env",
        "training/benchmarks/probe.py imports planllm_ros.tools.latency",
        "training/probe.py imports planllm_ros.ros.image_conv",
    ]
