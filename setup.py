"""ament_python build for planllm_ros: works with `pip install -e .` and with `colcon build`."""
from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "planllm_ros"


def tree(folder: str) -> list[tuple[str, list[str]]]:
    """data_files entries that install `folder` (recursively) under share/planllm_ros/."""
    entries: dict[str, list[str]] = {}
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            entries.setdefault(f"share/{PACKAGE}/{path.parent}", []).append(str(path))
    return sorted(entries.items())


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*", "training", "training.*"]),
    package_data={"training": ["configs/*.yaml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        *tree("launch"),
        *tree("config"),
        *tree("models"),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="planllm_ros developers",
    maintainer_email="planllm-ros@example.org",
    description="PlanLLM video procedure planning for ROS 2, with its trainer.",
    license="Apache-2.0",
    python_requires=">=3.10",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "planllm = planllm_ros.cli:main",
            "planner_node = planllm_ros.ros.planner_node:main",
        ],
    },
)
