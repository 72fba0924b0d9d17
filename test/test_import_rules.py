"""The rooms' import rules (docs/architecture.md), read from the source with `ast`: the model
imports no other room, the runtime never imports training or export, export never imports
training. Lazy imports inside functions count too."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "planllm_ros"
FORBIDDEN = {
    "model": ("training", "planllm_ros.runtime", "planllm_ros.export", "planllm_ros.ros"),
    "runtime": ("training", "planllm_ros.export", "planllm_ros.ros"),
    "export": ("training", "planllm_ros.ros"),
}


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_room_imports_follow_the_rules(room):
    offences = [f"{path.relative_to(PACKAGE.parent)} imports {name}"
                for path in sorted((PACKAGE / room).rglob("*.py")) for name in sorted(imported_modules(path))
                if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[room])]
    assert offences == []


def test_the_checker_sees_lazy_imports(tmp_path):
    source = tmp_path / "probe.py"
    source.write_text("def f():\n    from training.trainer import train\n    import planllm_ros.export.cli\n")
    assert imported_modules(source) == {"training.trainer", "planllm_ros.export.cli"}
