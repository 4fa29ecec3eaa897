"""A fingerprint of the files a dataset is read from, for cache keys of things built from the data (the pretrained
backbone): adding a class folder, or changing, adding or removing a video or annotation file, changes it."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any


def data_fingerprint(data: Any) -> str | None:
    """For a `DataConfig` with `video_root`: a hash of every file's relative path, size and modification time under
    the root, the split folder and the annotation file (hidden files aside, symlinked folders followed). None for
    synthetic data, which its config alone determines."""
    if getattr(data, "video_root", None) is None:
        return None
    digest = hashlib.sha256()
    for place in (data.video_root, data.video_split_dir, data.video_annotations):
        if place is None:
            continue
        digest.update(f"[{Path(place).resolve()}]\n".encode())
        for name, size, mtime in _files(Path(place)):
            digest.update(f"{name}\t{size}\t{mtime}\n".encode())
    return digest.hexdigest()[:20]


def walk_files(root: Path, *, onerror=None) -> list[Path]:
    """Every file under `root`, sorted, following symlinked folders (each real folder once: links that loop are
    harmless), skipping hidden files and folders (.ipynb_checkpoints, .DS_Store)."""
    found, seen = [], set()
    for folder, dirs, files in os.walk(root, followlinks=True, onerror=onerror):
        real = os.path.realpath(folder)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(folder) / name for name in files if not name.startswith(".")]
    return sorted(found)


def _files(place: Path) -> list[tuple[str, int, int]]:
    found = []
    for path in [place] if place.is_file() else walk_files(place):
        try:
            info = path.stat()
        except OSError:
            continue
        found.append((path.name if path == place else str(path.relative_to(place)), info.st_size, info.st_mtime_ns))
    return found
