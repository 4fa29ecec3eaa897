"""AttnBench tables for tests: a tiny one built for real by the build command, and format-only ones.

`tiny_attnbench_table` (session fixture, registered in tests/conftest.py) runs `benchmarks/attnbench_build.py build`
and `pack` as a user would, on tiny settings: the first `TINY_CELLS` cells (hash order) of the `tiny` space, two
seeds, two epochs of a tiny proxy. `write_made_up_table` writes a table from MADE-UP numbers, for tests where only
the table format or the adapter's bookkeeping is under test; its meta says so.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from attnas.search_space import load_space
from attnas.search_space.attnbench import enumerate_cells, write_table

ROOT = Path(__file__).resolve().parent.parent
TINY_CELLS = 4
TINY_SEEDS = 2
TINY_PROXY = {"data": {"task": "odd_one_out", "train_size": 96, "validation_size": 64, "test_size": 32},
              "epochs": 2, "batch_size": 16, "eval_batch_size": 64, "measure_latency": False, "pretrain_epochs": 1,
              "backbone_args": {"stem_width": 8, "widths": [8, 16], "strides": [[1, 2, 2], [1, 1, 1]],
                                "stem_stride": [1, 2, 2], "stem_kernel": [1, 3, 3]}}


def run_build_command(*args: str, cache: Path) -> str:
    """Run `python -m benchmarks.attnbench_build ARGS` from the repository root; its output."""
    env = {**os.environ, "ATTNAS_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "benchmarks.attnbench_build", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def build_tiny_table(folder: Path) -> Path:
    """Build and pack the tiny table in `folder`; returns the table's path."""
    store, out = folder / "store", folder / "attnbench.json.gz"
    run_build_command("build", "--space", "tiny", "--cells", str(TINY_CELLS), "--seeds", str(TINY_SEEDS),
                      "--workers", "2", "--proxy", json.dumps(TINY_PROXY), "--store", str(store),
                      cache=folder / "cache")
    run_build_command("pack", "--store", str(store), "--out", str(out), cache=folder / "cache")
    return out


@pytest.fixture(scope="session")
def tiny_attnbench_table(tmp_path_factory) -> Path:
    """The tiny AttnBench table, built once per test session by the real build command."""
    return build_tiny_table(tmp_path_factory.mktemp("attnbench"))


def write_made_up_table(path: Path, *, space: str = "small", cells: int | None = None, epochs: int = 3,
                        seeds: int = 2, seed: int = 0) -> Path:
    """A table of `space`'s cells (the first `cells` in hash order) with MADE-UP accuracies, for format tests."""
    rng = np.random.default_rng(seed)
    rows = []
    for cell in enumerate_cells(load_space(space))[:cells]:
        final = rng.uniform(0.2, 0.9, size=seeds)
        runs = [{"seed": s, "curve": [float(final[s] * (e + 1) / epochs) for e in range(epochs)],
                 "top1": float(final[s]), "test_top1": float(final[s] - 0.01), "trial_seconds": 1.0}
                for s in range(seeds)]
        rows.append({"hash": cell.hash, "cell": cell.to_dict(), "macs": 1000.0, "params": 10.0, "runs": runs})
    size = len(enumerate_cells(load_space(space)))
    meta = {"made_up": "numbers made up by tests/attnbench_tables.py: not a benchmark", "space": space,
            "cells_in_space": size, "cells": len(rows), "seeds": list(range(seeds)), "epochs": epochs,
            "date": "test", "complete": len(rows) == size}
    return write_table(path, meta=meta, cells=rows)
