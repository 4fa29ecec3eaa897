"""The driver's own cost per trial, on a search of instant trials (issue 14, point 2): a custom evaluator that
returns at once, so that everything measured is the driver's (controller, history, dashboard publisher, Ray Tune).

Prints, per trial: the CPU time of the driver's thread (the Ray Tune loop that calls the searcher), split by a
cProfile of that thread into controller (propose and observe), history writes, dashboard publisher and the rest
(Ray Tune's bookkeeping, progress display); the CPU time of the whole driver process (every thread: the publisher's
worker, Ray's client threads); and the history's write transactions (commits that wrote something) on the driver's
thread and on the others.

Run from the repository root: `python -m benchmarks.driver_overhead [--trials 200] [--concurrency 2]`.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

WRITES = ("INSERT", "UPDATE", "DELETE")


def instant(cell, context):
    """The custom evaluator: a fixed score from the cell's hash, no work, no checkpoint files."""
    return {"accuracy": (int(cell.hash[-6:], 16) % 1000) / 1000.0, "macs": 1.0, "params": 1.0}


class WriteCounter:
    """Counts SQLAlchemy commits that wrote something (a transaction with an INSERT, UPDATE or DELETE), per thread
    (the driver's and the others), on every engine of this process while `counting()` is active."""

    def __init__(self):
        self.writes = {"driver": 0, "other": 0}
        self.driver_thread = threading.current_thread()
        self._dirty: set[int] = set()

    def _executed(self, connection, cursor, statement, *args):
        if statement.lstrip().upper().startswith(WRITES):
            self._dirty.add(id(connection.connection))

    def _committed(self, connection):
        if id(connection.connection) in self._dirty:
            self._dirty.discard(id(connection.connection))
            self.writes["driver" if threading.current_thread() is self.driver_thread else "other"] += 1

    def _rolled_back(self, connection):
        self._dirty.discard(id(connection.connection))

    @contextmanager
    def counting(self):
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        hooks = (("before_cursor_execute", self._executed), ("commit", self._committed),
                 ("rollback", self._rolled_back))
        for name, hook in hooks:
            event.listen(Engine, name, hook)
        try:
            yield self
        finally:
            for name, hook in hooks:
                event.remove(Engine, name, hook)


def experiment(trials: int, concurrency: int) -> dict:
    return {"name": "overhead", "space": "small", "controller": {"name": "random"},
            "evaluator": {"custom": "benchmarks.driver_overhead:instant", "epochs": 1},
            "budget": {"trials": trials}, "concurrency": concurrency}


def cumulative(stats: pstats.Stats, wanted, outside: str) -> float:
    """CPU seconds spent in the functions `wanted(file, name)` accepts, counted where they are called from code
    whose file does not contain `outside` (so nested calls are not counted twice)."""
    total = 0.0
    for (file, _, name), (_, _, _, _, callers) in stats.stats.items():
        if wanted(file.replace("\\", "/"), name):
            total += sum(ct for (caller_file, _, _), (_, _, _, ct) in callers.items() if outside not in caller_file)
    return total


def split(profile: cProfile.Profile) -> dict[str, float]:
    stats = pstats.Stats(profile)
    history = {"start", "report", "set_attrs", "hold_attrs", "flush", "finish", "tell"}
    parts = {
        "controller": cumulative(stats, lambda f, n: "/controllers/" in f and n in ("propose", "observe"),
                                 "/controllers/"),
        "history writes": cumulative(stats, lambda f, n: f.endswith("experiments/history.py") and n in history,
                                     "experiments/history.py"),
        "publisher": cumulative(stats, lambda f, n: "experiments/dashboard/" in f, "experiments/dashboard/"),
    }
    parts["total"] = stats.total_tt
    return parts


def measure(trials: int, concurrency: int, profiled: bool) -> dict:
    import ray

    import attnas

    ray.init(address="local", num_cpus=concurrency, include_dashboard=False, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory(prefix="attnas-overhead-") as folder, WriteCounter().counting() as counter:
            profile = cProfile.Profile(time.thread_time) if profiled else None
            wall, process, thread = time.perf_counter(), time.process_time(), time.thread_time()
            if profile is not None:
                profile.enable()
            run = attnas.search(experiment(trials, concurrency), runs_dir=Path(folder) / "runs")
            if profile is not None:
                profile.disable()
            figures = {"wall": time.perf_counter() - wall, "process": time.process_time() - process,
                       "thread": time.thread_time() - thread, "writes": dict(counter.writes),
                       "trials": len(run.trials)}
            if profile is not None:
                figures["split"] = split(profile)
            return figures
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--no-profile", action="store_true", help="totals only (cProfile slows the driver)")
    args = parser.parse_args()
    figures = measure(args.trials, args.concurrency, profiled=not args.no_profile)
    n = figures["trials"]
    print(f"{n} instant trials, {args.concurrency} at once: wall {figures['wall']:.1f} s "
          f"({n / figures['wall']:.2f} trials/s)")
    print(f"driver thread CPU  {1000 * figures['thread'] / n:8.1f} ms/trial")
    print(f"driver process CPU {1000 * figures['process'] / n:8.1f} ms/trial (all its threads)")
    if "split" in figures:
        parts = figures["split"]
        rest = parts["total"] - parts["controller"] - parts["history writes"] - parts["publisher"]
        print(f"profiled driver thread {1000 * parts['total'] / n:.1f} ms/trial, of which:")
        for name in ("controller", "history writes", "publisher"):
            print(f"  {name:<16}{1000 * parts[name] / n:8.1f} ms/trial")
        print(f"  {'the rest':<16}{1000 * rest / n:8.1f} ms/trial (Ray Tune, progress, searcher glue)")
    writes = figures["writes"]
    print(f"history write transactions: {writes['driver'] / n:.2f}/trial on the driver's thread, "
          f"{writes['other'] / n:.2f}/trial on other threads")


if __name__ == "__main__":
    main()
