"""AttnBench: a tabular benchmark of attention cells, its space, its cells in build order, and its table format.

The space is the shipped search space `attnbench` (experiments/configs/spaces/attnbench.yaml, a subset of the
default space); `enumerate_cells` lists its distinct cells (distinct canonical hashes) sorted by hash, the order the
build job (benchmarks/attnbench_build.py) trains them in, so that it can be sharded and resumed.

The table is one gzip'd JSON file (pure Python here: controllers and the simulated evaluator read it without torch):

    {"format": "attnas.attnbench", "version": 1,
     "meta": {"build_command", "settings" (proxy config, seeds, space), "software", "date",
              "cells_in_space", "cells", "seeds", "epochs", "complete"},
     "cells": [{"hash", "cell" (the spec as a dict), "macs", "params",
                "runs": [{"seed", "curve" (validation top-1 after each epoch), "top1", "test_top1",
                          "trial_seconds"}, ...]}, ...]}   # sorted by hash

`load_table("attnbench")` reads the table shipped in the package (search_space/data/attnbench.json.gz), any other
argument is a path. A table may be partial (a build stopped early): `AttnBenchTable.describe()` says how many of the
space's cells it holds, and `record(hash)` raises `TableError` naming the file for a cell it lacks.
"""
from __future__ import annotations

import gzip
import json
import os
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Mapping

from attnas.search_space.errors import AttnasError
from attnas.search_space.resources import package_folder

SPACE_NAME = "attnbench"
TABLE_NAME = "attnbench"
TABLE_FORMAT = "attnas.attnbench"
TABLE_VERSION = 1
TABLE_FILE = "attnbench.json.gz"
BUILD_COMMAND = "python benchmarks/attnbench_build.py build --background && python benchmarks/attnbench_build.py pack"


class TableError(AttnasError):
    """An AttnBench table that is missing, unreadable, or lacks a cell asked for (one line: file, field, expected)."""


def shipped_table_path() -> Path:
    """Where the package keeps the AttnBench table (the file may not exist: the table is not built yet)."""
    return package_folder("attnas.search_space") / "data" / TABLE_FILE


def attnbench_space():
    """The AttnBench search space (a `SearchSpace`)."""
    from attnas.search_space import load_space

    return load_space(SPACE_NAME)


def enumerate_cells(space=None) -> list:
    """Every distinct cell of `space` (default: AttnBench's), one per canonical hash, sorted by hash."""
    from attnas.search_space.spec import unique_cells

    space = space if space is not None else attnbench_space()
    cells = unique_cells(space.enumerate())
    by_hash = {cell.hash: cell for cell in cells}
    if len(by_hash) != len(cells):  # two non-isomorphic cells sharing a hash would share a row of the table
        raise AttnasError(f"space {space.name!r}: {len(cells)} distinct cells but {len(by_hash)} distinct hashes")
    return [by_hash[digest] for digest in sorted(by_hash)]


@dataclass(frozen=True)
class CellRecord:
    """One cell of the table: its spec, costs and one run per seed (see the module docstring)."""

    hash: str
    cell: Mapping[str, Any]
    macs: float | None
    params: float | None
    runs: tuple[Mapping[str, Any], ...]

    def _mean(self, values: Iterable[float | None]) -> float | None:
        values = [v for v in values if v is not None]
        return sum(values) / len(values) if values else None

    @property
    def accuracy(self) -> float | None:
        """Final validation top-1, mean over seeds."""
        return self._mean(run.get("top1") for run in self.runs)

    @property
    def test_accuracy(self) -> float | None:
        """Test top-1, mean over seeds."""
        return self._mean(run.get("test_top1") for run in self.runs)

    @property
    def trial_seconds(self) -> float | None:
        """Wall seconds of one trial, mean over seeds."""
        return self._mean(run.get("trial_seconds") for run in self.runs)

    @property
    def curve(self) -> list[float]:
        """Validation top-1 after each epoch, mean over seeds (the last entry is `accuracy`)."""
        curves = [run["curve"] for run in self.runs if run.get("curve")]
        length = min((len(c) for c in curves), default=0)
        return [sum(c[e] for c in curves) / len(curves) for e in range(length)]


