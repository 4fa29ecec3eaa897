"""Real video folders through the command line, as a user meets them: `attnas search --dry-run` checks the data,
`attnas evaluate` and `attnas search` train on it, `attnas cache` manages what was decoded (issue 19)."""
from __future__ import annotations

import os

import pytest

from attnas.evaluators import datasets, pretrained
from attnas.experiments.cli import main
from tests.evaluators.videos import folder_dataset, truncate, video_experiment, write_video


@pytest.fixture(autouse=True)
def fresh_process_state(tmp_path, monkeypatch):
    """Each CLI call as in a new process (no in-memory data or weights), the default cache inside tmp_path."""
    monkeypatch.setenv("ATTNAS_CACHE_DIR", str(tmp_path / "default-cache"))
    datasets.clear_memo()
    pretrained.clear_memo()
    yield
    datasets.clear_memo()
    pretrained.clear_memo()


def dry_run(config: str, capsys) -> tuple[int, str, str]:
    code = main(["search", config, "--dry-run"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -------------------------------------------------------------------------------- point 1: classes without videos
def test_a_class_without_usable_videos_is_an_error_naming_it_or_dropped_on_request(tmp_path, capsys):
    root = folder_dataset(tmp_path / "videos")
    for k in range(3):  # every file of "broken" is a truncated download
        truncate(write_video(root / "broken" / f"b{k}.mp4", 0, frames=30, noise=True, faststart=True))
    (root / "empty").mkdir()
    (root / ".ipynb_checkpoints").mkdir()  # hidden: not a class at all
    write_video(root / ".ipynb_checkpoints" / "x.mp4", 0)
    code, out, err = dry_run(video_experiment(tmp_path, {"video_root": str(root)}), capsys)
    assert code == 2 and "Traceback" not in err
    assert "2 class(es) without a usable training video" in err
    assert "'broken' (" in err and "all skipped" in err and "'empty' (no training video)" in err
    assert ".ipynb_checkpoints" not in err and "drop_empty_classes" in err
    # the search itself fails the same way, before any trial (the data is loaded by `attnas evaluate` here)
    assert main(["evaluate", "none", "--config", video_experiment(tmp_path, {"video_root": str(root)})]) == 2
    assert "without a usable training video" in capsys.readouterr().err
    # on request: dropped with a warning, the model has the 3 real classes
    config = video_experiment(tmp_path, {"video_root": str(root), "drop_empty_classes": True}, name="dropping")
    code, out, err = dry_run(config, capsys)
    assert code == 0 and "train: 15 videos in 3 classes" in out, out
    data = datasets.load_splits(_data_config(config))
    assert data.num_classes == 3 and set(data.train.labels.tolist()) == {0, 1, 2}


def _data_config(config_path: str):
    from attnas.experiments.config import load_experiment, proxy_config

    experiment = load_experiment(config_path)
    return proxy_config(experiment.evaluator, where=config_path).data


# ----------------------------------------------------------------------------------- point 3: dry-run data checks
def test_dry_run_checks_the_root_the_layout_and_counts_every_split(tmp_path, capsys):
    code, _, err = dry_run(video_experiment(tmp_path, {"video_root": str(tmp_path / "absent")}), capsys)
    assert code == 2 and "absent: video root not found" in err
    (tmp_path / "empty").mkdir()
    code, _, err = dry_run(video_experiment(tmp_path, {"video_root": str(tmp_path / "empty")}), capsys)
    assert code == 2 and "expected one folder per class" in err
    root = folder_dataset(tmp_path / "videos")
    code, _, err = dry_run(video_experiment(tmp_path, {"video_root": str(root), "video_layout": "ucf-101"}), capsys)
    assert code == 2 and "video_layout must be one of" in err and "got 'ucf-101'" in err and "ucf101" in err
    write_video(root / "run" / "bad.mp4", 0).write_bytes(b"not a video at all" * 10)
    code, out, err = dry_run(video_experiment(tmp_path, {"video_root": str(root)}), capsys)
    assert code == 0, err
    split_lines = [line for line in out.splitlines() if line.strip().startswith(("train:", "validation:", "test:"))]
    total = sum(int(line.split(":")[1].split()[0]) for line in split_lines)
    assert len(split_lines) == 3 and total == 18  # 19 files, one not a video
    assert "run/bad.mp4 (could not be decoded" in out


# ---------------------------------------------------------------------- point 5: truncated faststart mp4 counted
def test_a_truncated_faststart_mp4_is_skipped_and_counted(tmp_path, capsys):
    root = folder_dataset(tmp_path / "videos")
    for k in range(3):
        truncate(write_video(root / "run" / f"cut{k}.mp4", 0, frames=40, noise=True, faststart=True), 0.6)
    code, out, err = dry_run(video_experiment(tmp_path, {"video_root": str(root)}), capsys)
    assert code == 0, err
    assert out.count("(truncated") == 3, out
    data = datasets.load_splits(_data_config(video_experiment(tmp_path, {"video_root": str(root)})))
    skipped = [(name, reason) for items in data.skipped.values() for name, reason in items]
    assert sorted(name for name, _ in skipped) == ["run/cut0.mp4", "run/cut1.mp4", "run/cut2.mp4"]
    assert all(reason.startswith("truncated") for _, reason in skipped)
    assert len(data.train.labels) + len(data.validation.labels) + len(data.test.labels) == 18


# ------------------------------------------------------------------------ point 6: Kinetics test without labels
def test_kinetics_with_an_unlabelled_test_csv_loads_train_and_validation(tmp_path, capsys):
    root = tmp_path / "kinetics"
    labelled = ["label,youtube_id,time_start,time_end,split"]
    for split, folder in (("train", "train"), ("validate", "val")):
        for c, label in enumerate(("abseiling", "air drumming")):
            for k in range(3):
                yid = f"{split[:2]}{c}{k}xxxxxxxx"[:11]
                labelled.append(f"{label},{yid},{k},{k + 10},{split}")
                write_video(root / folder / label / f"{yid}_{k:06d}_{k + 10:06d}.mp4", 100 * c, frames=6)
    (root / "train.csv").write_text("\n".join(labelled) + "\n")
    # as distributed: the test CSV has no label column
    (root / "test.csv").write_text("youtube_id,time_start,time_end,split\ntestvideo01,0,10,test\n")
    write_video(root / "test" / "testvideo01_000000_000010.mp4", 50, frames=6)
    config = video_experiment(tmp_path, {"video_root": str(root), "video_layout": "kinetics"})
    code, out, err = dry_run(config, capsys)
    assert code == 0, err
    assert "train: 6 videos in 2 classes" in out and "validation: 6 videos in 2 classes" in out
    data = datasets.load_splits(_data_config(config))
    assert data.num_classes == 2 and sorted(data.train.labels.tolist()) == [0, 0, 0, 1, 1, 1]


# ---------------------------------------------------------------------------------- point 7: symlinked splits
def test_symlinked_split_folders_are_followed(tmp_path, capsys):
    store = tmp_path / "store"
    root = tmp_path / "kinetics"
    rows = ["label,youtube_id,time_start,time_end,split"]
    for split in ("train", "val"):
        for c, label in enumerate(("a", "b")):
            for k in range(3):
                yid = f"{split}{c}{k}yyyyyyyy"[:11]
                rows.append(f"{label},{yid},0,10,{'validate' if split == 'val' else split}")
                write_video(store / split / label / f"{yid}_000000_000010.mp4", 100 * c, frames=6)
    root.mkdir()
    (root / "annotations.csv").write_text("\n".join(rows) + "\n")
    for split in ("train", "val"):
        os.symlink(store / split, root / split, target_is_directory=True)
    os.symlink(root, store / "train" / "a" / "loop", target_is_directory=True)  # a loop is visited once
    code, out, err = dry_run(video_experiment(tmp_path, {"video_root": str(root), "video_layout": "kinetics"}),
                             capsys)
    assert code == 0, err
    assert "train: 6 videos in 2 classes" in out and "validation: 6 videos" in out


# --------------------------------------------------------------- point 8: malformed split lines, unreadable files
def test_a_malformed_hmdb_line_names_file_and_line(tmp_path, capsys):
    root = tmp_path / "hmdb"
    for label, name in enumerate(["brush_hair", "cartwheel"]):
        for k in range(3):
            write_video(root / name / f"{name}_{k}.avi", 100 * label, frames=6)
        (root / f"{name}_test_split1.txt").write_text(f"{name}_0.avi 1\n{name}_1.avi 1\n{name}_2.avi 2\n")
    (root / "cartwheel_test_split1.txt").write_text("cartwheel_0.avi 1\ncartwheel_1.avi\n")
    code, _, err = dry_run(video_experiment(tmp_path, {"video_root": str(root), "video_layout": "hmdb51"}), capsys)
    assert code == 2 and "Traceback" not in err
    assert "cartwheel_test_split1.txt: line 2: expected '<video> 0|1|2', got 'cartwheel_1.avi'" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_root_and_files_are_reported_as_unreadable(tmp_path, capsys):
    root = folder_dataset(tmp_path / "videos")
    (root / "run" / "run_0.mp4").chmod(0)
    code, out, err = dry_run(video_experiment(tmp_path, {"video_root": str(root)}), capsys)
    assert code == 0 and "run/run_0.mp4 (unreadable: Permission denied)" in out
    root.chmod(0)
    try:
        code, _, err = dry_run(video_experiment(tmp_path, {"video_root": str(root)}), capsys)
        assert code == 2 and "cannot read the video root" in err
    finally:
        root.chmod(0o755)


def test_unreadable_files_are_reported_as_unreadable_not_undecodable(tmp_path, monkeypatch, capsys):
    """The same as above where the tests run as root: a file whose opening is refused."""
    import builtins

    from attnas.evaluators.data import FrameSampling, VideoFolder

    root = folder_dataset(tmp_path / "videos")
    refused = str(root / "run" / "run_0.mp4")
    real_open = builtins.open

    def guarded(file, *args, **kwargs):
        if str(file) == refused:
            raise PermissionError(13, "Permission denied", refused)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)
    folder = VideoFolder(root, sampling=FrameSampling(frames=4, resize=20, crop=16), cache=None)
    skipped = [item for split in ("train", "validation", "test") if folder.load(split) is not None
               for item in folder.skipped[split]]
    assert skipped == [("run/run_0.mp4", "unreadable: Permission denied")]
    # an unreadable root: one line through the CLI, no PermissionError
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: str(path) != str(root) and real_access(path, mode))
    assert main(["search", video_experiment(tmp_path, {"video_root": str(root)}), "--dry-run"]) == 2
    assert f"{root}: cannot read the video root (permission denied)" in capsys.readouterr().err


