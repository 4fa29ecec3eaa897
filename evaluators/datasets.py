"""The splits a trial trains and scores on, built once per machine (on-disk cache) and once per process (memo)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from attnas.evaluators.config import DataConfig
from attnas.evaluators.data.cache import ArrayCache, cached_task_data, default_cache_dir
from attnas.evaluators.data.synthetic import TaskData, create_task
from attnas.evaluators.data.video_folder import VideoFolder
from attnas.search_space import AttnasError


@dataclass(frozen=True)
class Splits:
    """Train, validation and test data of one dataset, with its number of classes and clip shape (C, T, H, W)."""

    train: TaskData
    validation: TaskData
    test: TaskData
    num_classes: int
    clip_shape: tuple[int, int, int, int]
    skipped: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # split -> (video, reason) skipped

    def split(self, name: str) -> TaskData:
        if name not in ("train", "validation", "test"):
            raise AttnasError(f"unknown split {name!r}; expected train, validation or test")
        return getattr(self, name)


_MEMO: dict[str, Splits] = {}


def load_splits(config: DataConfig) -> Splits:
    """The three splits `config` describes; the first call on a machine generates (or decodes) and caches them,
    later calls memory-map the cache, and later calls in the same process return the same arrays."""
    key = json.dumps(asdict(config), sort_keys=True, default=list)
    if key not in _MEMO:
        _MEMO[key] = _build(config)
    return _MEMO[key]


def _build(config: DataConfig) -> Splits:
    cache = None
    if config.use_cache:
        root = Path(config.cache_dir) if config.cache_dir else default_cache_dir()
        cache = ArrayCache(root / "datasets")
    if config.video_root is not None:
        folder = video_folder(config, cache=cache)
        parts = {name: folder.load(name) for name in ("train", "validation", "test")}
        return Splits(**parts, num_classes=folder.num_classes, clip_shape=folder.clip_shape,
                      skipped=dict(folder.skipped))
    task = create_task(config.task, **config.fields)
    sizes = {"train": config.train_size, "validation": config.validation_size, "test": config.test_size}
    parts = {name: cached_task_data(task, split=name, n=n, seed=config.seed, cache=cache) for name, n in sizes.items()}
    return Splits(**parts, num_classes=task.num_classes, clip_shape=task.clip_shape)


def video_folder(config: DataConfig, *, cache: ArrayCache | None = None) -> VideoFolder:
    """The `VideoFolder` that `config` (with `video_root` set) describes, reading and writing `cache`."""
    return VideoFolder(config.video_root, layout=config.video_layout, sampling=config.sampling,
                       fold=config.video_fold, validation_fraction=config.video_validation_fraction,
                       split_dir=config.video_split_dir, annotations=config.video_annotations, cache=cache,
                       drop_empty_classes=config.drop_empty_classes, workers=config.video_workers)


def clear_memo() -> None:
    """Forget the splits loaded in this process (tests use it to observe the on-disk cache)."""
    _MEMO.clear()
