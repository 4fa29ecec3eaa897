"""A content-addressed on-disk cache of generated datasets, shared by every trial on a machine.

An entry is keyed by a hash of everything that determines its arrays (task fields, generator version, split, size,
seed). It is written once, to a temporary folder renamed into place, under a file lock, so concurrent trials that
ask for the same data wait for the first one instead of generating it again; afterwards every reader memory-maps the
same .npy files, so N trials on a machine share one copy in the page cache.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from attnas.evaluators.data.synthetic import SyntheticTask, TaskData

ENV_VAR = "ATTNAS_CACHE_DIR"


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

    def get_or_write(self, description: dict[str, Any], write: Callable[[Path], None]) -> dict[str, np.ndarray]:
        """Like `get_or_build`, for data too big for memory: `write(folder)` saves .npy files into `folder` itself
        (e.g. through `np.lib.format.open_memmap`)."""
        folder = self.path(description)
        if not (folder / "meta.json").exists():
            with file_lock(folder.with_suffix(".lock")):
                if not (folder / "meta.json").exists():  # another process may have built it while we waited
                    self._write(folder, description, write)
        return self._read(folder)

    def _write(self, folder: Path, description: dict[str, Any], write: Callable[[Path], None]) -> None:
        self.builds += 1
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
        try:
            write(tmp)
            names = sorted(p.stem for p in tmp.glob("*.npy"))
            # meta.json last: its presence marks a complete entry
            (tmp / "meta.json").write_text(json.dumps({"description": description, "arrays": names},
                                                      sort_keys=True, default=list, indent=1))
            if folder.exists():
                shutil.rmtree(folder)  # an incomplete entry left by a killed writer
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _read(self, folder: Path) -> dict[str, np.ndarray]:
        names = json.loads((folder / "meta.json").read_text())["arrays"]
        return {name: np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False) for name in names}


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
