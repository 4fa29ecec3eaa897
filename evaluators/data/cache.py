"""A content-addressed on-disk cache of generated datasets, shared by every trial on a machine.

An entry is keyed by a hash of everything that determines its arrays (task fields, generator version, split, size,
seed). It is written once, to a temporary folder renamed into place, under a file lock, so concurrent trials that
ask for the same data wait for the first one instead of generating it again; afterwards every reader memory-maps the
same .npy files, so N trials on a machine share one copy in the page cache. Reading an entry marks it used; with a
size limit ($ATTNAS_CACHE_LIMIT, or `attnas cache --limit`) the least recently used entries are removed.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from attnas.evaluators.data.synthetic import SyntheticTask, TaskData
from attnas.search_space import AttnasError

ENV_VAR = "ATTNAS_CACHE_DIR"
LIMIT_VAR = "ATTNAS_CACHE_LIMIT"
_UNITS = {"": 1, "K": 2 ** 10, "M": 2 ** 20, "G": 2 ** 30, "T": 2 ** 40}


@dataclass(frozen=True)
class CacheEntry:
    """One complete cache entry: its folder, size on disk, last use (epoch seconds) and what it holds."""

    path: Path
    bytes: int
    last_used: float
    description: dict[str, Any]


def parse_size(text: str, *, where: str = "cache size limit") -> int:
    """Bytes from a size such as 500M, 20G, 1.5T or 1000000."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", str(text), flags=re.IGNORECASE)
    if not match:
        raise AttnasError(f"{where}: expected a size such as 500M or 20G, got {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def cache_limit() -> int | None:
    """The size limit of the dataset cache: $ATTNAS_CACHE_LIMIT (e.g. 50G), or None (no limit)."""
    text = os.environ.get(LIMIT_VAR)
    return parse_size(text, where=f"${LIMIT_VAR}") if text else None


def _disk_bytes(folder: Path) -> int:
    """Space the files under `folder` take on disk (sparse files count what they use, not their length)."""
    return sum(p.stat().st_blocks * 512 for p in folder.rglob("*") if p.is_file())


def default_cache_dir() -> Path:
    """$ATTNAS_CACHE_DIR if set, else ~/.cache/attnas."""
    return Path(os.environ.get(ENV_VAR) or Path.home() / ".cache" / "attnas")


def cache_key(description: dict[str, Any]) -> str:
    """A stable 20-hex-digit name for a JSON-able description of some data."""
    text = json.dumps(description, sort_keys=True, default=list)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on `path` (created if missing), held for the with-block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class ArrayCache:
    """Named groups of numpy arrays on disk, built at most once per key and read back memory-mapped.

    `get_or_build(description, build)` returns {name: array}; `build()` runs only when no entry for `description`
    exists (`builds` counts how often that happened through this object).
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir() / "datasets"
        self.builds = 0

    def path(self, description: dict[str, Any]) -> Path:
        return self.root / cache_key(description)

    def get_or_build(self, description: dict[str, Any], build: Callable[[], dict[str, np.ndarray]]
                     ) -> dict[str, np.ndarray]:
        """The arrays stored under `description`, calling `build()` for them only if no entry exists yet."""

        def write(folder: Path) -> None:
            for name, array in build().items():
                np.save(folder / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)

        return self.get_or_write(description, write)

    def get_or_write(self, description: dict[str, Any], write: Callable[[Path], None], *,
                     resumable: bool = False) -> dict[str, np.ndarray]:
        """Like `get_or_build`, for data too big for memory: `write(folder)` saves .npy files into `folder` itself
        (e.g. through `np.lib.format.open_memmap`). `resumable`: `folder` is the same for every attempt at this
        key and survives an interruption, so `write` can continue what an interrupted attempt began."""
        folder = self.path(description)
        if not (folder / "meta.json").exists():
            with file_lock(folder.with_suffix(".lock")):
                if not (folder / "meta.json").exists():  # another process may have built it while we waited
                    self._write(folder, description, write, resumable=resumable)
            self.evict(cache_limit(), keep=folder)
        return self._read(folder)

    def _write(self, folder: Path, description: dict[str, Any], write: Callable[[Path], None], *,
               resumable: bool = False) -> None:
        self.builds += 1
        folder.parent.mkdir(parents=True, exist_ok=True)
        if resumable:
            tmp = folder.parent / f".{folder.name}.partial"
            tmp.mkdir(exist_ok=True)
        else:
            tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
        done = False
        try:
            write(tmp)
            names = sorted(p.stem for p in tmp.glob("*.npy"))
            # meta.json last: its presence marks a complete entry
            (tmp / "meta.json").write_text(json.dumps({"description": description, "arrays": names},
                                                      sort_keys=True, default=list, indent=1))
            if folder.exists():
                shutil.rmtree(folder)  # an incomplete entry left by a killed writer
            os.replace(tmp, folder)
            done = True
        finally:
            if not (resumable and not done):
                shutil.rmtree(tmp, ignore_errors=True)

    def _read(self, folder: Path) -> dict[str, np.ndarray]:
        meta = folder / "meta.json"
        names = json.loads(meta.read_text())["arrays"]
        os.utime(meta)  # "last used", for least-recently-used eviction
        return {name: np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False) for name in names}

    def entries(self) -> list[CacheEntry]:
        """The complete entries under this cache, least recently used first."""
        found = []
        for meta in self.root.glob("*/meta.json") if self.root.is_dir() else ():
            try:
                description = json.loads(meta.read_text()).get("description", {})
                used = meta.stat().st_mtime
            except (OSError, ValueError):
                continue
            found.append(CacheEntry(path=meta.parent, bytes=_disk_bytes(meta.parent), last_used=used,
                                    description=description))
        return sorted(found, key=lambda e: e.last_used)

    def evict(self, limit_bytes: int | None, *, keep: Path | None = None) -> list[CacheEntry]:
        """Remove least-recently-used entries until the cache holds at most `limit_bytes` (None: no limit); an
        entry being read keeps working (its files stay open). Returns the removed entries."""
        if limit_bytes is None:
            return []
        entries = self.entries()
        total = sum(e.bytes for e in entries)
        removed = []
        for entry in entries:
            if total <= limit_bytes:
                break
            if keep is not None and entry.path == keep:
                continue
            shutil.rmtree(entry.path, ignore_errors=True)
            total -= entry.bytes
            removed.append(entry)
        return removed


def cached_task_data(task: SyntheticTask, *, split: str, n: int, seed: int,
                     cache: ArrayCache | None) -> TaskData:
    """`task.generate(n, seed=seed, split=split)`, through `cache` when one is given (memory-mapped clips)."""
    if cache is None:
        return task.generate(n, seed=seed, split=split)
    description = {**task.key(), "split": split, "n": n, "seed": seed}

    def build() -> dict[str, np.ndarray]:
        data = task.generate(n, seed=seed, split=split)
        return {"clips": data.clips, "labels": data.labels, **{f"truth.{k}": v for k, v in data.truth.items()}}

    arrays = cache.get_or_build(description, build)
    truth = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("truth.")}
    return TaskData(arrays["clips"], arrays["labels"], truth)
