"""Where installed data lives: the share directory holding config/, launch/ and models/.

Installed with colcon, these live under `share/planllm_ros` (found through ament_index);
installed with `pip install -e .` from a checkout, they are the checkout's own folders.
"""
from __future__ import annotations

from pathlib import Path

PACKAGE = "planllm_ros"
_CHECKOUT = Path(__file__).resolve().parents[1]


def share_dir() -> Path:
    """The folder holding package.xml, config/, launch/ and models/."""
    if (_CHECKOUT / "package.xml").is_file():
        return _CHECKOUT
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(PACKAGE))
    except (ImportError, LookupError) as error:  # PackageNotFoundError is a LookupError
        raise FileNotFoundError(
            f"cannot find the {PACKAGE} share directory: not a source checkout and not found "
            "through ament_index (source your workspace's install/setup.bash)"
        ) from error


def config_file(name: str) -> Path:
    return share_dir() / "config" / name


def models_dir() -> Path:
    return share_dir() / "models"
