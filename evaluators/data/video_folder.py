"""`VideoFolder`: real video datasets on disk (Kinetics, UCF-101, HMDB-51, a plain class folder tree), decoded once.

Layouts (`LAYOUTS`):
- `kinetics`: a CSV with columns label, youtube_id, time_start, time_end, split (the official annotation files,
  one per split or one for all), and videos anywhere under `root`, named `<youtube_id>_<start:06d>_<end:06d>.<ext>`
  (what the common downloaders write) or `<youtube_id>.<ext>`. CSV split `validate`/`val` is our "validation".
- `ucf101`: `classInd.txt`, `trainlist0K.txt`, `testlist0K.txt` (in `split_dir`, default `root/ucfTrainTestlist` or
  `root`) and videos at `root/<Class>/<video>.avi`. UCF-101 has no validation list: a fixed fraction of each class's
  training videos (chosen by a hash of the file name) is held out as "validation".
- `hmdb51`: `<class>_test_split<K>.txt` files (lines `<video> 1|2|0`: train, test, unused) and videos at
  `root/<class>/<video>`. Validation is held out from training as for UCF-101.
- `folder`: `root/<class_name>/<video>.<ext>`; every split is a fixed fraction chosen by a hash of the file name.

Decoding is PyAV. Each video becomes `clips` fixed-size clips of `frames` frames: `uniform` sampling spreads the
frames over the whole video (TSN style); `dense` takes consecutive frames `stride` apart (as I3D and A^2-Nets train),
starting at `clips` evenly spaced offsets. Frames are resized so the shorter side is `resize`, then centre-cropped
to `crop` x `crop`. The decoded clips of a split are written once to the machine's cache (uint8 .npy, memory-mapped
when read), keyed by the layout, the sampling and every file's path, size and modification time, so repeated trials
never decode twice. Files PyAV cannot open or decode, and listed videos that are missing, are skipped and counted,
with one warning line per split, never an exception.
"""
from __future__ import annotations

import csv
import hashlib
import logging
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from attnas.evaluators.data.cache import ArrayCache
from attnas.evaluators.data.sprites import SPLITS
from attnas.evaluators.data.synthetic import TaskData
from attnas.search_space import AttnasError

log = logging.getLogger(__name__)
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v")
SAMPLING_MODES = ("uniform", "dense")
_KINETICS_SPLITS = {"train": "train", "validate": "validation", "val": "validation", "validation": "validation",
                    "test": "test"}


@dataclass(frozen=True)
class VideoEntry:
    """One labelled video: its path (None if the annotation names a video that is not on disk) and class index."""

    name: str
    path: Path | None
    label: int


@dataclass(frozen=True)
class FrameSampling:
    """Which frames become a clip: `mode` uniform|dense, `frames` per clip, `stride` (dense), `clips` per video,
    shorter side `resize` then square centre `crop`."""

    mode: str = "dense"
    frames: int = 8
    stride: int = 2
    clips: int = 1
    resize: int = 36
    crop: int = 32

    def __post_init__(self) -> None:
        if self.mode not in SAMPLING_MODES:
            raise AttnasError(f"frame sampling: mode must be one of {', '.join(SAMPLING_MODES)}, got {self.mode!r}")
        for name in ("frames", "stride", "clips", "resize", "crop"):
            if int(getattr(self, name)) < 1:
                raise AttnasError(f"frame sampling: {name} must be >= 1, got {getattr(self, name)}")
        if self.crop > self.resize:
            raise AttnasError(f"frame sampling: crop ({self.crop}) must not exceed resize ({self.resize})")

    def indices(self, num_frames: int) -> np.ndarray:
        """(clips, frames) frame indices into a video of `num_frames` frames (indices repeat in short videos)."""
        if self.mode == "uniform":
            # the centres of `frames` equal segments, shifted per clip within a segment
            segment = num_frames / self.frames
            shift = (np.arange(self.clips) + 0.5) / self.clips
            idx = (np.arange(self.frames)[None, :] + shift[:, None]) * segment
        else:
            span = (self.frames - 1) * self.stride + 1
            room = max(0, num_frames - span)
            starts = np.rint(np.linspace(0, room, self.clips + 2)[1:-1]) if self.clips > 1 else np.array([room / 2])
            idx = np.floor(starts)[:, None] + np.arange(self.frames)[None, :] * self.stride
        return np.clip(idx.astype(np.int64), 0, num_frames - 1)


