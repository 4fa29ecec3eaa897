"""The AttnBench build job (benchmarks/attnbench_build.py) on tiny settings, run as a user runs it: the table it
packs holds what the trials measured, a second run resumes (runs nothing done), and shards split the cells."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from benchmarks.attnbench_build import build_jobs
from attnas.search_space import CellSpec, load_space
from attnas.search_space.attnbench import enumerate_cells, load_table
from tests.attnbench_tables import TINY_CELLS, TINY_PROXY, TINY_SEEDS, run_build_command


@pytest.mark.slow
def test_the_packed_table_holds_every_measured_run_with_its_settings(tiny_attnbench_table):
    table = load_table(tiny_attnbench_table)
    meta = table.meta
    assert meta["cells"] == TINY_CELLS and meta["cells_in_space"] == 13 and meta["complete"] is False
    assert meta["seeds"] == [0, 1] and meta["epochs"] == TINY_PROXY["epochs"] == table.epochs
    assert meta["build_command"].startswith("python -m benchmarks.attnbench_build build --space tiny --cells 4")
    assert meta["settings"]["proxy"]["threads"] == 1 and meta["settings"]["proxy"]["data"]["train_size"] == 96
    assert {"python", "torch", "numpy", "attnas"} <= set(meta["software"]) and meta["date"].endswith("UTC")
    first = [c.hash for c in enumerate_cells(load_space("tiny"))][:TINY_CELLS]
    assert sorted(table.records) == first, "the first cells in hash order"
    store = tiny_attnbench_table.parent / "store" / "trials.jsonl"
    trials = [json.loads(line) for line in store.read_text().splitlines()]
    assert len(trials) == TINY_CELLS * TINY_SEEDS
    for trial in trials:
        run = table.records[trial["label"]].runs[trial["seed"]]
        assert run["curve"] == [epoch["top1"] for epoch in trial["curve"]] and len(run["curve"]) == table.epochs
        assert run["top1"] == trial["top1"] == run["curve"][-1] and run["test_top1"] == trial["test_top1"]
        assert run["trial_seconds"] == trial["wall_time"] > 0
        assert table.records[trial["label"]].macs == trial["macs"] > 0
        assert table.records[trial["label"]].params == trial["params"] > 0


@pytest.mark.slow
def test_a_second_build_resumes_and_a_larger_one_runs_only_the_new_cells(tiny_attnbench_table, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(tiny_attnbench_table.parent / "store", store)
    cache = tiny_attnbench_table.parent / "cache"
    common = ["--space", "tiny", "--seeds", str(TINY_SEEDS), "--proxy", json.dumps(TINY_PROXY),
              "--store", str(store)]
    again = run_build_command("build", "--cells", str(TINY_CELLS), *common, cache=cache)
    assert "to run" not in again, "everything was done: nothing runs"
    started = run_build_command("build", "--cells", str(TINY_CELLS), *common, "--background", cache=cache)
    pid = int((store / "build.pid").read_text())
    assert f"running in the background as pid {pid}" in started
    deadline = time.monotonic() + 300
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:  # detached: not our child to wait for
        time.sleep(0.5)
    log = (store / "build.log").read_text()
    assert f"AttnBench build: {TINY_CELLS * TINY_SEEDS} jobs" in log and "to run" not in log
    more = run_build_command("build", "--cells", str(TINY_CELLS + 1), "--workers", "2", *common, cache=cache)
    assert f"{TINY_CELLS * TINY_SEEDS} already in trials.jsonl, {TINY_SEEDS} to run" in more
    out = tmp_path / "t.json.gz"
    packed = run_build_command("pack", "--store", str(store), "--out", str(out), cache=cache)
    assert f"{TINY_CELLS + 1} of 13 cells at 2 seeds" in packed and "PARTIAL" in packed
    assert len(load_table(out).records) == TINY_CELLS + 1


def test_jobs_follow_hash_order_and_shards_partition_them():
    cells = [c.to_dict() for c in enumerate_cells(load_space("tiny"))]
    every = build_jobs(cells, proxy={"p": 1}, seeds=2, limit=None, shard=(0, 1))
    assert [j["label"] for j in every[::2]] == sorted(CellSpec.from_dict(c).hash for c in cells)
    assert [j["seed"] for j in every[:4]] == [0, 1, 0, 1]
    shards = [build_jobs(cells, proxy={"p": 1}, seeds=2, limit=None, shard=(i, 3)) for i in range(3)]
    keys = [j["key"] for shard in shards for j in shard]
    assert sorted(keys) == sorted(j["key"] for j in every) and len(set(keys)) == len(keys)
    assert len(build_jobs(cells, proxy={"p": 1}, seeds=1, limit=5, shard=(0, 1))) == 5
