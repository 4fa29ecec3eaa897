"""What a search will do, worked out from its experiment file alone (no Ray, no data): `attnas search --dry-run`.

Used to check a cluster experiment on a laptop before sending it to the cluster.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from attnas.experiments.config import ExperimentConfig, proxy_config
from attnas.search_space import SearchSpace


@dataclass(frozen=True)
class Plan:
    """The resources and budget of a search, and where its data and history live."""

    name: str
    space: str
    space_cells: str
    controller: str
    trials: int | None
    time_limit_s: float | None
    concurrency: int
    cpus_per_trial: float
    gpus_per_trial: float
    cluster_cpus_needed: float
    cluster_gpus_needed: float
    trials_per_gpu: int | None
    data: str
    backbone: str
    placements: tuple[str, ...]
    epochs: int
    early_stopping: str
    storage: str

    def lines(self) -> list[str]:
        gpu = (f"{self.gpus_per_trial:g} GPU each ({self.trials_per_gpu} trials share a GPU)"
               if self.gpus_per_trial else "CPU only")
        budget = " and ".join(x for x in (f"{self.trials} trials" if self.trials else "",
                                          f"{self.time_limit_s:.0f} s" if self.time_limit_s else "") if x)
        return [
            f"experiment {self.name!r}: {self.controller} over space {self.space!r} ({self.space_cells} cells)",
            f"budget: {budget or 'unbounded'}; {self.concurrency} trials at once, {self.cpus_per_trial:g} CPU and "
            f"{gpu}",
            f"cluster needs at least {self.cluster_cpus_needed:g} CPUs and {self.cluster_gpus_needed:g} GPUs free "
            f"to run {self.concurrency} trials at once",
            f"each trial: {self.backbone} with the cell at {', '.join(self.placements)}, {self.epochs} epochs on "
            f"{self.data}; early stopping: {self.early_stopping}",
            f"history: {self.storage}",
        ]


def plan(config: ExperimentConfig) -> Plan:
    """The plan of `config` (already validated by `load_experiment`)."""
    space = SearchSpace.from_yaml(config.space_path)
    size = space.count(samples=2000)
    cells = f"{size.cells:,.0f}" if size.exact else f"~{size.cells:.3g}"
    evaluator = proxy_config(config.evaluator, where=config.source)
    data = evaluator.data
    if data.video_root:
        sampling = data.sampling
        source = (f"{data.video_layout} videos under {data.video_root} ({sampling.mode} sampling of "
                  f"{sampling.frames} frames, {sampling.crop}x{sampling.crop} crops)")
    else:
        source = f"synthetic task {data.task!r} ({data.train_size} training clips)"
    gpus = config.resources.gpus
    scheduler = config.early_stopping
    trials = config.budget.trials
    controller = config.controller_name
    if controller == "differentiable":
        from attnas.experiments.config import differentiable_settings

        search = differentiable_settings(config.controller_settings, space, where=config.source)
        epochs = search.epochs or evaluator.epochs
        controller = (f"differentiable search ({search.sampling}, {epochs} supernet epochs"
                      + (", then the derived cell re-trained)" if search.retrain else ")"))
        trials = epochs + (1 if search.retrain else 0)
    stopping = (f"ASHA (grace {scheduler.grace_period} epochs, reduction {scheduler.reduction_factor})"
                if scheduler.scheduler == "asha" else "none")
    return Plan(
        name=config.name, space=space.name, space_cells=cells, controller=controller,
        trials=trials, time_limit_s=config.budget.seconds, concurrency=config.concurrency,
        cpus_per_trial=config.resources.cpus, gpus_per_trial=gpus,
        cluster_cpus_needed=config.concurrency * config.resources.cpus,
        cluster_gpus_needed=math.ceil(config.concurrency * gpus) if gpus else 0,
        trials_per_gpu=int(1 // gpus) if 0 < gpus < 1 else (1 if gpus else None),
        data=source, backbone=evaluator.backbone, placements=tuple(evaluator.at), epochs=evaluator.epochs,
        early_stopping=stopping, storage=config.storage or f"SQLite in runs/{config.name}/history.db",
    )