def decode_clips(path: Path, sampling: FrameSampling) -> np.ndarray:
    """(clips, 3, T, crop, crop) uint8 from the video at `path`; raises whatever PyAV raises on a bad file."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        frames = []
        for frame in container.decode(stream):
            scale = sampling.resize / min(frame.width, frame.height)
            width = max(sampling.crop, round(frame.width * scale))
            height = max(sampling.crop, round(frame.height * scale))
            frames.append(frame.to_ndarray(format="rgb24", width=width, height=height))
    if not frames:
        raise ValueError("no video frames")
    video = np.stack(frames)  # (F, H, W, 3)
    top = (video.shape[1] - sampling.crop) // 2
    left = (video.shape[2] - sampling.crop) // 2
    video = video[:, top:top + sampling.crop, left:left + sampling.crop]
    clips = video[sampling.indices(len(video))]  # (clips, T, H, W, 3)
    return np.ascontiguousarray(clips.transpose(0, 4, 1, 2, 3))


def _hash_fraction(name: str) -> float:
    """A fixed number in [0, 1) from a file name: deterministic splits that do not move when files are added."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) / 2 ** 32


def _videos_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())


def _hold_out(entries: list[VideoEntry], fraction: float, split: str) -> list[VideoEntry]:
    """Split a training list into train and validation by a hash of each name."""
    keep_validation = split == "validation"
    return [e for e in entries if (_hash_fraction(e.name) < fraction) == keep_validation]


def _read_lines(path: Path) -> list[str]:
    if not path.exists():
        raise AttnasError(f"{path}: split file not found")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _folder_layout(root: Path, split: str, *, fold: int, validation_fraction: float, split_dir: Path | None,
                   annotations: Path | None) -> tuple[list[str], list[VideoEntry]]:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise AttnasError(f"{root}: expected one folder per class (class_name/video.mp4), found none")
    # fixed fractions: test = first validation_fraction of the hash range, validation the next, train the rest
    bounds = {"test": (0.0, validation_fraction), "validation": (validation_fraction, 2 * validation_fraction),
              "train": (2 * validation_fraction, 1.0)}
    low, high = bounds[split]
    entries = []
    for label, name in enumerate(classes):
        for path in _videos_under(root / name):
            key = f"{name}/{path.name}"
            if low <= _hash_fraction(key) < high:
                entries.append(VideoEntry(key, path, label))
    return classes, entries


def _ucf101_layout(root: Path, split: str, *, fold: int, validation_fraction: float, split_dir: Path | None,
                   annotations: Path | None) -> tuple[list[str], list[VideoEntry]]:
    folder = split_dir or (root / "ucfTrainTestlist" if (root / "ucfTrainTestlist").is_dir() else root)
    classes = [line.split()[1] for line in _read_lines(folder / "classInd.txt")]
    label_of = {name: i for i, name in enumerate(classes)}
    list_name = f"{'test' if split == 'test' else 'train'}list0{fold}.txt"
    entries = []
    for line in _read_lines(folder / list_name):
        name = line.split()[0]
        class_name = name.split("/")[0]
        if class_name not in label_of:
            raise AttnasError(f"{folder / list_name}: class {class_name!r} of {name!r} is not in classInd.txt")
        path = root / name
        entries.append(VideoEntry(name, path if path.exists() else None, label_of[class_name]))
    return classes, entries if split == "test" else _hold_out(entries, validation_fraction, split)


