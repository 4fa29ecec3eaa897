"""Build the AttnBench table: every cell of the `attnbench` space trained on the default proxy at 2+ seeds.

Two steps (docs/attnbench.md):

    python -m benchmarks.attnbench_build build [--seeds 2] [--cells N] [--shard I/K] [--workers W] [--background]
    python -m benchmarks.attnbench_build pack [--out PATH]

`build` runs one job per (cell, seed) on the resumable job pool (benchmarks/job_pool.py: each result appended as
a JSON line to STORE/trials.jsonl), cells in hash order (search_space.attnbench.enumerate_cells), so an interrupted
build continues where it stopped and shards (`--shard 0/4` on one machine, `1/4` on another, ...) split the work.
Each job is `job_pool.proxy_trial` of the default `ProxyConfig` (single-threaded; `--proxy` overrides fields, as
JSON) with the test split scored too. `--background` starts the same command detached, logging to STORE/build.log.

`pack` gathers the cells whose every seed is done into the gzip'd JSON table (search_space/attnbench.py) with the
build command, settings, software versions, date and counts; by default into the package
(search_space/data/attnbench.json.gz), where `load_table("attnbench")` finds it offline. A table packed before the
build finished is partial and says so.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.job_pool import job_key, proxy_trial, run_jobs  # noqa: E402
from attnas.search_space import CellSpec, load_space  # noqa: E402
from attnas.search_space.attnbench import SPACE_NAME, enumerate_cells, shipped_table_path, write_table  # noqa: E402

ROOT = Path(__file__).resolve().parent
STORE = ROOT / "runs" / "attnbench"
SETTINGS_FILE = "settings.json"
CELLS_FILE = "cells.json"


def proxy_settings(overrides: dict) -> dict:
    """The proxy every cell trains on: the default `ProxyConfig`, single-threaded, with `overrides` (JSON)."""
    from attnas.evaluators import ProxyConfig

    base = ProxyConfig(threads=1).to_dict()
    settings = replace(ProxyConfig.from_dict({**base, **overrides}), threads=1).to_dict()
    return json.loads(json.dumps(settings))  # as settings.json reads back (tuples become lists)


def space_cells(space_name: str, store: Path) -> list[dict]:
    """The space's distinct cells in hash order, kept in STORE/cells.json (enumerating takes a while) and checked
    against the space file, so that a resumed build trains the same cells."""
    cached = store / CELLS_FILE
    if cached.is_file():
        data = json.loads(cached.read_text())
        if data.get("space") == space_name and data.get("space_text") == _space_text(space_name):
            return data["cells"]
    cells = [cell.to_dict() for cell in enumerate_cells(load_space(space_name))]
    store.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps({"space": space_name, "space_text": _space_text(space_name), "cells": cells}))
    return cells


def _space_text(space_name: str) -> str:
    from attnas.search_space import space_names, space_path

    path = space_path(space_name) if space_name in space_names() else Path(space_name)
    return Path(path).read_text()


def build_jobs(cells: list[dict], *, proxy: dict, seeds: int, limit: int | None, shard: tuple[int, int]) -> list[dict]:
    """One job per (cell, seed): the first `limit` cells in hash order, every K-th from the I-th for shard I/K."""
    index, count = shard
    chosen = cells[:limit] if limit is not None else cells
    chosen = chosen[index::count]
    jobs = []
    for cell in chosen:
        digest = CellSpec.from_dict(cell).hash
        for seed in range(seeds):
            jobs.append({"proxy": proxy, "cell": cell, "seed": seed, "test": True, "label": digest,
                         "key": job_key("attnbench", proxy, digest, seed)})
    return jobs


def build(args: argparse.Namespace) -> dict[str, dict]:
    """Run (or resume) the build's jobs; returns every job's result keyed by job key."""
    store = Path(args.store)
    proxy = proxy_settings(json.loads(args.proxy))
    cells = space_cells(args.space, store)
    settings = {"space": args.space, "cells_in_space": len(cells), "seeds": args.seeds, "proxy": proxy,
                "command": _command()}
    settings_file = store / SETTINGS_FILE
    if settings_file.is_file():
        previous = json.loads(settings_file.read_text())
        if (previous["proxy"], previous["space"]) != (proxy, args.space):
            raise SystemExit(f"{settings_file}: this store was built with other proxy or space settings; use "
                             f"another --store, or delete it to start over")
        settings["seeds"] = max(args.seeds, previous["seeds"])
    settings_file.write_text(json.dumps(settings, indent=1))
    jobs = build_jobs(cells, proxy=proxy, seeds=args.seeds, limit=args.cells, shard=_shard(args.shard))
    print(f"AttnBench build: {len(jobs)} jobs ({len(jobs) // max(1, args.seeds)} cells x {args.seeds} seeds) of "
          f"{len(cells):,} cells in space {args.space!r}; store {store}", flush=True)
    return run_jobs(proxy_trial, jobs, workers=args.workers, store=store / "trials.jsonl", describe=_describe)


def pack(store: Path, out: Path) -> Path:
    """Write the table of every cell whose every seed is done in `store` (see the module docstring)."""
    settings = json.loads((store / SETTINGS_FILE).read_text())
    cells = json.loads((store / CELLS_FILE).read_text())["cells"]
    proxy, seeds = settings["proxy"], settings["seeds"]
    results = {}
    trials = store / "trials.jsonl"
    for line in (trials.read_text().splitlines() if trials.is_file() else []):
        if line.strip():
            entry = json.loads(line)
            results[entry["key"]] = entry
    rows, partial, failed = [], 0, 0
    for cell in cells:
        digest = CellSpec.from_dict(cell).hash
        runs = [results.get(job_key("attnbench", proxy, digest, seed)) for seed in range(seeds)]
        done = [r for r in runs if r is not None]
        if any(r["status"] == "failed" for r in done):
            failed += 1
            continue
        if len(done) < seeds:
            partial += bool(done)
            continue
        rows.append({"hash": digest, "cell": cell, "macs": done[0]["macs"], "params": done[0]["params"],
                     "runs": [_run(seed, r) for seed, r in enumerate(done)]})
    meta = {"build_command": settings["command"], "pack_command": _command(), "settings": settings,
            "software": _software(), "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "space": settings["space"], "cells_in_space": settings["cells_in_space"], "cells": len(rows),
            "seeds": list(range(seeds)), "epochs": proxy["epochs"], "metric": "validation top-1 (fraction)",
            "complete": len(rows) == settings["cells_in_space"], "cells_partly_done": partial,
            "cells_failed": failed}
    path = write_table(out, meta=meta, cells=rows)
    print(f"AttnBench table {path}: {len(rows):,} of {settings['cells_in_space']:,} cells at {seeds} seeds "
          f"({partial} cells partly done, {failed} with a failed run, left out)"
          f"{'' if meta['complete'] else ': PARTIAL'}", flush=True)
    return path


def _run(seed: int, result: dict) -> dict:
    return {"seed": seed, "curve": [epoch["top1"] for epoch in result["curve"]], "top1": result["top1"],
            "test_top1": result["test_top1"], "trial_seconds": result["wall_time"], "cpu_seconds": result["cpu_time"]}


def _software() -> dict:
    import numpy
    import torch

    from importlib.metadata import version

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
            "attnas": version("attnas"), "machine": f"{platform.machine()}, {os.cpu_count()} cores"}


def _command() -> str:
    argv = [a for a in sys.argv[1:] if a != "--background"]
    return "python -m benchmarks.attnbench_build " + " ".join(map(shlex.quote, argv))


def _shard(text: str) -> tuple[int, int]:
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit() and 0 <= int(index) < int(count)):
        raise SystemExit(f"--shard {text!r}: expected I/K with 0 <= I < K")
    return int(index), int(count)


def _describe(entry: dict) -> str:
    top1 = entry.get("top1")
    return (f"{entry['label']} {entry['status']} top1 {'-' if top1 is None else f'{100 * top1:.1f}'} "
            f"{entry['wall_time']:.0f} s")


def background(store: Path) -> int:
    """Start this same command without --background, detached, logging to STORE/build.log; returns its pid."""
    store.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "benchmarks.attnbench_build", *[a for a in sys.argv[1:] if a != "--background"]]
    with open(store / "build.log", "a") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=ROOT.parent, start_new_session=True)
    (store / "build.pid").write_text(str(process.pid))
    return process.pid


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("build", help="train the cells (resumable)")
    run.add_argument("--space", default=SPACE_NAME, help="search space name or file (default: attnbench)")
    run.add_argument("--seeds", type=int, default=2, help="seeds per cell, 0..N-1 (default 2)")
    run.add_argument("--cells", type=int, help="only the first N cells in hash order")
    run.add_argument("--shard", default="0/1", help="I/K: every K-th cell from the I-th (default 0/1: all)")
    run.add_argument("--workers", type=int, default=1, help="parallel single-threaded trials (default 1)")
    run.add_argument("--proxy", default="{}", help="JSON overrides of the default ProxyConfig (tests: tiny proxy)")
    run.add_argument("--store", default=str(STORE), help=f"where results accumulate (default {STORE})")
    run.add_argument("--background", action="store_true", help="run detached; log in STORE/build.log")
    packer = commands.add_parser("pack", help="write the table from what is built so far")
    packer.add_argument("--store", default=str(STORE))
    packer.add_argument("--out", default=str(shipped_table_path()), help="table file (default: in the package)")
    args = parser.parse_args(argv)
    if args.command == "build":
        if args.seeds < 1 or (args.cells is not None and args.cells < 1) or args.workers < 1:
            parser.error("--seeds, --cells and --workers must be >= 1")
        if args.background:
            pid = background(Path(args.store))
            print(f"AttnBench build running in the background as pid {pid}; log {Path(args.store) / 'build.log'}; "
                  f"stop it with `kill {pid}` and run the same command to resume")
            return
        build(args)
    else:
        pack(Path(args.store), Path(args.out))


if __name__ == "__main__":
    main()
