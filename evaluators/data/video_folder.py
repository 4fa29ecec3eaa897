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
starting at `clips` evenly spaced offsets. One pass over the packets (nothing decoded) counts the frames and catches
truncated files; decoding then starts at the key frame before the first sampled frame and converts only the sampled
frames, resized so the shorter side is `resize`, then centre-cropped to `crop` x `crop`. The decoded clips of a split
are written once to the machine's cache (uint8 .npy, memory-mapped when read), keyed by the layout, the sampling and
every file's path, size and modification time, so repeated trials never decode twice; the first load runs in worker
processes and resumes where an interrupted one stopped. Files that are missing, unreadable or cannot be decoded are
skipped with their reason (`VideoFolder.skipped`), named in one warning per split, never an exception; a class left
without a training video is an error (or dropped, with `drop_empty_classes`).
"""
from __future__ import annotations

import csv
import hashlib
import json
import logging
import multiprocessing
import os
import re
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from attnas.evaluators.data.cache import ArrayCache
from attnas.evaluators.data.fingerprint import walk_files
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
    """(clips, 3, T, crop, crop) uint8 from the video at `path`; raises on a bad file (ValueError naming what is
    wrong for a truncated or empty one, PermissionError for an unreadable one, PyAV's errors otherwise).

    Streams: one pass over the packets (no decoding) counts the frames and catches truncation; then decoding starts
    at the key frame before the first sampled frame, stops after the last one, and converts only the sampled frames,
    so memory is bounded by the clip, not the video."""
    import av

    with open(path, "rb"):  # an unreadable file says so, instead of "could not be decoded"
        pass
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        stamps = _packet_index(container, stream)
        indices = sampling.indices(len(stamps))
        wanted = {int(i) for i in np.unique(indices)}
        frames = _seek_and_convert(container, stream, stamps, wanted, sampling)
        if frames is None:  # timestamps the index cannot place: decode from the start, counting frames
            container.seek(0)
            frames = _convert_in_order(container.decode(stream), wanted, sampling)
    missing = wanted - frames.keys()
    if missing:
        raise ValueError(f"truncated: frame {min(missing)} of {len(stamps)} could not be decoded")
    clips = np.stack([np.stack([frames[int(i)] for i in clip]) for clip in indices])  # (clips, T, H, W, 3)
    return np.ascontiguousarray(clips.transpose(0, 4, 1, 2, 3))


def probe_video(path: Path) -> int:
    """The number of frames of the video at `path`, from its packets (nothing decoded); raises as `decode_clips`
    does on a missing, unreadable, empty or truncated file. `--dry-run` scans data sets with it."""
    import av

    with open(path, "rb"):
        pass
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        return len(_packet_index(container, container.streams.video[0]))


def _packet_index(container, stream) -> list[int | None]:
    """The presentation timestamps of the stream's packets, sorted (display order). A packet the demuxer flags as
    corrupt, or fewer packets than the header declares, means the file is truncated: with the index at the front
    (mp4 faststart) a frame-threaded decode of such a file would otherwise "succeed" with a few frames."""
    stamps = []
    for packet in container.demux(stream):
        if packet.size == 0:
            continue  # the demuxer's end-of-stream marker
        if packet.is_corrupt:
            raise ValueError(f"truncated or corrupt: packet {len(stamps)} at byte {packet.pos} is incomplete")
        stamps.append(packet.pts)
    if not stamps:
        raise ValueError("no video frames")
    if stream.frames and len(stamps) < stream.frames:
        raise ValueError(f"truncated: {len(stamps)} of the {stream.frames} frames its header lists are present")
    if any(s is None for s in stamps):
        return stamps
    return sorted(stamps)


def _seek_and_convert(container, stream, stamps: list[int | None], wanted: set[int],
                      sampling: FrameSampling) -> dict[int, np.ndarray] | None:
    """Decode from the key frame before the first wanted frame to the last one, converting only wanted frames;
    None when frames cannot be placed by timestamp (then the caller decodes in order)."""
    if any(s is None for s in stamps):
        return None
    position = {stamp: i for i, stamp in enumerate(stamps)}
    if len(position) != len(stamps):
        return None
    first, last = min(wanted), max(wanted)
    container.seek(stamps[first], stream=stream, backward=True, any_frame=False)
    frames: dict[int, np.ndarray] = {}
    for frame in container.decode(stream):
        index = position.get(frame.pts)
        if index is None:
            return None
        if index in wanted and index not in frames:
            frames[index] = _convert(frame, sampling)
        if index >= last:
            break
    return frames


def _convert_in_order(decoded, wanted: set[int], sampling: FrameSampling) -> dict[int, np.ndarray]:
    last = max(wanted)
    frames = {}
    for index, frame in enumerate(decoded):
        if index in wanted:
            frames[index] = _convert(frame, sampling)
        if index >= last:
            break
    return frames


def _convert(frame, sampling: FrameSampling) -> np.ndarray:
    """One frame as (crop, crop, 3) uint8: shorter side resized to `resize` (by FFmpeg's scaler), centre crop."""
    scale = sampling.resize / min(frame.width, frame.height)
    width = max(sampling.crop, round(frame.width * scale))
    height = max(sampling.crop, round(frame.height * scale))
    image = frame.to_ndarray(format="rgb24", width=width, height=height)
    top, left = (height - sampling.crop) // 2, (width - sampling.crop) // 2
    return np.ascontiguousarray(image[top:top + sampling.crop, left:left + sampling.crop])


def _hash_fraction(name: str) -> float:
    """A fixed number in [0, 1) from a file name: deterministic splits that do not move when files are added."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) / 2 ** 32


def _videos_under(root: Path) -> list[Path]:
    """Every video file under `root` (symlinked folders followed, hidden ones skipped)."""
    return [p for p in walk_files(root, onerror=_raise_unreadable) if p.suffix.lower() in VIDEO_EXTENSIONS]


def _raise_unreadable(error: OSError) -> None:
    raise AttnasError(f"{error.filename}: cannot read the folder ({error.strerror or error})")


def _class_folders(root: Path) -> list[str]:
    try:
        return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except PermissionError as error:
        raise AttnasError(f"{root}: cannot read the video root ({error.strerror})") from None


def _hold_out(entries: list[VideoEntry], fraction: float, split: str) -> list[VideoEntry]:
    """Split a training list into train and validation by a hash of each name."""
    keep_validation = split == "validation"
    return [e for e in entries if (_hash_fraction(e.name) < fraction) == keep_validation]


def _read_lines(path: Path) -> list[str]:
    if not path.exists():
        raise AttnasError(f"{path}: split file not found")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise AttnasError(f"{path}: cannot read the split file ({getattr(error, 'strerror', None) or error})") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def _folder_layout(root: Path, split: str, *, fold: int, validation_fraction: float, split_dir: Path | None,
                   annotations: Path | None) -> tuple[list[str], list[VideoEntry]]:
    classes = _class_folders(root)
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
    try:
        files = sorted(p for p in folder.iterdir() if pattern.match(p.name))
    except PermissionError as error:
        raise AttnasError(f"{folder}: cannot read the split folder ({error.strerror})") from None
    if not files:
        raise AttnasError(f"{folder}: no HMDB-51 split files *_test_split{fold}.txt")
    classes = [pattern.match(p.name).group(1) for p in files]
    wanted = "2" if split == "test" else "1"
    entries = []
    for label, (class_name, file) in enumerate(zip(classes, files)):
        for number, line in enumerate(_read_lines(file), 1):
            fields = line.split()
            if len(fields) < 2 or fields[1] not in ("0", "1", "2"):
                raise AttnasError(f"{file}: line {number}: expected '<video> 0|1|2', got {line[:80]!r}")
            video, flag = fields[:2]
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
            # the label column may be absent: the test CSV of Kinetics is distributed without labels
            missing = {"youtube_id", "time_start", "time_end", "split"} - set(reader.fieldnames or ())
            if missing:
                raise AttnasError(f"{file}: missing column(s) {', '.join(sorted(missing))}")
            rows += [{"label": "", **row, "_where": f"{file}: line {reader.line_num}"} for row in reader]
    for row in rows:
        if row["split"] not in _KINETICS_SPLITS:
            raise AttnasError(f"{row['_where']}: unknown split {row['split']!r} for {row['youtube_id']}; expected "
                              f"one of {', '.join(_KINETICS_SPLITS)}")
    if split == "test" and not any(_KINETICS_SPLITS[r["split"]] == "test" and r["label"] for r in rows):
        # the test split as distributed has no labels: score "test" on the validation split instead
        log.info("%s: the Kinetics test split has no labels; the validation split stands in for it", root)
        split = "validation"
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
            continue  # unlabelled rows (the test CSV as distributed): nothing to train or score on
        try:
            stem = f"{row['youtube_id']}_{int(float(row['time_start'])):06d}_{int(float(row['time_end'])):06d}"
        except (TypeError, ValueError):
            raise AttnasError(f"{row['_where']}: time_start and time_end must be numbers, got "
                              f"{row['time_start']!r}, {row['time_end']!r}") from None
        path = on_disk.get(stem) or on_disk.get(row["youtube_id"])
        entries.append(VideoEntry(stem, path, label_of[row["label"]]))
    return classes, entries


LAYOUTS: dict[str, Callable[..., tuple[list[str], list[VideoEntry]]]] = {
    "folder": _folder_layout, "ucf101": _ucf101_layout, "hmdb51": _hmdb51_layout, "kinetics": _kinetics_layout}


class VideoFolder:
    """A labelled video dataset on disk in one of `LAYOUTS`, turned into cached uint8 clip arrays per split.

    `load(split)` returns TaskData(clips (N * clips, 3, T, crop, crop) uint8, labels (N * clips,)), decoding only
    when the cache has no entry for exactly these files and settings (`cache` None: decoded into memory, nothing
    kept); `skipped[split]` lists (name, reason) of the videos that were missing, unreadable or could not be
    decoded. A class without a usable training video is an error naming it, or, with `drop_empty_classes`, dropped
    with a warning. `workers` processes decode in parallel (None: one per CPU this process may use, at most 8).
    """

    def __init__(self, root: str | Path, *, layout: str = "folder", sampling: FrameSampling | None = None,
                 fold: int = 1, validation_fraction: float = 0.1, split_dir: str | Path | None = None,
                 annotations: str | Path | None = None, cache: ArrayCache | None = None,
                 drop_empty_classes: bool = False, workers: int | None = 1) -> None:
        if layout not in LAYOUTS:
            raise AttnasError(f"unknown video layout {layout!r}; expected one of {', '.join(sorted(LAYOUTS))}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise AttnasError(f"{self.root}: video root " + ("is not a folder" if self.root.exists() else
                                                             "not found"))
        if not os.access(self.root, os.R_OK | os.X_OK):
            raise AttnasError(f"{self.root}: cannot read the video root (permission denied)")
        if not 0 < validation_fraction < 0.5:
            raise AttnasError(f"video folder: validation_fraction must be in (0, 0.5), got {validation_fraction}")
        if int(fold) < 1:
            raise AttnasError(f"video folder: fold must be >= 1, got {fold}")
        self.layout = layout
        self.sampling = sampling or FrameSampling()
        self.fold = fold
        self.validation_fraction = validation_fraction
        self.split_dir = Path(split_dir) if split_dir else None
        self.annotations = Path(annotations) if annotations else None
        self.cache = cache
        self.drop_empty_classes = drop_empty_classes
        self.workers = workers or min(8, len(os.sched_getaffinity(0)))
        self.skipped: dict[str, list[tuple[str, str]]] = {}
        self.classes, _ = self.entries("train")
        self._label_map: np.ndarray | None = None  # layout label -> output label (-1: dropped), set by load("train")

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
        if split != "train" and self._label_map is None:
            self.load("train")  # which classes have training videos decides the labels of every split
        layout_classes, entries = self.entries(split)
        files = [(e.name, str(e.path), *_stat(e.path)) if e.path else (e.name, None, -1, -1) for e in entries]
        description = {"dataset": "video_folder", "version": 2, "layout": self.layout, "split": split,
                       "labels": [e.label for e in entries], "files": files, "sampling": asdict(self.sampling)}
        if self.cache is None:
            with tempfile.TemporaryDirectory(prefix="attnas-videos-") as folder:
                self._write(Path(folder), entries)
                arrays = {p.stem: np.load(p, allow_pickle=False) for p in Path(folder).glob("*.npy")}
        else:
            arrays = self.cache.get_or_write(description, lambda folder: self._write(folder, entries),
                                             resumable=True)
        labels = np.asarray(arrays["labels"])
        clips = arrays["clips"][:len(labels)]
        self.skipped[split] = [(entries[i].name, str(r)) for i, r in zip(arrays["skipped"], arrays["reasons"])]
        self._warn_skipped(split, len(entries))
        if split == "train":
            self._label_map = self._usable_classes(layout_classes, entries, labels)
        mapped = self._label_map[labels] if len(labels) else labels
        if (mapped < 0).any():  # videos of dropped classes
            keep = np.flatnonzero(mapped >= 0)
            clips, mapped = clips[keep], mapped[keep]
        if len(mapped) == 0:
            raise AttnasError(f"{self.root}: no decodable videos in split {split!r}"
                              + (f" ({len(entries)} listed, all skipped)" if entries else " (none listed)"))
        return TaskData(clips, mapped.astype(np.int64), {})

    def scan(self) -> "FolderScan":
        """Every split's videos per class and the files a load would skip (missing, unreadable, truncated, not a
        video), read from each file's packets without decoding a frame (what `attnas search --dry-run` shows);
        raises as `load` does for classes without a usable training video."""
        counts: dict[str, dict[str, int]] = {}
        skipped: dict[str, list[tuple[str, str]]] = {}
        mapping, dropped = None, []
        for split in SPLITS:  # train first: it decides which classes are kept
            classes, entries = self.entries(split)
            usable = np.zeros(len(entries), dtype=bool)
            skipped[split] = []
            for index, ok, reason in self._run(_probe_job, [(i, e.path, None) for i, e in enumerate(entries)]):
                usable[index] = ok
                if not ok:
                    skipped[split].append((entries[index].name, reason))
            labels = np.array([e.label for e, ok in zip(entries, usable) if ok], dtype=np.int64)
            if mapping is None:
                mapping = self._usable_classes(classes, entries, labels)  # raises on classes without a video
                dropped = [name for name, m in zip(classes, mapping) if m < 0]
            if not (mapping[labels] >= 0).any():
                raise AttnasError(f"{self.root}: no decodable videos in split {split!r}"
                                  + (f" ({len(entries)} listed, all skipped)" if entries else " (none listed)"))
            per_class = np.bincount(labels, minlength=len(classes))
            counts[split] = {name: int(n) for name, n, m in zip(classes, per_class, mapping) if m >= 0}
        return FolderScan(root=self.root, layout=self.layout, counts=counts, skipped=skipped, dropped=dropped)

    def _usable_classes(self, classes: list[str], entries: list[VideoEntry], labels: np.ndarray) -> np.ndarray:
        """Layout label -> output label; raises (or, with drop_empty_classes, drops) classes with no training clip."""
        counts = np.bincount(labels, minlength=len(classes)) if len(labels) else np.zeros(len(classes), np.int64)
        empty = [name for name, n in zip(classes, counts) if n == 0]
        if empty:
            listed = np.bincount([e.label for e in entries], minlength=len(classes))
            detail = ", ".join(f"{name!r} ({listed[classes.index(name)]} training files, all skipped)"
                               if listed[classes.index(name)] else f"{name!r} (no training video)"
                               for name in empty[:10]) + (f" and {len(empty) - 10} more" if len(empty) > 10 else "")
            if not self.drop_empty_classes:
                raise AttnasError(f"{self.root}: {len(empty)} class(es) without a usable training video: {detail}; "
                                  "fix or remove them, or set data.drop_empty_classes: true to drop them")
            log.warning("VideoFolder %s: dropped %d class(es) without a usable training video: %s", self.root,
                        len(empty), detail)
        mapping = np.full(len(classes), -1, dtype=np.int64)
        kept = [i for i, n in enumerate(counts) if n > 0]
        mapping[kept] = np.arange(len(kept))
        self.classes = [classes[i] for i in kept]
        return mapping

    def _warn_skipped(self, split: str, listed: int) -> None:
        skipped = self.skipped[split]
        if skipped:
            names = "; ".join(f"{name} ({reason})" for name, reason in skipped[:SKIPPED_SHOWN])
            more = f"; and {len(skipped) - SKIPPED_SHOWN} more" if len(skipped) > SKIPPED_SHOWN else ""
            log.warning("VideoFolder %s (%s): skipped %d of %d videos: %s%s", self.root, split, len(skipped),
                        listed, names, more)

    def _write(self, folder: Path, entries: list[VideoEntry]) -> None:
        """Decode `entries` into `folder` (clips.npy, labels.npy, skipped.npy, reasons.npy). Resumable: what an
        interrupted call left in `folder` (progress.bin marks each decoded video) is kept, the rest decoded."""
        per = self.sampling.clips
        clips_path, progress_path, reasons_path = folder / "clips.npy", folder / "progress.bin", folder / "reasons.txt"
        shape = (len(entries) * per, *self.clip_shape)
        if progress_path.exists() and clips_path.exists():
            clips = np.lib.format.open_memmap(clips_path, mode="r+")
            progress = np.memmap(progress_path, dtype=np.int8, mode="r+", shape=(max(1, len(entries)),))
        else:
            # sized for every video; skipped ones leave unused (sparse, never written) space at the end
            clips = np.lib.format.open_memmap(clips_path, mode="w+", dtype=np.uint8, shape=shape)
            progress = np.memmap(progress_path, dtype=np.int8, mode="w+", shape=(max(1, len(entries)),))
        reasons = _read_reasons(reasons_path)
        kept = int((progress[:len(entries)] == 1).sum())
        todo = [i for i in range(len(entries)) if progress[i] == 0]
        started, reported = time.monotonic(), time.monotonic()
        with open(reasons_path, "a") as reasons_file:
            for done, (index, video, reason) in enumerate(self._decoded(entries, todo), 1):
                if video is not None:
                    clips[kept * per:(kept + 1) * per] = video
                    kept += 1
                    progress[index] = 1
                else:
                    reasons[index] = reason
                    reasons_file.write(json.dumps([index, reason]) + "\n")
                    reasons_file.flush()
                    progress[index] = 2
                if time.monotonic() - reported > PROGRESS_EVERY_S:
                    # a warning, so that it shows wherever the load runs (console, Ray worker log)
                    reported = time.monotonic()
                    rate = done / max(reported - started, 1e-9)
                    log.warning("VideoFolder %s: decoding, %d of %d videos done (%.1f/s, about %.0f min left; an "
                                "interrupted load resumes here)", self.root, len(entries) - len(todo) + done,
                                len(entries), rate, (len(todo) - done) / rate / 60)
        clips.flush()
        del clips
        status = np.asarray(progress[:len(entries)])
        np.save(folder / "labels.npy", np.repeat(np.array([e.label for e, s in zip(entries, status) if s == 1],
                                                          dtype=np.int64), per))
        skipped = sorted(reasons)
        np.save(folder / "skipped.npy", np.array(skipped, dtype=np.int64))
        np.save(folder / "reasons.npy", np.array([reasons[i] for i in skipped], dtype=str).reshape(len(skipped)))
        del progress
        progress_path.unlink()
        reasons_path.unlink()

    def _decoded(self, entries: list[VideoEntry], todo: list[int]):
        """(index, clips or None, reason) for each index of `todo`, in order; decoded by `workers` processes."""
        return self._run(_decode_job, [(i, entries[i].path, self.sampling) for i in todo])

    def _run(self, job: Callable, jobs: list):
        """`job` over `jobs`, in order, in `workers` processes (here when 1)."""
        if self.workers <= 1 or len(jobs) < 2:
            yield from map(job, jobs)
            return
        # forkserver: no fork of a process that may hold threads (torch, Ray), and the modules a job needs are
        # imported once by the server, not by every worker (spawn would import torch in each)
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=context) as pool:
            yield from pool.map(job, jobs, chunksize=4)


@dataclass(frozen=True)
class FolderScan:
    """What `VideoFolder.scan` found: videos per class per split that a load would keep, and those it would skip."""

    root: Path
    layout: str
    counts: dict[str, dict[str, int]]
    skipped: dict[str, list[tuple[str, str]]]
    dropped: list[str]

    def lines(self) -> list[str]:
        """A few lines for the console: totals per split, the smallest classes, the skipped files."""
        out = [f"data check ({self.layout} layout under {self.root}, every file's packets read, nothing decoded):"]
        for split, per_class in self.counts.items():
            smallest = sorted(per_class.items(), key=lambda item: item[1])[:3]
            out.append(f"  {split}: {sum(per_class.values())} videos in {len(per_class)} classes (fewest: "
                       + ", ".join(f"{name} {n}" for name, n in smallest) + ")"
                       + (f"; {len(self.skipped[split])} would be skipped" if self.skipped[split] else ""))
        if self.dropped:
            out.append(f"  dropped {len(self.dropped)} classes without a usable training video: "
                       + ", ".join(self.dropped))
        skipped = [(split, name, reason) for split, items in self.skipped.items() for name, reason in items]
        out += [f"  skipped {split}: {name} ({reason})" for split, name, reason in skipped[:SKIPPED_SHOWN]]
        if len(skipped) > SKIPPED_SHOWN:
            out.append(f"  ... and {len(skipped) - SKIPPED_SHOWN} more skipped files")
        return out


SKIPPED_SHOWN = 10
PROGRESS_EVERY_S = 30.0  # between progress lines of a long first load


def _decode_job(job: tuple[int, Path | None, FrameSampling]) -> tuple[int, np.ndarray | None, str]:
    """One video's clips, or None and the reason it was skipped (a worker process runs this)."""
    index, path, sampling = job
    if path is None:
        return index, None, "missing"
    try:
        return index, decode_clips(path, sampling), ""
    except Exception as error:  # noqa: BLE001 - any failure to decode one file skips that file, with its reason
        return index, None, _skip_reason(error)


def _skip_reason(error: Exception) -> str:
    if isinstance(error, PermissionError):
        return f"unreadable: {error.strerror or error}"
    if isinstance(error, FileNotFoundError):
        return "missing"
    if type(error) is ValueError:  # ours: truncated, no video stream, no frames
        return str(error)
    # PyAV's errors carry FFmpeg's message in strerror (str() repeats the path)
    text = (getattr(error, "strerror", None) or str(error)).strip() or type(error).__name__
    return f"could not be decoded: {text.splitlines()[0][:200]}"


def _probe_job(job: tuple[int, Path | None, None]) -> tuple[int, bool, str]:
    """Whether one video would load (its packets read, nothing decoded), and why not."""
    index, path, _ = job
    if path is None:
        return index, False, "missing"
    try:
        probe_video(path)
        return index, True, ""
    except Exception as error:  # noqa: BLE001 - reported exactly as a load would report it
        return index, False, _skip_reason(error)


def _read_reasons(path: Path) -> dict[int, str]:
    reasons: dict[int, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                index, reason = json.loads(line)
            except ValueError:
                continue  # a line cut short by an interruption: that video is decoded again
            reasons[int(index)] = str(reason)
    return reasons


def _stat(path: Path) -> tuple[int, int]:
    try:
        info = path.stat()
        return info.st_size, info.st_mtime_ns
    except OSError:
        return -1, -1