# ------------------------------------------------------------- point 9: VideoFolder options in the experiment file
def test_fold_split_dir_annotations_and_validation_fraction_from_the_experiment_file(tmp_path, capsys):
    root, lists = tmp_path / "UCF-101", tmp_path / "lists"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 Archery\n2 Bowling\n")
    names = [f"{c}/v_{c}_g{g:02d}_c01.avi" for c in ("Archery", "Bowling") for g in range(1, 9)]
    for name in names:
        write_video(root / name, 100 * name.startswith("Bowling"), frames=6)
    # fold 1 tests on groups 1-2, fold 2 on groups 7-8
    for fold, test_groups in ((1, (1, 2)), (2, (7, 8))):
        test = [n for n in names if int(n.split("_g")[1][:2]) in test_groups]
        (lists / f"trainlist0{fold}.txt").write_text("".join(f"{n}\n" for n in names if n not in test))
        (lists / f"testlist0{fold}.txt").write_text("".join(f"{n}\n" for n in test))
    data = {"video_root": str(root), "video_layout": "ucf101", "video_split_dir": str(lists), "video_fold": 2,
            "video_validation_fraction": 0.4}
    config = video_experiment(tmp_path, data)
    code, out, err = dry_run(config, capsys)
    assert code == 0, err
    assert "test: 4 videos in 2 classes" in out
    from attnas.evaluators.datasets import video_folder

    folder = video_folder(_data_config(config))
    assert sorted(e.name.split("_g")[1][:2] for e in folder.entries("test")[1]) == ["07", "07", "08", "08"]
    assert folder.validation_fraction == 0.4 and folder.fold == 2
    # a Kinetics annotation file outside the root
    kinetics = tmp_path / "k"
    for c in range(4):
        write_video(kinetics / f"vid{c}xxxxxxx_000000_000010.mp4", 100 * (c % 2), frames=6)
    annotations = tmp_path / "ann" / "k400.csv"
    annotations.parent.mkdir()
    annotations.write_text("label,youtube_id,time_start,time_end,split\n"
                           "a,vid0xxxxxxx,0,10,train\nb,vid1xxxxxxx,0,10,train\n"
                           "a,vid2xxxxxxx,0,10,validate\nb,vid3xxxxxxx,0,10,validate\n")
    code, out, err = dry_run(video_experiment(tmp_path, {"video_root": str(kinetics), "video_layout": "kinetics",
                                                         "video_annotations": str(annotations)}), capsys)
    assert code == 0 and "train: 2 videos in 2 classes" in out, err


