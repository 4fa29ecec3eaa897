"""Search-driver figures for RESULTS.md (issue: experiments): the quick-start search end to end, the driver's
overhead per trial, trials per hour with one and two concurrent workers, and `attnas status` / `attnas resume` on a
history of 5,000 trials.

Run from the repository root on an otherwise idle machine: `python -m benchmarks.search_driver [--quick]`.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import yaml

from benchmarks.results import table, write_section
from attnas.experiments.run_folder import create_run, open_run
from attnas.search_space import load_space

QUICKSTART = Path("experiments/configs/quickstart.yaml")


def cli(*args: str, timeout: float = 3600) -> float:
    """Run the attnas CLI in a fresh process; returns its wall time in seconds."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "attnas.experiments.cli", *args], check=True, timeout=timeout,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - started


def quickstart(folder: Path) -> str:
    from attnas.evaluators.proxy import ProxyEvaluator
    from attnas.experiments.config import load_experiment, proxy_config

    wall = cli("search", str(QUICKSTART), "--runs-dir", str(folder), "--quiet")
    history = open_run(folder / "quickstart").history()
    records = history.trials()
    best = history.best(1)[0]
    config = load_experiment(str(QUICKSTART))
    backbone = ProxyEvaluator(proxy_config(config.evaluator, where=str(QUICKSTART))).evaluate(None)
    states = {s: sum(1 for r in records if r.state == s) for s in ("complete", "pruned", "failed")}
    return (f"`attnas search {QUICKSTART}` (budget {config.budget.trials} trials or {config.budget.time}, "
            f"{config.concurrency} at once, ASHA): **{wall / 60:.1f} min** wall time for {len(records)} trials "
            f"({states['complete']} complete, {states['pruned']} pruned by ASHA, {states['failed']} failed).\n\n"
            + table(["", "validation top-1", "multiply-adds", "params"], [
                [f"best cell {best.hash} (trial {best.number})", f"{best.value:.4f}",
                 f"{best.values.get('macs', 0):,.0f}", f"{best.values.get('params', 0):,.0f}"],
                ["backbone alone (same evaluator, same seed)", f"{backbone.top1:.4f}", f"{backbone.macs:,}",
                 f"{backbone.params:,}"],
            ]))


def throughput_config(folder: Path, *, concurrency: int, trials: int) -> str:
    data = yaml.safe_load(QUICKSTART.read_text())
    data.update(name=f"throughput{concurrency}", controller={"name": "random"}, concurrency=concurrency,
                budget={"trials": trials}, early_stopping={"scheduler": "none"})
    path = folder / f"throughput{concurrency}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def overhead_and_throughput(folder: Path, trials: int) -> str:
    rows, rates = [], {}
    for concurrency in (1, 2):
        wall = cli("search", throughput_config(folder, concurrency=concurrency, trials=trials),
                   "--runs-dir", str(folder), "--quiet")
        records = open_run(folder / f"throughput{concurrency}").history().trials()
        spans = [r.attrs["finished_at"] - r.attrs["started_at"] for r in records]
        inside = [r.attrs["trainable_s"] for r in records]
        overhead = [span - own for span, own in zip(spans, inside)]
        rates[concurrency] = len(records) / wall * 3600
        rows.append([concurrency, len(records), f"{wall:.0f}", f"{rates[concurrency]:.0f}",
                     f"{statistics.mean(inside):.1f}", f"{statistics.mean(overhead):.2f}",
                     f"{100 * sum(overhead) / sum(spans):.1f}%"])
    return (table(["concurrent trials", "trials", "wall s (incl. Ray start)", "trials / hour",
                   "mean s inside trainable", "mean driver overhead s / trial", "overhead / trial time"], rows)
            + f"\n\nTwo workers vs one: **{rates[2] / rates[1]:.2f}x** trials per hour (aim: 1.8x). Driver overhead"
            " per trial = time from the searcher's suggest to its on_trial_complete minus the time spent inside"
            " the trainable (scheduling, result and checkpoint handling, history writes); the wall time also"
            " holds Ray's start-up, paid once per search.")


def big_history(folder: Path, trials: int) -> str:
    config = yaml.safe_load(QUICKSTART.read_text())
    config.update(name="big", space="default", budget={"trials": trials})
    run = create_run("big", root=folder)
    run.experiment_file.write_text(yaml.safe_dump(config))
    run.space_file.write_text(Path("experiments/configs/spaces/default.yaml").read_text())
    space = load_space("default")
    history = run.history(create=True)
    rng = np.random.default_rng(0)
    names, cards = space.vector_names(), space.vector_cardinalities()
    distributions = {n: optuna.distributions.CategoricalDistribution(list(range(c))) for n, c in zip(names, cards)}
    seen, made = set(), []
    while len(made) < trials:
        cell = space.sample(rng)
        if cell.hash in seen:
            continue
        seen.add(cell.hash)
        accuracy = float(rng.uniform(0.3, 0.9))
        values = {"accuracy": accuracy, "macs": float(rng.uniform(1e6, 1e7)), "params": 3e4,
                  "latency_ms": 2.0, "wall_time_s": 20.0}
        made.append(optuna.trial.create_trial(
            value=accuracy, params=dict(zip(names, map(int, space.encode_vector(cell)))),
            distributions=distributions, intermediate_values={1: accuracy / 2, 2: accuracy * 0.9, 3: accuracy},
            user_attrs={"cell": cell.to_dict(), "hash": cell.hash, "controller": "evolution", "values": values,
                        "ray_trial_id": f"synthetic_{len(made)}", **{k: v for k, v in values.items()
                                                                      if k != "accuracy"}}))
    history.study.add_trials(made)
    status_s = cli("status", str(run.path))
    resume_s = cli("resume", str(run.path), "--quiet")
    return table(["command", "seconds"], [
        [f"`attnas status` on {trials:,} trials", f"{status_s:.2f}"],
        [f"`attnas resume` on {trials:,} trials (controller rebuilt, budget already spent)", f"{resume_s:.2f}"],
    ]) + "\n\nBoth are whole command runs in a fresh process (Python and library imports included)."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer trials; skip the full quick-start search")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="attnas-bench-") as tmp:
        folder = Path(tmp)
        parts = []
        if not args.quick:
            parts.append("### The quick-start search, end to end\n\n" + quickstart(folder))
        parts.append("### Driver overhead and throughput (quick-start evaluator, random controller, no early "
                     "stopping)\n\n" + overhead_and_throughput(folder, 4 if args.quick else 8))
        parts.append("### A history of 5,000 trials\n\n" + big_history(folder, 1000 if args.quick else 5000))
    body = "\n\n".join(parts)
    write_section("search_driver", "Search driver: quick-start, overhead, throughput, big histories "
                  "(issue: experiments)", body)
    print(body)


if __name__ == "__main__":
    main()
