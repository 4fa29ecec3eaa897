"""`attnas cache`: what the machine's cache holds (decoded datasets, pretrained backbones, frozen-front features),
and clearing it, all or down to a size (least recently used datasets first)."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from attnas.evaluators.data.cache import ArrayCache, default_cache_dir, parse_size


def cache_lines(root: Path) -> list[str]:
    """One line per entry (least recently used first) and a total."""
    datasets = ArrayCache(root / "datasets").entries()
    backbones = sorted((root / "backbones").glob("*.pt")) if (root / "backbones").is_dir() else []
    features = sorted(p for p in (root / "features").iterdir() if p.is_dir()) if (root / "features").is_dir() else []
    feature_bytes = {p: sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) for p in features}
    total = (sum(e.bytes for e in datasets) + sum(p.stat().st_size for p in backbones)
             + sum(feature_bytes.values()))
    lines = [f"cache {root}: {len(datasets)} datasets, {len(backbones)} pretrained backbones, "
             f"{len(features)} frozen-front feature sets, {_size(total)}"]
    for entry in datasets:
        lines.append(f"  {_size(entry.bytes):>9}  used {_ago(entry.last_used):>9}  {entry.path.name}  "
                     f"{_what(entry.description)}")
    for path in backbones:
        lines.append(f"  {_size(path.stat().st_size):>9}  used {_ago(path.stat().st_mtime):>9}  {path.stem}  "
                     "pretrained backbone")
    for path in features:
        lines.append(f"  {_size(feature_bytes[path]):>9}  used {_ago(path.stat().st_mtime):>9}  {path.name}  "
                     "frozen-front features")
    return lines


def clear_cache(root: Path, limit: str | None) -> str:
    """Remove every entry (limit None), or least-recently-used dataset entries until the cache fits `limit`."""
    cache = ArrayCache(root / "datasets")
    if limit is None:
        count = len(cache.entries())
        for folder in (root / "datasets", root / "backbones", root / "features"):
            shutil.rmtree(folder, ignore_errors=True)
        return f"cleared {root} ({count} datasets, every pretrained backbone and frozen-front feature set)"
    removed = cache.evict(parse_size(limit, where="--limit"))
    return f"removed {len(removed)} least recently used datasets ({_size(sum(e.bytes for e in removed))})"


def _what(description: dict) -> str:
    if description.get("dataset") == "video_folder":
        files = description.get("files") or []
        return f"videos {description.get('layout')} {description.get('split')} ({len(files)} files)"
    return f"synthetic {description.get('task', description.get('name', '?'))} {description.get('split', '')}"


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _ago(stamp: float) -> str:
    seconds = max(0.0, time.time() - stamp)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"


def default_root(folder: str | None) -> Path:
    return Path(folder) if folder else default_cache_dir()
