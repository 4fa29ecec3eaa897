"""Where the shipped reference cells (attnas.cells' zoo/) and search spaces (attnas.experiments' configs/spaces/) live.

They are package data. The folders are located through the packages' import specs, which imports neither package,
so that reading a YAML file never imports torch (attnas.cells does); this holds for wheel and editable installs.
"""
from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from attnas.search_space.errors import SpecError


@cache
def package_folder(package: str) -> Path:
    """The folder holding `package`'s files, found without running its __init__."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SpecError(f"attnas is not installed completely: package {package} is missing")
    return Path(next(iter(spec.submodule_search_locations)))


def zoo_folder() -> Path:
    return package_folder("attnas.cells") / "zoo"


def spaces_folder() -> Path:
    return package_folder("attnas.experiments") / "configs" / "spaces"


def zoo_names() -> list[str]:
    return sorted(p.stem for p in zoo_folder().glob("*.yaml"))


def space_names() -> list[str]:
    return sorted(p.stem for p in spaces_folder().glob("*.yaml"))


def zoo_path(name: str) -> Path:
    """Path of a reference cell shipped in attnas.cells' zoo/ (non_local, double_attention, ...)."""
    return _lookup(zoo_folder(), name, zoo_names(), "reference cell")


def space_path(name: str) -> Path:
    """Path of a search space shipped in attnas.experiments' configs/spaces/ (default, small)."""
    return _lookup(spaces_folder(), name, space_names(), "search space")


def _lookup(folder: Path, name: str, known: list[str], what: str) -> Path:
    if name not in known:
        raise SpecError(f"unknown {what} {name!r}; shipped: {', '.join(known)}")
    return folder / f"{name}.yaml"