def _hmdb51_layout(root: Path, split: str, *, fold: int, validation_fraction: float, split_dir: Path | None,
                   annotations: Path | None) -> tuple[list[str], list[VideoEntry]]:
    folder = split_dir or root
    pattern = re.compile(rf"^(.*)_test_split{fold}\.txt$")
    files = sorted(p for p in folder.iterdir() if pattern.match(p.name))
    if not files:
        raise AttnasError(f"{folder}: no HMDB-51 split files *_test_split{fold}.txt")
    classes = [pattern.match(p.name).group(1) for p in files]
    wanted = "2" if split == "test" else "1"
    entries = []
    for label, (class_name, file) in enumerate(zip(classes, files)):
        for line in _read_lines(file):
            video, flag = line.split()[:2]
            if flag == wanted:
                path = root / class_name / video
                entries.append(VideoEntry(f"{class_name}/{video}", path if path.exists() else None, label))
    return classes, entries if split == "test" else _hold_out(entries, validation_fraction, split)


def _kinetics_layout(root: Path, split: str, *, fold: int, validation_fraction: float, split_dir: Path | None,
                     annotations: Path | None) -> tuple[list[str], list[VideoEntry]]:
    csv_files = [annotations] if annotations else sorted((split_dir or root).glob("*.csv"))
    if not csv_files:
        raise AttnasError(f"{split_dir or root}: no Kinetics annotation CSV (label, youtube_id, time_start, "
                          "time_end, split)")
    rows = []
    for file in csv_files:
        with open(file, newline="") as handle:
            reader = csv.DictReader(handle)
            missing = {"label", "youtube_id", "time_start", "time_end", "split"} - set(reader.fieldnames or ())
            if missing:
                raise AttnasError(f"{file}: missing column(s) {', '.join(sorted(missing))}")
            rows += list(reader)
    for row in rows:
        if row["split"] not in _KINETICS_SPLITS:
            raise AttnasError(f"Kinetics CSV: unknown split {row['split']!r} for {row['youtube_id']}; expected one "
                              f"of {', '.join(_KINETICS_SPLITS)}")
    classes = sorted({row["label"] for row in rows if row["label"]})
    label_of = {name: i for i, name in enumerate(classes)}
    on_disk: dict[str, Path] = {}
    for path in _videos_under(root):
        on_disk.setdefault(path.stem, path)
        match = re.match(r"^(.*)_\d{6}_\d{6}$", path.stem)
        if match:
            on_disk.setdefault(match.group(1), path)
    entries = []
    for row in rows:
        if _KINETICS_SPLITS[row["split"]] != split or not row["label"]:
            continue  # the test CSV of some Kinetics releases has no labels: nothing to score on
        stem = f"{row['youtube_id']}_{int(float(row['time_start'])):06d}_{int(float(row['time_end'])):06d}"
        path = on_disk.get(stem) or on_disk.get(row["youtube_id"])
        entries.append(VideoEntry(stem, path, label_of[row["label"]]))
    return classes, entries


LAYOUTS: dict[str, Callable[..., tuple[list[str], list[VideoEntry]]]] = {
    "folder": _folder_layout, "ucf101": _ucf101_layout, "hmdb51": _hmdb51_layout, "kinetics": _kinetics_layout}


