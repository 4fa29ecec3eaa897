"""Loading real video folders (issue 19): first and cached loads of a generated folder of mixed codecs against a plain
PyAV loop decoding the same sampled frames, peak memory of one decode against video length, and the first load with
1 and 2 worker processes. Videos are generated with PyAV; nothing is downloaded.

    python -m benchmarks.video_loading [--quick]
"""
from __future__ import annotations

import argparse
import multiprocessing
import shutil
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from attnas.evaluators.data import ArrayCache, FrameSampling, VideoFolder, decode_clips
from benchmarks.results import table, write_section

SUFFIXES = {".mp4": "libx264", ".avi": "mpeg4", ".mkv": "libx264", ".webm": "libvpx-vp9"}
REPEATS = 2
SAMPLING = FrameSampling(mode="dense", frames=8, stride=2, clips=1, resize=128, crop=112)


def write_video(path: Path, seed: int, *, frames: int, width: int = 170, height: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(SUFFIXES[path.suffix], rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            image = np.roll(base, 2 * i, axis=1)  # a moving texture: realistic packet sizes
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def make_folder(root: Path, videos: int, frames: int) -> None:
    suffixes = list(SUFFIXES)
    for k in range(videos):
        write_video(root / f"class{k % 5}" / f"v{k:04d}{suffixes[k % len(suffixes)]}", k, frames=frames)


def plain_loop(paths: list[Path], sampling: FrameSampling) -> int:
    """The reference: a plain PyAV loop that decodes each video from the start and converts the sampled frames."""
    clips = 0
    for path in paths:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            count = stream.frames or sum(1 for p in container.demux(stream) if p.size)
            container.seek(0)
            wanted = set(sampling.indices(count).ravel().tolist())
            for index, frame in enumerate(container.decode(stream)):
                if index in wanted:
                    scale = sampling.resize / min(frame.width, frame.height)
                    frame.to_ndarray(format="rgb24", width=round(frame.width * scale),
                                     height=round(frame.height * scale))
                if index >= max(wanted):
                    break
        clips += sampling.clips
    return clips


def _peak_child(kind: str, path: str, queue) -> None:
    """Peak resident memory (MB) that decoding one video adds to a fresh process, its imports done: the kernel's
    high-water mark is reset (/proc/self/clear_refs) just before the decode."""
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kb("VmRSS")
    if kind == "attnas":
        decode_clips(Path(path), SAMPLING)
    else:  # what main did before issue 19: every frame converted and held, then the sampled ones picked
        with av.open(path) as container:
            frames = [f.to_ndarray(format="rgb24", width=170, height=128)
                      for f in container.decode(container.streams.video[0])]
        np.stack(frames)[SAMPLING.indices(len(frames))]
    queue.put((_status_kb("VmHWM") - before) / 1024)


def _status_kb(field: str) -> int:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1])


def peak_mb(kind: str, path: Path) -> float:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_peak_child, args=(kind, str(path), queue))
    process.start()
    value = queue.get()
    process.join()
    return value


def first_load(root: Path, cache: Path, workers: int) -> tuple[int, float]:
    """(clips, seconds) of decoding all three splits into an empty cache."""
    shutil.rmtree(cache, ignore_errors=True)
    started = time.perf_counter()
    folder = VideoFolder(root, sampling=SAMPLING, cache=ArrayCache(cache), workers=workers)
    count = sum(len(folder.load(s).labels) for s in ("train", "validation", "test"))
    return count, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 videos instead of 240")
    args = parser.parse_args()
    videos, frames = (60, 75) if args.quick else (240, 75)
    work = Path(tempfile.mkdtemp(prefix="attnas-video-bench-"))
    try:
        root = work / "videos"
        make_folder(root, videos, frames)
        paths = sorted(p for p in root.rglob("*") if p.is_file())
        # interleaved and repeated, best of each: other jobs share the machine
        plain_s, first_s = [], []
        for _ in range(REPEATS):
            started = time.perf_counter()
            plain = plain_loop(paths, SAMPLING)
            plain_s.append(time.perf_counter() - started)
            count, seconds = first_load(root, work / "cache", 1)
            first_s.append(seconds)
        plain_rate, first_rate = plain / min(plain_s), count / min(first_s)
        started = time.perf_counter()
        again = VideoFolder(root, sampling=SAMPLING, cache=ArrayCache(work / "cache"))
        total = sum(len(data.labels) for data in (again.load(s) for s in ("train", "validation", "test"))
                    if np.asarray(data.clips).sum() >= 0)  # every byte read
        cached_rate = total / (time.perf_counter() - started)
        rows = [["plain PyAV loop (same sampled frames)", f"{plain_rate:.1f}", "1.00"],
                ["attnas first load, 1 process (decode + write the cache)", f"{first_rate:.1f}",
                 f"{plain_rate / first_rate:.2f}"],
                ["attnas cached load (every byte read)", f"{cached_rate:.0f}", f"{plain_rate / cached_rate:.3f}"]]
        scaling = [["1", f"{min(first_s):.1f}", f"{first_rate:.1f}"]]
        for label in ("2 (first use: starts the worker server)", "2 (worker server running)"):
            count, seconds = first_load(root, work / "cache", 2)
            scaling.append([label, f"{seconds:.1f}", f"{count / seconds:.1f}"])
        memory = []
        for length in (75, 300, 1200):
            path = work / "long" / f"v{length}.mp4"
            write_video(path, 0, frames=length)
            memory.append([length, f"{peak_mb('attnas', path):.1f}", f"{peak_mb('main', path):.1f}"])
        body = (f"{videos} generated videos ({frames} frames, 170x128, mp4/H.264, avi/MPEG-4, mkv/H.264, webm/VP9), "
                f"dense sampling of {SAMPLING.frames} frames (stride {SAMPLING.stride}), shorter side "
                f"{SAMPLING.resize}, crop {SAMPLING.crop}. 2 shared cores: other jobs ran at the same time.\n\n"
                f"Clips per second, and time per clip relative to the plain loop (aim for the first load: at most "
                f"1.2), measured in the same run, best of {REPEATS} interleaved repeats:\n\n"
                + table(["loader", "clips/s", "time vs plain loop"], rows)
                + "\n\nPeak resident memory added by decoding one 170x128 mp4 (MB above the process before it) "
                  "against video length:"
                  "\n\n" + table(["frames", "attnas decode_clips", "main before issue 19 (every frame held)"],
                                 memory)
                + "\n\nFirst load (decode and write the cache, all three splits) with worker processes:\n\n"
                + table(["workers", "seconds", "clips/s"], scaling))
        write_section("video_loading", "Loading video folders (issue 19)", body)
        print(body)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
