"""A synthetic search history for tests, benchmarks and demos of the dashboard: a run folder whose trials are
written exactly as the driver writes them (`History.start`, the publisher's `trial_started`, one `History.report`
per epoch, `History.finish`, the publisher's `trial_finished`, `finish` at the end), with made-up scores.

The scores are a fixed function of the cell plus noise, so the figures have structure to show (cells with
gather/distribute or temporal attention score higher, wider cells cost more multiply-adds)."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from attnas.experiments.dashboard.data import REFERENCES_ATTR
from attnas.experiments.dashboard.publisher import DashboardPublisher
from attnas.experiments.history import COMPLETE, FAILED, PRUNED
from attnas.experiments.run_folder import RunFolder, create_run
from attnas.search_space import load_space

EPOCHS = 4
BACKBONE_MACS = 2.0e8


def write_synthetic_history(root: str | os.PathLike, *, name: str = "synthetic", trials: int = 40,
                            controllers: Sequence[str] = ("random",), space: str = "small", seed: int = 0,
                            references: bool = True, min_interval_s: float = math.inf) -> RunFolder:
    """Make runs/<name>/ under `root` holding `trials` finished trials (some pruned, a few failed)."""
    run = create_run(name, root=root)
    search_space = load_space(space)
    history = run.history(create=True)
    history.set_metadata(name=name, controller=",".join(controllers), space=f"{space} (synthetic)",
                         experiment=f"name: {name}\n# synthetic history written by experiments.dashboard.synthetic\n")
    Path(run.space_file).write_text(f"# synthetic history: shipped space {space!r}\n")
    publisher = DashboardPublisher.for_run(run, history, min_interval_s=min_interval_s)
    rng = np.random.default_rng(seed)
    names, cards = search_space.vector_names(), search_space.vector_cardinalities()
    choices = search_space.vector_choices()
    for index in range(trials):
        cell = search_space.sample(rng)
        controller = controllers[index % len(controllers)]
        number = history.start(cell=search_space.to_data(cell), cell_hash=cell.hash, controller=controller,
                               encoding=[int(v) for v in search_space.encode_vector(cell)], encoding_names=names,
                               cardinalities=cards, choices=choices, ray_trial_id=f"synthetic-{index}")
        publisher.trial_started(number)
        final = made_up_score(cell, rng)
        fate = rng.random()
        epochs = EPOCHS if fate < 0.85 else 1 + int(rng.integers(EPOCHS - 1))
        curve = [final * (1.0 - 0.5 * math.exp(-1.3 * (e + 1))) / (1.0 - 0.5 * math.exp(-1.3 * EPOCHS))
                 for e in range(epochs)]
        for epoch, value in enumerate(curve, start=1):
            history.report(number, epoch, value)
        macs = BACKBONE_MACS * (1.0 + cell.width * 0.05 * len(cell.nodes)) * float(rng.uniform(0.95, 1.05))
        values = {"accuracy": curve[-1], "macs": macs, "params": 1.0e5 * (1 + cell.width * len(cell.nodes)),
                  "latency_ms": 5.0 + 2.0 * len(cell.nodes), "wall_time_s": 20.0 + 5.0 * len(cell.nodes)}
        node = f"10.0.0.{1 + index % 2}/synthetic"
        if fate > 0.97:
            history.finish(number, state=FAILED, values={}, reason="synthetic failure: out of memory", node=node)
        else:
            state = COMPLETE if epochs == EPOCHS else PRUNED
            history.finish(number, state=state, values=values, node=node)
        publisher.trial_finished(number)
    if references:
        history.set_metadata(**{REFERENCES_ATTR: {
            "none": {"accuracy": 0.35, "macs": BACKBONE_MACS, "params": 1.0e5, "curve": [0.2, 0.28, 0.33, 0.35]},
            "non_local": {"accuracy": 0.52, "macs": BACKBONE_MACS * 1.0125, "params": 1.2e5,
                          "curve": [0.25, 0.4, 0.48, 0.52]},
            "double_attention": {"accuracy": 0.55, "macs": BACKBONE_MACS * 1.0125, "params": 1.2e5,
                                 "curve": [0.26, 0.42, 0.5, 0.55]}}})
    publisher.finish()
    if publisher.errors:
        raise RuntimeError(f"the dashboard publisher failed: {publisher.errors[0]}")
    return run


def made_up_score(cell, rng: np.random.Generator) -> float:
    """A fixed function of the cell plus noise: what a synthetic trial scores."""
    ops = [n.op for n in cell.nodes]
    dims = [n.attr_map.get("dim") for n in cell.nodes]
    score = 0.35 + 0.08 * ("distribute" in ops) + 0.06 * ("temporal" in dims) + 0.04 * ("dot_attention" in ops)
    score += 0.03 * min(len(ops), 3) + float(rng.normal(0.0, 0.03))
    return float(min(0.95, max(0.05, score)))
