"""Small real videos written with PyAV for the video-data tests (generated at test time, never downloaded)."""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import yaml

CODECS = {".mp4": "libx264", ".avi": "mpeg4", ".mkv": "libx264", ".webm": "libvpx-vp9"}


def write_video(path: Path, value: int = 0, *, frames: int = 12, width: int = 48, height: int = 40,
                codec: str | None = None, faststart: bool = False, noise: bool = False) -> Path:
    """A real video whose frame i is grey level value + 10 * i (plus noise: bigger packets), in the codec its
    suffix suggests; `faststart` puts the mp4 index (moov atom) at the front."""
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream(codec or CODECS.get(path.suffix, "mpeg4"), rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        rng = np.random.default_rng(value)
        for i in range(frames):
            image = np.full((height, width, 3), (value + 10 * i) % 256, np.uint8)
            if noise:
                image = (image + rng.integers(0, 40, image.shape)).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def truncate(path: Path, fraction: float = 0.5) -> Path:
    """Cut a file to `fraction` of its length, as an interrupted download leaves it."""
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * fraction)])
    return path


def folder_dataset(root: Path, classes=("jump", "run", "swim"), per_class: int = 6, frames: int = 9) -> Path:
    """root/<class>/<class>_k.mp4, class c at grey level 40 * c."""
    for c, name in enumerate(classes):
        for k in range(per_class):
            write_video(root / name / f"{name}_{k}.mp4", 40 * c, frames=frames)
    return root


def video_experiment(folder: Path, data: dict, *, name: str = "videos", **changes) -> str:
    """A tiny experiment on a video folder (seconds per trial on one core)."""
    experiment = {
        "name": name, "space": "small", "controller": {"name": "random"},
        "evaluator": {
            "data": {"video_layout": "folder", "video_workers": 1, "cache_dir": str(folder / "cache"),
                     "sampling": {"mode": "dense", "frames": 4, "stride": 2, "resize": 20, "crop": 16}, **data},
            "epochs": 1, "pretrain_epochs": 1, "batch_size": 8, "eval_batch_size": 16, "measure_latency": False,
            "backbone_args": {"stem_width": 8, "widths": [8, 16, 16]},
        },
        "budget": {"trials": 2}, "concurrency": 1, "early_stopping": {"scheduler": "none"}, **changes,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(experiment, sort_keys=False))
    return str(path)