# --------------------------------------------------------------- point 4: the pretrained backbone follows the data
def _fresh_process():
    datasets.clear_memo()
    pretrained.clear_memo()


def test_the_pretrained_backbone_is_retrained_when_classes_or_files_change(tmp_path, capsys):
    root = folder_dataset(tmp_path / "videos")
    config = video_experiment(tmp_path, {"video_root": str(root)})
    backbones = tmp_path / "cache" / "backbones"
    assert main(["evaluate", "none", "--config", config]) == 0
    assert len(list(backbones.glob("*.pt"))) == 1
    _fresh_process()
    assert main(["evaluate", "none", "--config", config]) == 0  # nothing changed: the same backbone
    assert len(list(backbones.glob("*.pt"))) == 1
    for k in range(6):  # a new class folder: 4 outputs instead of 3
        write_video(root / "climb" / f"climb_{k}.mp4", 200, frames=9)
    _fresh_process()
    assert main(["evaluate", "none", "--config", config]) == 0, capsys.readouterr().err
    assert len(list(backbones.glob("*.pt"))) == 2
    write_video(root / "jump" / "jump_0.mp4", 90, frames=9)  # a changed file
    _fresh_process()
    assert main(["evaluate", "none", "--config", config]) == 0
    assert len(list(backbones.glob("*.pt"))) == 3


