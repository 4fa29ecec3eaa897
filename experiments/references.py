"""`attnas references RUN`: score the reference cells (the backbone alone, non_local, double_attention) once per
run with the run's own evaluator settings, so the figures can mark them.

The scores go into the study's user attributes (`references`), not into trials: the controller is rebuilt from
the trials on resume, so keeping references out of them keeps them out of its observations, the trial budget, the
best-cell table and `export`. Scoring runs in this process, one cell after another, like `attnas evaluate`; it
lives outside experiments/dashboard/ because the dashboard is a view and never imports the evaluators.
"""
from __future__ import annotations

import os
from typing import Sequence

from rich.console import Console

from attnas.experiments.dashboard.data import REFERENCE_CELLS, REFERENCES_ATTR, Reference, load_references
from attnas.experiments.dashboard.publisher import DashboardPublisher
from attnas.experiments.dashboard.server import open_history
from attnas.search_space.errors import AttnasError


def score_references(run_dir: str | os.PathLike, *, cells: Sequence[str] = REFERENCE_CELLS,
                     console: Console | None = None) -> list[Reference]:
    """Evaluate `cells` with the run's evaluator, record them in its history, refresh its figures."""
    from attnas.evaluators.proxy import ProxyEvaluator
    from attnas.experiments.config import load_experiment, proxy_config
    from attnas.experiments.standalone import resolve_cell

    console = console or Console()
    run, history = open_history(run_dir)
    if not run.experiment_file.is_file():
        raise AttnasError(f"{run.path}: no experiment.yaml to take the evaluator settings from")
    config = load_experiment(str(run.experiment_file))
    settings = proxy_config(config.evaluator, where=config.source)
    recorded = dict(history.metadata.get(REFERENCES_ATTR) or {})
    for name in cells:
        spec = resolve_cell(name)
        curve: list[float] = []

        def report(epoch: int, metrics: dict) -> bool:
            curve.append(float(metrics["top1"]))
            return False

        console.print(f"scoring reference cell {name} ...")
        result = ProxyEvaluator(settings).evaluate(spec, report=report)
        if result.status != "ok":
            raise AttnasError(f"reference cell {name}: evaluation {result.status}: {result.reason}")
        recorded[name] = {"accuracy": float(result.top1), "macs": float(result.macs), "params": float(result.params),
                          "hash": spec.hash if spec is not None else None, "curve": curve,
                          "seed": int(settings.seed)}
        console.print(f"  {name}: accuracy {result.top1:.4f}, {result.macs:,} multiply-adds")
        history.set_metadata(**{REFERENCES_ATTR: recorded})  # after each cell, so an interruption keeps the rest
    DashboardPublisher.for_run(run, history).refresh()
    return load_references(history)
