"""Controllers on AttnBench: random, evolution, bayesian and tpe search the table (controllers/attnbench.py).

Two parts, both replayed from the table (no training):

- one trial at a time, up to 150 evaluations, N seeds per controller: mean (standard error) best-so-far validation
  accuracy at 10/25/50/100/150 evaluations, the test accuracy of the best-so-far cell at the end, the regret against
  the table's best cell and the evaluations each controller needs to reach random search's mean at 150;
- multi-fidelity: the same controllers with ASHA (grace period 1, reduction factor 2, as the default experiment)
  replayed from the stored per-epoch curves, one trial at a time, counted in epochs: a budget of 150 full trials'
  epochs, the best-so-far final validation accuracy among trials ASHA let finish, at the epoch counts of 10/25/50/
  100/150 full trials.

Run: python -m benchmarks.controllers_attnbench [--table attnbench|PATH] [--seeds 30] [--controllers a,b]
RESULTS.md gets the section only from a complete table (`--print` shows the figures without writing them).
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.controller_comparison import comparison_rows, search_curve  # noqa: E402
from benchmarks.results import table, write_section  # noqa: E402
from attnas.controllers import create_controller  # noqa: E402
from attnas.controllers.attnbench import AttnBenchSpace  # noqa: E402
from attnas.controllers.base import SpaceExhausted  # noqa: E402
from attnas.search_space.attnbench import load_table  # noqa: E402

CONTROLLER_NAMES = ("random", "evolution", "bayesian", "tpe")
CHECKPOINTS = (10, 25, 50, 100, 150)
EVALUATIONS = 150
GRACE_PERIOD, REDUCTION_FACTOR = 1, 2


class ReplayedAsha:
    """Ray Tune's ASHA rule (one bracket), replayed on stored curves: at each rung (grace period x rf^k epochs,
    below the last epoch) a trial stops when its value is below the (1 - 1/rf) quantile of the values recorded at
    that rung so far."""

    def __init__(self, epochs: int, *, grace_period: int = GRACE_PERIOD, reduction_factor: int = REDUCTION_FACTOR):
        self.rf = reduction_factor
        self.rungs: dict[int, list[float]] = {}
        milestone = grace_period
        while milestone < epochs:
            self.rungs[milestone] = []
            milestone *= reduction_factor

    def run(self, curve: list[float]) -> int:
        """Epochs the trial with this curve trains before ASHA stops it (len(curve) when it finishes)."""
        for milestone, recorded in self.rungs.items():
            value = curve[milestone - 1]
            cutoff = np.nanpercentile(recorded, (1 - 1 / self.rf) * 100) if recorded else None
            recorded.append(value)
            if cutoff is not None and value < cutoff:
                return milestone
        return len(curve)


def asha_curve(name: str, seed: int, space: AttnBenchSpace, budget_epochs: int) -> np.ndarray:
    """Best-so-far final validation accuracy (among trials ASHA let finish) after each epoch of one search."""
    controller = create_controller(name, space=space, seed=seed)
    asha = ReplayedAsha(space.table.epochs)
    best, curve, trial = -np.inf, [], 0
    while len(curve) < budget_epochs:
        try:
            cell = controller.propose(trial)
        except SpaceExhausted:
            break
        stored = space.table.record(cell.hash).curve
        epochs = asha.run(stored)
        finished = epochs == len(stored)
        controller.observe(trial, cell, {"accuracy": stored[epochs - 1]}, "complete" if finished else "pruned")
        for epoch in range(epochs):
            if finished and epoch == epochs - 1:
                best = max(best, stored[-1])
            curve.append(best)
        trial += 1
    curve += [best] * (budget_epochs - len(curve))  # the whole table seen before the budget ran out
    return np.array(curve[:budget_epochs])


def compare(table_path: str, names: list[str], seeds: int, evaluations: int = EVALUATIONS) -> dict:
    """Every figure of the section, as numbers (see the module docstring)."""
    space = AttnBenchSpace(table_path)
    records = space.table.records
    evaluations = min(evaluations, space.size())
    curves, seconds, test_at_end = {}, {}, {}
    for name in names:
        start = time.perf_counter()
        runs, tests = [], []
        for seed in range(seeds):
            seen: list[tuple[float, str]] = []
            runs.append(search_curve(name, seed, space, lambda cell, seen=seen: _noted(space, cell, seen),
                                     evaluations))
            tests.append(records[max(seen, key=lambda s: s[0])[1]].test_accuracy)  # the first best found
        curves[name], test_at_end[name] = np.stack(runs), float(np.mean(tests))
        seconds[name] = time.perf_counter() - start
        print(f"{name}: {curves[name].mean(0)[-1]:.4f} after {evaluations} ({seconds[name]:.0f} s)", flush=True)
    epochs = space.table.epochs
    asha = {name: np.stack([asha_curve(name, seed, space, evaluations * epochs) for seed in range(seeds)])
            for name in names}
    return {"space": space, "curves": curves, "seconds": seconds, "test_at_end": test_at_end, "asha": asha,
            "optimum": space.table.best.accuracy, "optimum_test": space.table.best.test_accuracy,
            "evaluations": evaluations, "epochs": epochs, "seeds": seeds, "cells": len(records)}


def _noted(space: AttnBenchSpace, cell, seen: list[tuple[float, str]]) -> float:
    """The cell's accuracy, noted with its hash (to find the test accuracy of the best cell a search saw)."""
    seen.append((space.accuracy(cell), cell.hash))
    return seen[-1][0]


