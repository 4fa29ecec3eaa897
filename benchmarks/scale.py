"""Scale figures for RESULTS.md (issue 14): attnas against bare Ray Tune on Ray's bookkeeping benchmark, the driver's
CPU per trial split by where it goes, worker utilisation with time-scaled 60 s trials, real quick-start trials with
one and two workers (the read commands on long histories: benchmarks/history_reads.py).

Every search runs the real driver, searcher, controller, history and publisher against a local Ray instance with more
logical CPUs than the machine has cores; trials use the simulated evaluator (evaluators/simulated.py), so their work
is a sleep. Each measurement runs in a fresh process, so Ray sessions, imports and peak memory do not leak between
them.

Run from the repository root on an otherwise idle machine: `python -m benchmarks.scale`. The defaults are scaled to
this 2-core, 24 GiB machine (see the section's notes); `--trials 10000 --slots 16` is Ray's own benchmark at full
size.
"""
from __future__ import annotations

import argparse
import cProfile
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from benchmarks.driver_overhead import split
from benchmarks.results import table, write_section

# ----------------------------------------------------------------------------------------------------------------
# One measurement, in its own process: `python -m benchmarks.scale --one KIND ...` prints one JSON line.


def _bare_tune(trials: int, slots: int, seconds: float, folder: Path) -> dict:
    """Ray's bookkeeping benchmark as Ray runs it: a function trainable that sleeps and reports once, Ray's default
    searcher, as many trials at once as there are slots."""
    from ray import tune

    def trainable(config):
        time.sleep(config["seconds"])
        tune.report({"score": config["score"]})

    tuner = tune.Tuner(trainable, param_space={"score": tune.uniform(0.0, 1.0), "seconds": seconds},
                       tune_config=tune.TuneConfig(num_samples=trials, reuse_actors=True, metric="score",
                                                   mode="max", max_concurrent_trials=slots),
                       run_config=tune.RunConfig(storage_path=str(folder), verbose=0))
    results = tuner.fit()
    return {"trials": len(results), "errors": len(results.errors)}


def simulated_experiment(*, name: str, trials: int, slots: int, epochs: int, epoch_seconds: float,
                         storage: str | None = None) -> dict:
    """An experiment of simulated trials: one CPU each, `slots` at once, the random controller (propose costs
    the same at any history size, so the figures are the driver's, not a controller's)."""
    return {"name": name, "space": "default", "controller": {"name": "random"},
            "evaluator": {"kind": "simulated", "epochs": epochs, "epoch_seconds": epoch_seconds},
            "budget": {"trials": trials}, "concurrency": slots, "resources": {"cpus": 1},
            "early_stopping": {"scheduler": "none"}, "storage": storage}


def _attnas(trials: int, slots: int, seconds: float, folder: Path, *, epochs: int = 1,
            storage: str | None = None) -> dict:
    """The simulated search; the driver thread (Ray Tune's loop, which calls the searcher) profiled and split as
    benchmarks/driver_overhead.py splits it."""
    import attnas

    experiment = simulated_experiment(name="scale", trials=trials, slots=slots, epochs=epochs,
                                      epoch_seconds=seconds / epochs, storage=storage)
    profile = cProfile.Profile(time.thread_time)
    started = time.thread_time()
    profile.enable()
    run = attnas.search(experiment, runs_dir=folder)
    profile.disable()
    records = run.trials
    spans = [(r.attrs.get("started_at"), r.attrs.get("finished_at"), r.attrs.get("trainable_s")) for r in records]
    spans = [s for s in spans if None not in s]
    first, last = min(s[0] for s in spans), max(s[1] for s in spans)
    busy = sum(s[2] for s in spans)
    states = defaultdict(int)
    for record in records:
        states[record.state] += 1
    return {"trials": len(records), "states": dict(states), "driver_thread_s": time.thread_time() - started,
            "parts": split(profile), "utilisation": busy / (slots * (last - first)),
            "span_s": last - first}


