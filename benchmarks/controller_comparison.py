"""Controllers compared on a tabular benchmark (NAS-Bench-201, AttnBench): what benchmarks/controllers_nb201.py and
benchmarks/controllers_attnbench.py share. A search looks every cell up in a table, one trial at a time; its
best-so-far curves become the Markdown table of RESULTS.md (mean and standard error over seeds at a few evaluation
counts, evaluations to reach random search's final mean, and the regret against the table's best)."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from attnas.controllers import create_controller
from attnas.search_space.interface import Space


def search_curve(name: str, seed: int, space: Space, value: Callable[[Any], float], evaluations: int,
                 **settings: Any) -> np.ndarray:
    """Best-so-far value after each evaluation of one search of `space` by controller `name`."""
    controller = create_controller(name, space=space, seed=seed, **settings)
    best, curve = -np.inf, []
    for trial in range(evaluations):
        cell = controller.propose(trial)
        score = value(cell)
        controller.observe(trial, cell, {"accuracy": score})
        best = max(best, score)
        curve.append(best)
    return np.array(curve)


def evaluations_to_reach(mean: np.ndarray, target: float) -> int | None:
    """The first evaluation count (1-based) at which a mean best-so-far curve reaches `target`; None if never."""
    hits = np.nonzero(mean >= target - 1e-12)[0]
    return int(hits[0]) + 1 if len(hits) else None


def comparison_rows(curves: dict[str, np.ndarray], checkpoints: Sequence[int], *, scale: float = 1.0,
                    digits: int = 2, optimum: float | None = None, seconds: dict[str, float] | None = None,
                    unit: str = "evaluations") -> tuple[list[str], list[list[str]]]:
    """Headers and rows: per controller (curves: seeds x steps), mean (standard error) best-so-far at each
    checkpoint, steps to reach random search's final mean and the speed-up, regret at the end against `optimum`
    (when given) and search time per seed (when given). Values are multiplied by `scale` for display."""
    steps = next(iter(curves.values())).shape[1]
    shown = [c for c in checkpoints if c <= steps]
    target = curves["random"].mean(0)[-1] if "random" in curves else None
    headers = ["controller", *[f"best after {c}" for c in shown], f"{unit} to reach random@{steps}",
               "speed-up vs random"]
    if optimum is not None:
        headers.append(f"regret after {steps}")
    if seconds is not None:
        headers.append("search time / seed")
    rows = []
    for name, runs in curves.items():
        mean = runs.mean(0)
        sem = runs.std(0, ddof=1) / np.sqrt(len(runs)) if len(runs) > 1 else np.zeros_like(mean)
        row = [name, *[f"{scale * mean[c - 1]:.{digits}f} ({scale * sem[c - 1]:.{digits}f})" for c in shown]]
        reach = evaluations_to_reach(mean, target) if target is not None else None
        row += ["-" if target is None else (str(reach) if reach else f"> {steps}"),
                "-" if target is None else (f"{steps / reach:.1f}x" if reach else "< 1x")]
        if optimum is not None:
            row.append(f"{scale * (optimum - mean[-1]):.{digits}f}")
        if seconds is not None:
            row.append(f"{seconds[name] / len(runs):.1f} s")
        rows.append(row)
    return headers, rows