def report(result: dict) -> str:
    """The Markdown section of RESULTS.md."""
    space, evaluations, epochs = result["space"], result["evaluations"], result["epochs"]
    headers, rows = comparison_rows(result["curves"], CHECKPOINTS, scale=100, digits=1, optimum=result["optimum"],
                                    seconds=result["seconds"])
    headers.insert(len(headers) - 1, f"test of best after {evaluations}")
    for row, name in zip(rows, result["curves"]):
        row.insert(len(row) - 1, f"{100 * result['test_at_end'][name]:.1f}")
    asha_points = tuple(c * epochs for c in CHECKPOINTS)
    asha_headers, asha_rows = comparison_rows(result["asha"], asha_points, scale=100, digits=1,
                                              optimum=result["optimum"], unit="epochs")
    return (f"{space.table.describe()}. {evaluations} evaluations per search, {result['seeds']} seeds per "
            f"controller, one trial at a time, default settings. Value: validation top-1 (%) of the cell, mean over "
            f"the table's seeds; the table's best cell scores {100 * result['optimum']:.1f} (test "
            f"{100 * (result['optimum_test'] or 0):.1f}). Cells: mean best-so-far (standard error over seeds); "
            f"regret: the table's best minus the mean best-so-far at the end.\n\n" + table(headers, rows)
            + f"\n\nWith ASHA (grace period {GRACE_PERIOD}, reduction factor {REDUCTION_FACTOR}) replayed from the "
            f"stored {epochs}-epoch curves, counted in epochs (one full trial = {epochs} epochs; columns at "
            f"{', '.join(str(p) for p in asha_points)} epochs):\n\n" + table(asha_headers, asha_rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default="attnbench", help="`attnbench` (the shipped table) or a table file")
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--controllers", default=",".join(CONTROLLER_NAMES))
    parser.add_argument("--print", action="store_true", help="print the section instead of writing RESULTS.md")
    args = parser.parse_args()
    table_ = load_table(args.table)
    result = compare(args.table, args.controllers.split(","), args.seeds)
    body = report(result)
    if args.print or not table_.complete or table_.meta.get("made_up"):
        print(body)
        if not args.print:
            print("not written to RESULTS.md: the table is partial (or made up); build it completely first")
        return
    write_section("controllers_attnbench", "Controllers on AttnBench (validation top-1)", body)


if __name__ == "__main__":
    main()