def measure_one(kind: str, trials: int, slots: int, seconds: float, storage: str | None) -> dict:
    import ray

    imported = time.perf_counter()
    if kind != "bare":  # attnas's one-time imports (torch, scipy, Tune), timed apart from the search itself
        import attnas.api  # noqa: F401
        import attnas.experiments.driver  # noqa: F401
        import attnas.experiments.searcher  # noqa: F401
    imported = time.perf_counter() - imported
    with tempfile.TemporaryDirectory(prefix="attnas-scale-") as tmp:
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        ray.init(address="local", num_cpus=slots, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            if kind == "bare":
                result = _bare_tune(trials, slots, seconds, Path(tmp))
            else:
                result = _attnas(trials, slots, seconds, Path(tmp), storage=storage,
                                 epochs=3 if kind == "utilisation" else 1)
        finally:
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            ray.shutdown()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {**result, "wall_s": wall, "driver_cpu_s": cpu, "peak_rss_mb": peak_mb, "imports_s": imported}


def run_one(kind: str, *, trials: int, slots: int, seconds: float, storage: str | None = None) -> dict:
    """`measure_one` in a fresh Python process."""
    command = [sys.executable, "-m", "benchmarks.scale", "--one", kind, "--trials", str(trials), "--slots",
               str(slots), "--seconds", str(seconds)] + (["--storage", storage] if storage else [])
    print(f"  {kind}: {trials} trials, {slots} slots, {seconds:g} s each ...", file=sys.stderr, flush=True)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------------------------------
# The figures.


def against_bare_tune(trials: int, slots: int) -> str:
    bare = run_one("bare", trials=trials, slots=slots, seconds=1.0)
    ours = run_one("attnas", trials=trials, slots=slots, seconds=1.0)
    minimum = trials / slots
    rows = [[name, f"{r['trials']:,}", f"{r['wall_s']:.0f}", f"{r['wall_s'] / minimum:.2f}",
             f"{1000 * r['driver_cpu_s'] / r['trials']:.0f}", f"{r['peak_rss_mb']:.0f}"]
            for name, r in (("bare Ray Tune (Tuner, default searcher)", bare),
                            ("attnas search (simulated evaluator)", ours))]
    return (table(["", "trials", "wall s", "wall / minimum", "driver CPU ms / trial", "driver peak MB"], rows)
            + f"\n\n{trials:,} trials of 1 s, {slots} at once on {slots} logical CPUs of one local node "
            f"(minimum {minimum:.0f} s). Wall and CPU are counted from `ray.init` to the end of the run; attnas's "
            f"one-time imports (torch, scipy, Ray Tune) took {ours['imports_s']:.1f} s more before that. attnas / bare "
            f"Tune wall time: **{ours['wall_s'] / bare['wall_s']:.2f}x** (aim: 1.2x or less).")


def driver_split(trials: int, slots: int, storages: dict[str, str | None]) -> str:
    rows = []
    for label, storage in storages.items():
        r = run_one("attnas", trials=trials, slots=slots, seconds=0.0, storage=storage)
        n, parts = r["trials"], r["parts"]
        rest = parts["total"] - parts["controller"] - parts["history writes"] - parts["publisher"]
        rows.append([label, f"{n:,}", f"{r['wall_s']:.0f}", f"{n / r['wall_s']:.1f}",
                     f"{1000 * r['driver_cpu_s'] / n:.1f}", f"{1000 * parts['total'] / n:.1f}",
                     f"{1000 * parts['controller'] / n:.1f}", f"{1000 * parts['history writes'] / n:.1f}",
                     f"{1000 * parts['publisher'] / n:.1f}", f"{1000 * rest / n:.1f}", f"{r['peak_rss_mb']:.0f}"])
    return (table(["history", "trials", "wall s", "trials / s", "driver process CPU ms / trial",
                   "driver thread (profiled)", "controller", "history writes", "publisher",
                   "Ray/Tune and the rest", "driver peak MB"], rows)
            + f"\n\nInstant simulated trials (1 epoch, no sleep, `costs: false`), random controller, {slots} at once "
            f"on {slots} logical CPUs. Driver process CPU counts every thread of the driver (the publisher's own "
            "thread, Ray's client threads); the split is a cProfile of the driver's thread (Ray Tune's loop, which "
            "calls the searcher), as in benchmarks/driver_overhead.py, and the profiler itself slows that thread.")


def utilisation(trials: int, slots: int, seconds: float) -> str:
    r = run_one("utilisation", trials=trials, slots=slots, seconds=seconds)
    return (f"{r['trials']:,} trials of 3 epochs, {seconds:g} s each (60 s trials scaled 1:{60 / seconds:g}), "
            f"{slots} at once: worker utilisation (time inside trials / (slots x span)) **{100 * r['utilisation']:.1f}"
            f" %** over {r['span_s']:.0f} s (aim: 95 % or more).")


def real_trials(trials: int) -> str:
    """Quick-start trials on this machine, one and two at once (benchmarks/search_driver.py's measurement)."""
    from benchmarks.search_driver import overhead_and_throughput

    with tempfile.TemporaryDirectory(prefix="attnas-real-") as tmp:
        return overhead_and_throughput(Path(tmp), trials)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=480, help="trials of the bare-Tune comparison (Ray: 10000)")
    parser.add_argument("--slots", type=int, default=16, help="trials at once in the bare-Tune comparison")
    parser.add_argument("--instant-trials", type=int, default=600)
    parser.add_argument("--instant-slots", type=int, default=32,
                        help="logical slots for instant trials (each running trial is one ~120 MB Ray worker)")
    parser.add_argument("--postgres", default=None, help="a PostgreSQL URL: driver split and history reads there too")
    parser.add_argument("--real-trials", type=int, default=8, help="quick-start trials per concurrency (0: skip)")
    parser.add_argument("--one", choices=("bare", "attnas", "utilisation"), help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=1.0, help=argparse.SUPPRESS)
    parser.add_argument("--storage", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one, args.trials, args.slots, args.seconds, args.storage)))
        return
    parts = [
        "### Against bare Ray Tune (Ray's bookkeeping benchmark)\n\n" + against_bare_tune(args.trials, args.slots),
        "### Driver CPU per trial, instant trials\n\n" + driver_split(
            args.instant_trials, args.instant_slots, {"SQLite": None, **({"PostgreSQL": args.postgres}
                                                                         if args.postgres else {})}),
        "### Worker utilisation, 60 s trials time-scaled\n\n" + utilisation(args.instant_trials // 2,
                                                                            args.instant_slots, 0.6),
    ]
    if args.real_trials:
        parts.append("### Real quick-start trials: driver overhead, one and two workers\n\n"
                     + real_trials(args.real_trials))
    body = "\n\n".join(parts)
    write_section("scale", "Scale: driver overhead, throughput, big histories (issue 14)", body)
    print(body)


if __name__ == "__main__":
    main()