class VideoFolder:
    """A labelled video dataset on disk in one of `LAYOUTS`, turned into cached uint8 clip arrays per split.

    `load(split)` returns TaskData(clips (N * clips, 3, T, crop, crop) uint8, labels (N * clips,)), decoding only
    when the cache has no entry for exactly these files and settings; `skipped[split]` lists (name, reason) of the
    videos that were missing or could not be decoded.
    """

    def __init__(self, root: str | Path, *, layout: str = "folder", sampling: FrameSampling | None = None,
                 fold: int = 1, validation_fraction: float = 0.1, split_dir: str | Path | None = None,
                 annotations: str | Path | None = None, cache: ArrayCache | None = None) -> None:
        if layout not in LAYOUTS:
            raise AttnasError(f"unknown video layout {layout!r}; expected one of {', '.join(sorted(LAYOUTS))}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise AttnasError(f"{self.root}: video root is not a folder")
        if not 0 < validation_fraction < 0.5:
            raise AttnasError(f"video folder: validation_fraction must be in (0, 0.5), got {validation_fraction}")
        self.layout = layout
        self.sampling = sampling or FrameSampling()
        self.fold = fold
        self.validation_fraction = validation_fraction
        self.split_dir = Path(split_dir) if split_dir else None
        self.annotations = Path(annotations) if annotations else None
        self.cache = cache if cache is not None else ArrayCache()
        self.skipped: dict[str, list[tuple[str, str]]] = {}
        self.classes, _ = self.entries("train")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def clip_shape(self) -> tuple[int, int, int, int]:
        return (3, self.sampling.frames, self.sampling.crop, self.sampling.crop)

    def entries(self, split: str) -> tuple[list[str], list[VideoEntry]]:
        """(class names, the split's videos) as the layout's annotation files say."""
        if split not in SPLITS:
            raise AttnasError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        return LAYOUTS[self.layout](self.root, split, fold=self.fold, validation_fraction=self.validation_fraction,
                                    split_dir=self.split_dir, annotations=self.annotations)

    def load(self, split: str) -> TaskData:
        """The split's clips and labels (decoded once per machine, then memory-mapped from the cache)."""
        _, entries = self.entries(split)
        files = [(e.name, str(e.path), *_stat(e.path)) if e.path else (e.name, None, -1, -1) for e in entries]
        description = {"dataset": "video_folder", "version": 1, "layout": self.layout, "split": split,
                       "labels": [e.label for e in entries], "files": files, "sampling": asdict(self.sampling)}

        def write(folder: Path) -> None:
            kept, labels, skipped = [], [], []
            clips = None
            shape = (len(entries), self.sampling.clips, *self.clip_shape)
            for entry in entries:
                if entry.path is None:
                    skipped.append(len(kept) + len(skipped))
                    continue
                try:
                    video = decode_clips(entry.path, self.sampling)
                except Exception as error:  # noqa: BLE001 - any failure to decode one file skips that file
                    log.debug("could not decode %s: %s", entry.path, error)
                    skipped.append(len(kept) + len(skipped))
                    continue
                if clips is None:
                    clips = np.lib.format.open_memmap(folder / "clips_all.npy", mode="w+", dtype=np.uint8, shape=shape)
                clips[len(kept)] = video
                kept.append(len(kept) + len(skipped))
                labels.append(entry.label)
            count = len(kept)
            final = np.lib.format.open_memmap(folder / "clips.npy", mode="w+", dtype=np.uint8,
                                              shape=(count * self.sampling.clips, *self.clip_shape))
            if count:
                final[:] = clips[:count].reshape(final.shape)
            final.flush()
            del final, clips
            (folder / "clips_all.npy").unlink(missing_ok=True)
            np.save(folder / "labels.npy", np.repeat(np.array(labels, dtype=np.int64), self.sampling.clips))
            np.save(folder / "skipped.npy", np.array(skipped, dtype=np.int64))

        arrays = self.cache.get_or_write(description, write)
        reasons = ["missing" if entries[i].path is None else "could not be decoded" for i in arrays["skipped"]]
        self.skipped[split] = [(entries[i].name, r) for i, r in zip(arrays["skipped"], reasons)]
        if self.skipped[split]:
            first, reason = self.skipped[split][0]
            log.warning("VideoFolder %s (%s): skipped %d of %d videos missing or undecodable (first: %s, %s)",
                        self.root, split, len(self.skipped[split]), len(entries), first, reason)
        if len(arrays["labels"]) == 0:
            raise AttnasError(f"{self.root}: no decodable videos in split {split!r}")
        return TaskData(arrays["clips"], arrays["labels"], {})


def _stat(path: Path) -> tuple[int, int]:
    try:
        info = path.stat()
        return info.st_size, info.st_mtime_ns
    except OSError:
        return -1, -1
