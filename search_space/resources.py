"""Where the shipped reference cells (cells/zoo/) and search spaces (experiments/configs/spaces/) live.

Found next to this package rather than through importlib on `cells`, so that reading a YAML file never imports
torch.
"""
from __future__ import annotations

from pathlib import Path

from search_space.errors import SpecError

ROOT = Path(__file__).resolve().parent.parent
ZOO = ROOT / "cells" / "zoo"
SPACES = ROOT / "experiments" / "configs" / "spaces"


def zoo_names() -> list[str]:
    return sorted(p.stem for p in ZOO.glob("*.yaml"))


def space_names() -> list[str]:
    return sorted(p.stem for p in SPACES.glob("*.yaml"))


def zoo_path(name: str) -> Path:
    """Path of a reference cell shipped in cells/zoo/ (non_local, double_attention, ...)."""
    return _lookup(ZOO, name, zoo_names(), "reference cell")


def space_path(name: str) -> Path:
    """Path of a search space shipped in experiments/configs/spaces/ (default, small)."""
    return _lookup(SPACES, name, space_names(), "search space")


def _lookup(folder: Path, name: str, known: list[str], what: str) -> Path:
    if name not in known:
        raise SpecError(f"unknown {what} {name!r}; shipped: {', '.join(known)}")
    return folder / f"{name}.yaml"