@dataclass(frozen=True)
class AttnBenchTable:
    """An AttnBench table as read from its file: `meta` and one `CellRecord` per cell, keyed by hash."""

    path: str
    meta: Mapping[str, Any]
    records: Mapping[str, CellRecord]

    @property
    def epochs(self) -> int:
        return int(self.meta.get("epochs", 0))

    @property
    def space_size(self) -> int | None:
        return self.meta.get("cells_in_space")

    @property
    def complete(self) -> bool:
        """Whether the table holds every cell of its space."""
        return self.space_size is not None and len(self.records) >= self.space_size

    def describe(self) -> str:
        """One line: how much of the space the table holds, and how it was built."""
        of = f"of the space's {self.space_size:,}" if self.space_size else "(space size unknown)"
        state = "complete" if self.complete else "PARTIAL"
        return (f"{self.path}: {state} AttnBench table, {len(self.records):,} cells {of}, seeds "
                f"{self.meta.get('seeds')}, {self.epochs} epochs, built {self.meta.get('date', '?')}")

    def record(self, digest: str) -> CellRecord:
        """The record of the cell with hash `digest`; TableError naming the file when the table lacks it."""
        found = self.records.get(digest)
        if found is None:
            raise TableError(f"{self.path}: cells: no cell with hash {digest} (the table holds "
                             f"{len(self.records):,} of the space's {self.space_size or '?'} cells); expected a cell "
                             f"of the table")
        return found

    @cached_property
    def best(self) -> CellRecord:
        """The cell with the highest mean validation accuracy (the first by hash among equals)."""
        return max(sorted(self.records.values(), key=lambda r: r.hash), key=lambda r: r.accuracy or 0.0)


def resolve_table_path(name_or_path: str | os.PathLike) -> Path:
    """`attnbench` is the shipped table; anything else a path."""
    return shipped_table_path() if str(name_or_path) == TABLE_NAME else Path(name_or_path)


_CACHE: dict[tuple[str, int], AttnBenchTable] = {}


def load_table(name_or_path: str | os.PathLike = TABLE_NAME) -> AttnBenchTable:
    """Read an AttnBench table (`attnbench`: the shipped one), offline; TableError saying what is wrong. Tables
    are cached per process by path and modification time (a trial process replays many cells)."""
    path = resolve_table_path(name_or_path)
    if not path.is_file():
        if str(name_or_path) == TABLE_NAME:
            raise TableError(f"{path}: the AttnBench table is not built yet; build it with `{BUILD_COMMAND}` "
                             f"(docs/attnbench.md)")
        raise TableError(f"{path}: no such AttnBench table file; expected a table written by "
                         f"`benchmarks/attnbench_build.py pack`, or `attnbench` for the shipped one")
    key = (str(path.resolve()), path.stat().st_mtime_ns)
    if key not in _CACHE:
        _CACHE[key] = _read(path)
    return _CACHE[key]


def _read(path: Path) -> AttnBenchTable:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, EOFError, ValueError) as error:
        raise TableError(f"{path}: not a gzip'd JSON AttnBench table ({error})") from None
    if not isinstance(data, dict) or data.get("format") != TABLE_FORMAT:
        raise TableError(f"{path}: format: expected {TABLE_FORMAT!r}")
    if data.get("version") != TABLE_VERSION:
        raise TableError(f"{path}: version: {data.get('version')!r} is not supported; expected {TABLE_VERSION}")
    records = {}
    for index, item in enumerate(data.get("cells") or []):
        try:
            records[item["hash"]] = CellRecord(hash=item["hash"], cell=item["cell"], macs=item.get("macs"),
                                               params=item.get("params"), runs=tuple(item["runs"]))
        except (KeyError, TypeError):
            raise TableError(f"{path}: cells[{index}]: expected a mapping with hash, cell and runs") from None
    return AttnBenchTable(path=str(path), meta=dict(data.get("meta") or {}), records=records)


def write_table(path: str | os.PathLike, *, meta: Mapping[str, Any], cells: Iterable[Mapping[str, Any]]) -> Path:
    """Write a table (cells as in the module docstring, sorted here by hash) atomically; returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"format": TABLE_FORMAT, "version": TABLE_VERSION, "meta": dict(meta),
            "cells": sorted(cells, key=lambda c: c["hash"])}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".attnbench.", suffix=".json.gz")
    try:
        with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as handle:
            handle.write(json.dumps(data, sort_keys=True).encode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
