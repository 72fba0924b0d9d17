"""planllm_ros/ros/params.py is the one source of the node's parameter defaults: the shipped
params file and both launch files leave each parameter to it or hold exactly its default, and
every launch argument either sets the parameter of its name or is one of the node's own
(namespace, topic remaps, params file)."""
from __future__ import annotations

import importlib.util
import xml.etree.ElementTree as ET
from types import ModuleType
from typing import Any

import yaml

from conftest import REPO
from planllm_ros.ros.params import SPECS
from planllm_ros.tools.launch_reader import read_launch

LAUNCH_XML = REPO / "launch" / "planllm.launch.xml"
LAUNCH_PY = REPO / "launch" / "planllm.launch.py"
PARAMS_FILE = REPO / "config" / "planllm.yaml"
NODE_ARGUMENTS = {"namespace", "image", "goal_image", "params_file"}  # launch arguments that are not parameters


def _launch_py() -> ModuleType:
    spec = importlib.util.spec_from_file_location("planllm_launch", LAUNCH_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _as_received(text: str, default: Any) -> Any:
    """A launch file's `-p name:=text` as the node receives it: string parameters take the text
    as it is (launch_reader quotes an empty one), others are parsed as YAML, as rcl does."""
    return text if isinstance(default, str) else yaml.safe_load(text)


def _xml_arguments() -> dict[str, str]:
    return {arg.get("name"): arg.get("default") for arg in ET.parse(LAUNCH_XML).getroot().iter("arg")}


def test_params_file_holds_exactly_the_defaults() -> None:
    values = yaml.safe_load(PARAMS_FILE.read_text())["/**"]["ros__parameters"]
    assert set(values) <= set(SPECS), f"not parameters of the node: {sorted(set(values) - set(SPECS))}"
    for name, value in values.items():
        default = SPECS[name].default
        assert type(value) is type(default) and value == default, f"{name}: {value!r} in {PARAMS_FILE}, default {default!r}"
    (node,) = read_launch()
    from_launch = {name for name, _ in node.params}
    assert not set(values) & from_launch, "the launch file's value would silently replace the params file's"
    assert set(values) | from_launch == set(SPECS), "every parameter appears in the params file or the launch file"
    assert node.params_files == [str(PARAMS_FILE)]


def test_launch_xml_parameters_default_to_the_node_defaults() -> None:
    (node,) = read_launch()  # every launch argument at its default
    assert node.params, "the launch file sets no parameter"
    for name, text in node.params:
        assert name in SPECS, f"<param name={name!r}> is not a parameter of the node"
        assert _as_received(text, SPECS[name].default) == SPECS[name].default, (name, text)
    for element in ET.parse(LAUNCH_XML).getroot().iter("param"):
        if element.get("name") is not None:
            assert element.get("value") == f"$(var {element.get('name')})", "a parameter takes the argument of its name"
    assert set(_xml_arguments()) == {name for name, _ in node.params} | NODE_ARGUMENTS


def test_launch_py_declares_the_xml_arguments_with_the_same_defaults() -> None:
    launch_py, xml_arguments = _launch_py(), _xml_arguments()
    assert set(launch_py.ARGUMENTS) | {"params_file"} == set(xml_arguments)
    for name, (default, _) in launch_py.ARGUMENTS.items():
        assert default == xml_arguments[name], (name, default, xml_arguments[name])
    (node,) = read_launch()
    assert set(launch_py.PARAMETER_ARGUMENTS) == {name for name, _ in node.params}
    for name in launch_py.PARAMETER_ARGUMENTS:  # a launch argument is text: as the node receives it
        assert _as_received(launch_py.ARGUMENTS[name][0], SPECS[name].default) == SPECS[name].default, name
