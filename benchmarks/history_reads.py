"""Reading long histories (issue 14), for RESULTS.md: `attnas status`, `list` and `resume`, each a whole command in
a fresh process, and the dashboard's first trial list (cold: the first request of a new server), on generated
histories of 10,000 and 100,000 trials (benchmarks/big_history.py: realistic trials written by bulk inserts).

    python -m benchmarks.history_reads [--sizes 10000,100000] [--postgres postgresql+psycopg2://...]

Run from the repository root on an otherwise idle machine. With `--postgres` the smallest size is measured on that
server too (a throwaway database: the run's study is written there).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import replace

from benchmarks.results import table, write_section

ALL_TRIALS_UP_TO = 10_000  # the dashboard's whole trial list (`--trials all`) is measured up to this many trials
COMMAND_TIMEOUT = 300


def history_reads(sizes: list[int], postgres: str | None) -> str:
    from attnas.experiments.config import load_experiment
    from attnas.experiments.dashboard.trial_window import DEFAULT_LIMIT
    from benchmarks.big_history import QUICKSTART, write_big_history

    cases = [(size, "SQLite", None) for size in sizes] + ([(min(sizes), "PostgreSQL", postgres)] if postgres else [])
    rows = []
    for size, label, storage in cases:
        with tempfile.TemporaryDirectory(prefix="attnas-history-") as tmp:
            config = replace(load_experiment(str(QUICKSTART)), storage=storage)
            print(f"  history of {size:,} trials ({label}) ...", file=sys.stderr, flush=True)
            started = time.perf_counter()
            # no trial left running: resume would train those, and the figure is about reading the history
            run = write_big_history(tmp, trials=size, name=f"big{size}", config=config, running=0)
            written = time.perf_counter() - started
            status = timed_cli("status", str(run.path))
            listed = timed_cli("list", *(["--storage", storage] if storage else [tmp]))
            resumed = timed_cli("resume", str(run.path), "--quiet")
            window = dashboard_cold(run, DEFAULT_LIMIT)
            every = dashboard_cold(run, None) if size <= ALL_TRIALS_UP_TO else "not measured"
        rows.append([f"{size:,}", label, f"{written:.0f}", status, listed, resumed, window, every])
    return (table(["trials", "history", "generate s", "`attnas status` s", "`attnas list` s", "`attnas resume` s",
                   f"dashboard trial list, cold s (default: {DEFAULT_LIMIT:,} trials)",
                   "dashboard, `--trials all`, cold s"], rows)
            + "\n\nEach command is a whole run in a fresh process (Python and library imports included); `resume` "
            "finds the budget spent after rebuilding the controller. The dashboard's figure is its server's first "
            f"answer to the trial list (`/api/studies/ID`), which by default holds {DEFAULT_LIMIT:,} trials (the "
            "best tenth and the latest); with `--trials all`, every trial. Aims: status and list under 1 s, resume "
            "under 5 s at 100,000 trials. The generated trials have no drawings or notes (the dashboard serves those "
            "from the run folder).")


def dashboard_cold(run, trials: int | None) -> str:
    """Seconds to the first trial list of a new dashboard server, and the size of that answer."""
    from attnas.experiments.dashboard.server import DashboardServer
    from benchmarks.dashboard_speed import fetch

    server = DashboardServer(run.path, port=0, trials=trials).start()
    try:
        host, port = server.address
        cold, size_bytes = fetch(f"http://{host}:{port}/api/studies/{server.history.study_id}")
    finally:
        server.close()
    return f"{cold:.1f} ({size_bytes / 1e6:.0f} MB)"


def timed_cli(*args: str) -> str:
    """Seconds a whole `attnas` command takes in a fresh process, or '> N' when it did not end in N seconds."""
    from benchmarks.search_driver import cli

    try:
        return f"{cli(*args, timeout=COMMAND_TIMEOUT):.2f}"
    except subprocess.TimeoutExpired:
        return f"> {COMMAND_TIMEOUT}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="trials of the generated histories")
    parser.add_argument("--postgres", default=None, help="a PostgreSQL URL: the smallest history there too")
    args = parser.parse_args()
    body = history_reads([int(n) for n in args.sizes.split(",")], args.postgres)
    write_section("history-reads", "Long histories: the read commands and the dashboard (issue 14)", body)
    print(body)


if __name__ == "__main__":
    main()
