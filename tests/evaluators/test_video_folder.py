"""VideoFolder on real mp4 files written with PyAV: layouts, sampling, resize/crop, the decode cache, bad files."""
import logging

import av
import numpy as np
import pytest

from attnas.evaluators.data import ArrayCache, FrameSampling, VideoFolder, decode_clips
from attnas.evaluators.data import video_folder as vf
from attnas.search_space import AttnasError

FRAMES = 12


def write_video(path, value, *, frames=FRAMES, width=48, height=40):
    """A real mpeg4 video whose frame i is uniformly grey level value + 10 * i (so sampling is visible)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), value + 10 * i, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_corrupt(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video" * 20)


SAMPLING = FrameSampling(mode="dense", frames=4, stride=2, resize=20, crop=16)


def test_decode_dense_and_uniform_sampling_and_crop(tmp_path):
    write_video(tmp_path / "v.mp4", 20)
    dense = decode_clips(tmp_path / "v.mp4", FrameSampling(mode="dense", frames=4, stride=2, clips=2, resize=20,
                                                          crop=16))
    assert dense.shape == (2, 3, 4, 16, 16) and dense.dtype == np.uint8
    # 12 frames, span 7: two clips start at frames 2 and 3 (evenly spread), then every second frame
    expected = 20 + 10 * np.array([[2, 4, 6, 8], [3, 5, 7, 9]])
    assert np.abs(dense[:, 0, :, 8, 8].astype(int) - expected).max() <= 4
    uniform = decode_clips(tmp_path / "v.mp4", FrameSampling(mode="uniform", frames=4, resize=20, crop=16))
    assert np.abs(uniform[0, 0, :, 8, 8].astype(int) - (20 + 10 * np.array([1, 4, 7, 10]))).max() <= 4


def test_sampling_indices_for_short_videos_repeat_the_last_frame():
    idx = FrameSampling(mode="dense", frames=4, stride=3).indices(5)
    assert idx.tolist() == [[0, 3, 4, 4]]
    assert FrameSampling(mode="uniform", frames=5).indices(5).tolist() == [[0, 1, 2, 3, 4]]


def _folder_tree(root):
    for c, name in enumerate(["jump", "run", "swim"]):
        for k in range(8):
            write_video(root / name / f"{name}_{k}.mp4", 30 * c, frames=9)
    write_corrupt(root / "run" / "run_broken.mp4")


def test_folder_layout_splits_labels_cache_and_corrupt_file(tmp_path, caplog, monkeypatch):
    root = tmp_path / "videos"
    _folder_tree(root)
    cache = ArrayCache(tmp_path / "cache")
    decoded = []
    original = vf.decode_clips
    monkeypatch.setattr(vf, "decode_clips", lambda path, s: decoded.append(path) or original(path, s))
    folder = VideoFolder(root, layout="folder", sampling=SAMPLING, validation_fraction=0.2, cache=cache)
    assert folder.classes == ["jump", "run", "swim"] and folder.num_classes == 3
    names = {s: {e.name for e in folder.entries(s)[1]} for s in ("train", "validation", "test")}
    assert sum(len(n) for n in names.values()) == 25  # every file in exactly one split
    assert not (names["train"] & names["validation"]) and not (names["train"] & names["test"])
    with caplog.at_level(logging.WARNING):
        data = {s: folder.load(s) for s in ("train", "validation", "test")}
    broken_split = next(s for s in names if "run/run_broken.mp4" in names[s])
    assert folder.skipped[broken_split] == [("run/run_broken.mp4", "could not be decoded: Invalid data found when "
                                                                   "processing input")]
    assert sum("skipped 1 of" in r.message for r in caplog.records) == 1  # one warning line, no exception
    for split, part in data.items():
        assert part.clips.shape == (len(names[split]) - (split == broken_split), 3, 4, 16, 16)
        # the label is the class folder: grey level 30 * label + 10 at the first sampled frame (9 frames, span 7:
        # the clip starts at frame 1)
        first = part.clips[:, 0, 0, 8, 8].astype(int)
        assert np.all(np.abs(first - (30 * part.labels + 10)) <= 4)
    assert len(decoded) == 25
    # a second dataset object (another trial) decodes nothing
    again = VideoFolder(root, layout="folder", sampling=SAMPLING, validation_fraction=0.2,
                        cache=ArrayCache(tmp_path / "cache"))
    assert np.array_equal(again.load("train").clips, data["train"].clips) and len(decoded) == 25
    # a changed file is decoded again (the key holds size and mtime)
    write_video(root / "jump" / "jump_0.mp4", 0, frames=10)
    again.load(next(s for s in names if "jump/jump_0.mp4" in names[s]))
    assert len(decoded) > 25


def test_ucf101_split_files(tmp_path):
    root = tmp_path / "UCF-101"
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 Archery\n")
    train = [f"{c}/v_{c}_g0{g}_c01.avi" for c in ("ApplyEyeMakeup", "Archery") for g in range(1, 7)]
    test = [f"{c}/v_{c}_g08_c01.avi" for c in ("ApplyEyeMakeup", "Archery")]
    (lists / "trainlist01.txt").write_text("".join(f"{p} {1 + p.startswith('Archery')}\n" for p in train))
    (lists / "testlist01.txt").write_text("".join(f"{p}\n" for p in test + ["Archery/v_missing.avi"]))
    for p in train + test:
        write_video(root / p, 100 * p.startswith("Archery"), frames=6)
    folder = VideoFolder(root, layout="ucf101", sampling=SAMPLING, validation_fraction=0.3,
                         cache=ArrayCache(tmp_path / "cache"))
    assert folder.classes == ["ApplyEyeMakeup", "Archery"]
    held_out = {e.name for e in folder.entries("validation")[1]}
    trained = {e.name for e in folder.entries("train")[1]}
    assert held_out | trained == set(train) and not held_out & trained and held_out
    data = folder.load("test")
    assert data.labels.tolist() == [0, 1] and folder.skipped["test"] == [("Archery/v_missing.avi", "missing")]


def test_hmdb51_split_files(tmp_path):
    root = tmp_path / "hmdb"
    splits = tmp_path / "splits"
    splits.mkdir()
    for label, name in enumerate(["brush_hair", "cartwheel"]):
        lines = []
        for k in range(4):
            video = f"{name}_{k}.avi"
            write_video(root / name / video, 100 * label, frames=6)
            lines.append(f"{video} {2 if k == 3 else 1}")
        lines.append(f"{name}_unused.avi 0")
        (splits / f"{name}_test_split1.txt").write_text("\n".join(lines) + "\n")
    folder = VideoFolder(root, layout="hmdb51", split_dir=splits, sampling=SAMPLING, validation_fraction=0.25,
                         cache=ArrayCache(tmp_path / "cache"))
    assert folder.classes == ["brush_hair", "cartwheel"]
    test = folder.load("test")
    assert test.labels.tolist() == [0, 1] and test.clips.shape == (2, 3, 4, 16, 16)
    assert len(folder.entries("train")[1]) + len(folder.entries("validation")[1]) == 6


def test_kinetics_csv(tmp_path):
    root = tmp_path / "kinetics"
    rows = ["label,youtube_id,time_start,time_end,split"]
    for split, folder_name in (("train", "train"), ("validate", "val")):
        for label in ("abseiling", "air drumming"):
            for k in range(2):
                yid = f"{label[:3]}{split[:2]}{k}abcdef"[:11]
                rows.append(f"{label},{yid},{10 * k},{10 * k + 10},{split}")
                write_video(root / folder_name / label / f"{yid}_{10 * k:06d}_{10 * k + 10:06d}.mp4",
                            100 * (label == "air drumming"), frames=6)
    rows.append("abseiling,notondisk01,0,10,train")
    (root / "kinetics_sample.csv").write_text("\n".join(rows) + "\n")
    folder = VideoFolder(root, layout="kinetics", sampling=SAMPLING, cache=ArrayCache(tmp_path / "cache"))
    assert folder.classes == ["abseiling", "air drumming"]
    train = folder.load("train")
    assert train.labels.tolist() == [0, 0, 1, 1] and len(folder.skipped["train"]) == 1
    assert folder.load("validation").labels.tolist() == [0, 0, 1, 1]


def test_bad_configuration_raises_one_line(tmp_path):
    with pytest.raises(AttnasError, match="unknown video layout 'youtube'.*folder"):
        VideoFolder(tmp_path, layout="youtube")
    with pytest.raises(AttnasError, match="mode"):
        FrameSampling(mode="random")
    with pytest.raises(AttnasError, match="crop"):
        FrameSampling(resize=16, crop=32)
    with pytest.raises(AttnasError, match="video root not found"):
        VideoFolder(tmp_path / "absent")
    with pytest.raises(AttnasError, match="classInd.txt"):
        VideoFolder(tmp_path, layout="ucf101")


# ------------------------------------------------------------------------------------- issue 19: streaming decode
from tests.evaluators.videos import folder_dataset, truncate  # noqa: E402
from tests.evaluators.videos import write_video as write_any  # noqa: E402


def _plain_decode(path, sampling):
    """The reference: decode every frame with a plain PyAV loop, convert each, pick the sampled ones."""
    with av.open(str(path)) as container:
        frames = []
        for frame in container.decode(container.streams.video[0]):
            scale = sampling.resize / min(frame.width, frame.height)
            width = max(sampling.crop, round(frame.width * scale))
            height = max(sampling.crop, round(frame.height * scale))
            frames.append(frame.to_ndarray(format="rgb24", width=width, height=height))
    video = np.stack(frames)
    top, left = (video.shape[1] - sampling.crop) // 2, (video.shape[2] - sampling.crop) // 2
    video = video[:, top:top + sampling.crop, left:left + sampling.crop]
    return np.ascontiguousarray(video[sampling.indices(len(video))].transpose(0, 4, 1, 2, 3))


@pytest.mark.parametrize("suffix", [".mp4", ".avi", ".mkv", ".webm"])
@pytest.mark.parametrize("mode", ["dense", "uniform"])
def test_streaming_decode_is_bit_exact_and_converts_only_sampled_frames(tmp_path, monkeypatch, suffix, mode):
    path = write_any(tmp_path / f"v{suffix}", 7, frames=60, width=64, height=48, noise=True)
    sampling = FrameSampling(mode=mode, frames=4, stride=3, clips=2, resize=40, crop=32)
    expected = _plain_decode(path, sampling)
    converted = []
    real = av.VideoFrame.to_ndarray

    def counting(frame, *args, **kwargs):
        converted.append(frame.pts)
        return real(frame, *args, **kwargs)

    monkeypatch.setattr(av.VideoFrame, "to_ndarray", counting)
    clips = decode_clips(path, sampling)
    assert np.array_equal(clips, expected)
    assert len(converted) == len(np.unique(sampling.indices(60)))  # 8 frames converted of 60


def test_dense_decoding_starts_at_the_key_frame_before_the_clip(tmp_path, monkeypatch):
    """A late clip in a long video: frames before its key frame are never decoded."""
    path = tmp_path / "long.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10, options={"g": "10", "keyint_min": "10"})
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(200):
            image = np.full((32, 32, 3), i % 256, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    sampling = FrameSampling(mode="dense", frames=4, stride=1, clips=1, resize=32, crop=32)  # frames 98..101
    expected = _plain_decode(path, sampling)
    decoded = []
    real_open = av.open

    class Counting:
        """The container, with every frame it decodes counted."""

        def __init__(self, container):
            self.container = container

        def __enter__(self):
            self.container.__enter__()
            return self

        def __exit__(self, *exc):
            return self.container.__exit__(*exc)

        def __getattr__(self, name):
            return getattr(self.container, name)

        def decode(self, *args, **kwargs):
            for frame in self.container.decode(*args, **kwargs):
                decoded.append(frame.pts)
                yield frame

    monkeypatch.setattr(av, "open", lambda *a, **k: Counting(real_open(*a, **k)))
    clips = decode_clips(path, sampling)
    assert np.array_equal(clips, expected)
    assert len(decoded) <= 4 + 10  # from the key frame at 90 (every 10th) to frame 101, not 102 frames


@pytest.mark.parametrize("faststart", [True, False])
def test_truncated_mp4_raises_naming_the_truncation(tmp_path, faststart):
    path = truncate(write_any(tmp_path / "cut.mp4", 0, frames=40, noise=True, faststart=faststart))
    with pytest.raises(Exception, match="truncated|Invalid data|moov"):
        decode_clips(path, SAMPLING)
    # the frame-threaded decoder PyAV offers hides it for the faststart file: a few frames, no error
    if faststart:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            assert 0 < sum(1 for _ in container.decode(stream)) < 40


def test_cache_entry_is_written_in_place_and_the_first_load_resumes(tmp_path, monkeypatch):
    root = folder_dataset(tmp_path / "videos", per_class=8)
    cache = ArrayCache(tmp_path / "cache")
    folder = VideoFolder(root, sampling=SAMPLING, cache=cache)
    train = folder.entries("train")[1]
    calls = []
    original = vf.decode_clips

    def interrupted(path, sampling):
        if len(calls) == 7:
            raise KeyboardInterrupt
        calls.append(path)
        return original(path, sampling)

    monkeypatch.setattr(vf, "decode_clips", interrupted)
    with pytest.raises(KeyboardInterrupt):
        folder.load("train")
    partial = list((tmp_path / "cache").glob(".*.partial"))
    assert len(partial) == 1 and sorted(p.name for p in partial[0].iterdir()) == ["clips.npy", "progress.bin",
                                                                                  "reasons.txt"]
    # the only big file is the entry itself: no second copy of the clips
    clips_bytes = len(train) * int(np.prod((3, 4, 16, 16)))
    assert partial[0].joinpath("clips.npy").stat().st_size < clips_bytes + 4096
    monkeypatch.setattr(vf, "decode_clips", lambda path, s: calls.append(path) or original(path, s))
    data = folder.load("train")
    assert len(calls) == len(train)  # 7 before the interruption, the rest after: none twice
    assert len(set(calls)) == len(train)
    fresh = VideoFolder(root, sampling=SAMPLING, cache=None).load("train")
    assert np.array_equal(np.asarray(data.clips), fresh.clips) and np.array_equal(data.labels, fresh.labels)
    assert not list((tmp_path / "cache").glob(".*.partial"))


def test_a_long_first_load_shows_its_progress(tmp_path, caplog, monkeypatch):
    root = folder_dataset(tmp_path / "videos", per_class=3)
    monkeypatch.setattr(vf, "PROGRESS_EVERY_S", -1.0)  # a line after every video
    folder = VideoFolder(root, sampling=SAMPLING, cache=ArrayCache(tmp_path / "cache"))
    with caplog.at_level(logging.WARNING):
        data = folder.load("train")
    progress = [r.message for r in caplog.records if "decoding," in r.message]
    assert len(progress) == len(data.labels)
    assert f"{len(data.labels)} of {len(data.labels)} videos done" in progress[-1]


def test_two_worker_processes_decode_the_same_clips(tmp_path):
    root = folder_dataset(tmp_path / "videos", per_class=4)
    (root / "run" / "bad.mp4").write_bytes(b"garbage" * 50)
    one = VideoFolder(root, sampling=SAMPLING, cache=None, workers=1)
    two = VideoFolder(root, sampling=SAMPLING, cache=None, workers=2)
    for split in ("train", "validation"):
        a, b = one.load(split), two.load(split)
        assert np.array_equal(a.clips, b.clips) and np.array_equal(a.labels, b.labels)
        assert one.skipped[split] == two.skipped[split]


def test_the_warning_names_every_skipped_file_up_to_ten(tmp_path, caplog):
    root = folder_dataset(tmp_path / "videos", per_class=20)
    for k in range(14):
        (root / "run" / f"bad{k:02d}.mp4").write_bytes(b"garbage" * 50)
    folder = VideoFolder(root, sampling=SAMPLING, cache=None, validation_fraction=0.05)
    with caplog.at_level(logging.WARNING):
        folder.load("train")
    skipped = folder.skipped["train"]
    message = next(r.message for r in caplog.records if "skipped" in r.message)
    assert all(name in message for name, _ in skipped[:10])
    if len(skipped) > 10:
        assert f"and {len(skipped) - 10} more" in message and skipped[10][0] not in message
