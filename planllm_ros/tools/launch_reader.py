"""Start nodes exactly as launch/planllm.launch.xml says, without the `launch` package.

`launch`/`launch_ros` do not install from PyPI, yet tests and the demo
must run the node the way `ros2 launch` would. This reads the XML's <arg>, <node>, <param>
and <remap> elements and builds the equivalent
`python -m MODULE --ros-args -r __node:=... -r __ns:=... --params-file ... -p ... -r ...`
command line. Only the substitutions our launch file uses are understood ($(var NAME),
$(find-pkg-share PACKAGE)); anything else is an error naming the file, never silently kept.
"""
from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

from planllm_ros.paths import PACKAGE, share_dir

SUBSTITUTION = re.compile(r"\$\(([\w-]+)\s*([^)]*)\)")


def default_launch_file() -> Path:
    return share_dir() / "launch" / "planllm.launch.xml"


@dataclass
class NodeLaunch:
    """One <node> element with every substitution resolved."""

    package: str
    executable: str
    name: str = ""
    namespace: str = ""
    params_files: list[str] = field(default_factory=list)
    params: list[tuple[str, str]] = field(default_factory=list)
    remaps: list[tuple[str, str]] = field(default_factory=list)

    def ros_args(self) -> list[str]:
        args = ["--ros-args"]
        if self.name:
            args += ["-r", f"__node:={self.name}"]
        if self.namespace:
            args += ["-r", f"__ns:={self.namespace}"]
        for path in self.params_files:
            args += ["--params-file", path]
        for name, value in self.params:
            # rcl parses -p values as YAML and rejects an empty one: '' is the empty string.
            args += ["-p", f"{name}:={value if value else chr(39) * 2}"]
        for source, target in self.remaps:
            args += ["-r", f"{source}:={target}"]
        return args

    def command(self, python: str = sys.executable) -> list[str]:
        """The command line that runs this node in `python` (the venv's: the ROS wheels need it)."""
        return [python, "-m", executable_module(self.package, self.executable), *self.ros_args()]


def executable_module(package: str, executable: str) -> str:
    """The module behind a console script of our package (e.g. planner_node)."""
    if package != PACKAGE:
        raise ValueError(f"cannot start {package}/{executable}: only {PACKAGE} executables are known here")
    for script in entry_points(group="console_scripts", name=executable):
        if script.module.startswith(f"{PACKAGE}."):
            return script.module
    raise ValueError(f"{PACKAGE} has no console script {executable!r} (is the package installed? `make install`)")


def _substitute(text: str, variables: dict[str, str], source: Path) -> str:
    def replace(match: re.Match[str]) -> str:
        kind, argument = match.group(1), match.group(2).strip()
        if kind == "var":
            if argument not in variables:
                raise ValueError(f"{source}: $(var {argument}) names no <arg> declared before it")
            return variables[argument]
        if kind == "find-pkg-share" and argument == PACKAGE:
            return str(share_dir())
        raise ValueError(f"{source}: unsupported substitution {match.group(0)}")

    return SUBSTITUTION.sub(replace, text)


def _namespace(value: str) -> str:
    value = value.strip().rstrip("/")
    return value if not value or value.startswith("/") else f"/{value}"


def read_launch(path: str | Path | None = None, arguments: dict[str, str] | None = None) -> list[NodeLaunch]:
    """The nodes `path` (default: our launch file) starts, given launch `arguments`."""
    source = Path(path) if path else default_launch_file()
    try:
        root = ET.parse(source).getroot()
    except (OSError, ET.ParseError) as error:
        raise ValueError(f"{source}: cannot read the launch file ({error})") from error
    if root.tag != "launch":
        raise ValueError(f"{source}: root element is <{root.tag}>, expected <launch>")
    given = dict(arguments or {})
    declared = {arg.get("name") for arg in root.iter("arg")}
    unknown = sorted(set(given) - declared)
    if unknown:
        raise ValueError(
            f"{source}: unknown launch argument(s) {', '.join(unknown)}; declared: {', '.join(sorted(declared))}"
        )
    variables: dict[str, str] = {}
    nodes: list[NodeLaunch] = []
    for element in root:
        if element.tag == "arg":
            name = element.get("name", "")
            if name in given:
                variables[name] = given[name]
            elif element.get("default") is not None:
                variables[name] = _substitute(element.get("default", ""), variables, source)
            else:
                raise ValueError(f"{source}: launch argument {name!r} has no default and was not given")
        elif element.tag == "node":
            nodes.append(_read_node(element, variables, source))
        else:
            raise ValueError(f"{source}: unsupported element <{element.tag}> (only <arg> and <node> are read)")
    return nodes


def _read_node(element: ET.Element, variables: dict[str, str], source: Path) -> NodeLaunch:
    def attr(child: ET.Element, name: str) -> str:
        return _substitute(child.get(name, ""), variables, source)

    node = NodeLaunch(
        package=attr(element, "pkg"),
        executable=attr(element, "exec"),
        name=attr(element, "name"),
        namespace=_namespace(attr(element, "namespace")),
    )
    for child in element:
        if child.tag == "param" and child.get("from") is not None:
            node.params_files.append(attr(child, "from"))
        elif child.tag == "param":
            node.params.append((attr(child, "name"), attr(child, "value")))
        elif child.tag == "remap":
            node.remaps.append((attr(child, "from"), attr(child, "to")))
        else:
            raise ValueError(f"{source}: unsupported element <{child.tag}> inside <node>")
    return node