# ------------------------------------------------------------------- point 10: use_cache false keeps nothing
def test_use_cache_false_writes_no_cache_anywhere(tmp_path, capsys):
    root = folder_dataset(tmp_path / "videos")
    config = video_experiment(tmp_path, {"video_root": str(root), "use_cache": False})
    assert main(["evaluate", "none", "--config", config]) == 0, capsys.readouterr().err
    assert not (tmp_path / "cache").exists() and not (tmp_path / "default-cache").exists()
    _fresh_process()
    cached = video_experiment(tmp_path, {"video_root": str(root)}, name="cached")
    assert main(["evaluate", "none", "--config", cached]) == 0
    assert len(list((tmp_path / "cache" / "datasets").glob("*/meta.json"))) == 3
    assert not (tmp_path / "default-cache").exists()  # the configured cache_dir, not the default one


# -------------------------------------------------------------- point 12: cache size limit and `attnas cache`
def test_attnas_cache_shows_and_clears_and_the_limit_evicts_least_recently_used(tmp_path, capsys, monkeypatch):
    import time

    root = folder_dataset(tmp_path / "videos")
    config = video_experiment(tmp_path, {"video_root": str(root)})
    data = _data_config(config)
    datasets.load_splits(data)
    cache_dir = str(tmp_path / "cache")
    assert main(["cache", "--dir", cache_dir]) == 0
    out = capsys.readouterr().out
    assert "3 datasets" in out and out.count("videos folder") == 3
    entries = sorted((tmp_path / "cache" / "datasets").glob("*/meta.json"))
    # the train split used last: it survives a limit that holds one entry
    time.sleep(0.05)
    _fresh_process()
    train = datasets.video_folder(data, cache=datasets.ArrayCache(tmp_path / "cache" / "datasets"))
    train.load("train")
    used_last = max(entries, key=lambda m: m.stat().st_mtime).parent
    size = sum(p.stat().st_blocks * 512 for p in used_last.rglob("*"))
    assert main(["cache", "--dir", cache_dir, "--limit", str(size)]) == 0
    assert "removed 2 least recently used" in capsys.readouterr().out
    assert [m.parent for m in (tmp_path / "cache" / "datasets").glob("*/meta.json")] == [used_last]
    # ATTNAS_CACHE_LIMIT evicts after every new entry
    monkeypatch.setenv("ATTNAS_CACHE_LIMIT", str(size))
    _fresh_process()
    datasets.load_splits(data)  # train read from the cache, validation and test written again
    left = [m.parent for m in (tmp_path / "cache" / "datasets").glob("*/meta.json")]
    assert 1 <= len(left) < 3 and sum(p.stat().st_blocks * 512 for e in left for p in e.rglob("*")) <= size
    assert main(["cache", "--dir", cache_dir, "--clear"]) == 0
    assert not list((tmp_path / "cache").glob("*/*"))
    assert main(["cache", "--dir", cache_dir, "--limit", "lots"]) == 2
    assert "--limit: expected a size such as 500M or 20G, got 'lots'" in capsys.readouterr().err


# --------------------------------------------------- point 2: skipped files reach the console, run folder, history
@pytest.mark.slow
def test_a_search_lists_skipped_videos_in_console_run_folder_and_history(tmp_path, capsys):
    from attnas.experiments.run_folder import open_run

    root = folder_dataset(tmp_path / "videos")
    truncate(write_video(root / "run" / "cut.mp4", 0, frames=40, noise=True, faststart=True))
    (root / "swim" / "notes.mp4").write_bytes(b"this is not a video" * 20)
    config = video_experiment(tmp_path, {"video_root": str(root)}, budget={"trials": 1})
    assert main(["search", config, "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "skipped 2 videos (1 truncated or corrupt, 1 could not be decoded)" in out, out
    listing = (tmp_path / "runs" / "videos" / "skipped_videos.tsv").read_text().splitlines()
    assert listing[0] == "split\tvideo\treason"
    rows = sorted(line.split("\t")[1:] for line in listing[1:])
    assert [name for name, _ in rows] == ["run/cut.mp4", "swim/notes.mp4"]
    assert rows[0][1].startswith("truncated") and rows[1][1].startswith("could not be decoded")
    history = open_run(tmp_path / "runs" / "videos").history()
    assert history.metadata["skipped_videos"] == 2
    assert sorted(r.split("\t")[1] for r in history.trials()[0].attrs["skipped_videos"]) == ["run/cut.mp4",
                                                                                             "swim/notes.mp4"]
