"""What a search will do, worked out from its experiment file alone (no Ray, no data): `attnas search --dry-run`.

Used to check a cluster experiment on a laptop before sending it to the cluster.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from attnas.evaluators.custom import is_custom
from attnas.evaluators.simulated import is_simulated
from attnas.experiments.config import ExperimentConfig, evaluator_config, proxy_config
from attnas.experiments.wording import plural
from attnas.search_space import SearchSpace
from attnas.search_space.errors import AttnasError


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
    data_check: tuple[str, ...] = ()  # what scanning the video folder found (evaluators VideoFolder.scan)

    def lines(self) -> list[str]:
        gpu = (f"{self.gpus_per_trial:g} GPU each ({plural(self.trials_per_gpu, 'trial')} share a GPU)"
               if self.gpus_per_trial else "CPU only")
        budget = " and ".join(x for x in (plural(self.trials, "trial") if self.trials else "",
                                          f"{self.time_limit_s:.0f} s" if self.time_limit_s else "") if x)
        placed = f" with the cell at {', '.join(self.placements)}" if self.placements else ""
        return [
            f"experiment {self.name!r}: {self.controller} over space {self.space!r} ({self.space_cells} cells)",
            f"budget: {budget or 'unbounded'}; {plural(self.concurrency, 'trial')} at once, "
            f"{self.cpus_per_trial:g} CPU and {gpu}",
            f"cluster needs at least {self.cluster_cpus_needed:g} CPUs and {self.cluster_gpus_needed:g} GPUs free "
            f"to run {plural(self.concurrency, 'trial')} at once",
            f"each trial: {self.backbone}{placed}, {plural(self.epochs, 'epoch')} on {self.data}; "
            f"early stopping: {self.early_stopping}",
            f"history: {self.storage}",
            *self.data_check,
        ]


def check_placements(config: ExperimentConfig) -> None:
    """A one-line error when `evaluator.at` names a block the backbone lacks, found before any trial runs. The
    backbone is built on the meta device (its layout without allocating its weights; the names of its blocks do not
    depend on the clip size)."""
    import torch

    from attnas.cells.backbones import BACKBONES, create_backbone
    from attnas.cells.insert import placements

    evaluator = proxy_config(config.evaluator, where=config.source)
    try:
        with torch.device("meta"):
            model = create_backbone(evaluator.backbone, **dict(evaluator.backbone_args))
    except AttnasError as error:
        field = "backbone" if evaluator.backbone not in BACKBONES else "backbone_args"
        raise AttnasError(f"{config.source}: field 'evaluator.{field}': {error}") from None
    known = placements(model)
    for name in evaluator.at:
        if name not in known:
            valid = list(getattr(model, "placements", lambda: known)())
            raise AttnasError(f"{config.source}: field 'evaluator.at': unknown placement {name!r} for backbone "
                              f"{evaluator.backbone!r}; valid placements: {', '.join(valid[:20])}"
                              + (", ..." if len(valid) > 20 else ""))


def plan(config: ExperimentConfig, *, check_data: bool = False) -> Plan:
    """The plan of `config` (already validated by `load_experiment`); raises when its placements do not exist.
    `check_data` also scans its video folder (raising AttnasError on what would fail every trial)."""
    if not is_custom(config.evaluator) and not is_simulated(config.evaluator):
        check_placements(config)
    space = SearchSpace.from_yaml(config.space_path)
    size = space.count(samples=2000)
    cells = f"{size.cells:,.0f}" if size.exact else f"~{size.cells:.3g}"
    evaluator = evaluator_config(config.evaluator, where=config.source)
    data_check: tuple[str, ...] = ()
    if is_custom(config.evaluator):
        source, backbone, placements = f"the custom evaluator {evaluator.custom}", "(the custom evaluator's)", ()
    elif is_simulated(config.evaluator):
        source = f"simulated scores ({evaluator.epoch_seconds:g} s per epoch)"
        if evaluator.table is not None:  # say how much of the space a (maybe partial) table can score
            from attnas.search_space.attnbench import load_table

            source = f"scores replayed from {load_table(evaluator.table).describe()}"
        backbone, placements = f"no model trained: the simulated evaluator (seed {evaluator.seed})", ()
    else:
        data = evaluator.data
        backbone, placements = evaluator.backbone, tuple(evaluator.at)
        if data.video_root:
            sampling = data.sampling
            source = (f"{data.video_layout} videos under {data.video_root} ({sampling.mode} sampling of "
                      f"{sampling.frames} frames, {sampling.crop}x{sampling.crop} crops)")
        else:
            source = f"synthetic task {data.task!r} ({data.train_size} training clips)"
        if data.video_root and check_data:
            data_check = _scan_videos(data)
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
    stopping = (f"ASHA (grace {plural(scheduler.grace_period, 'epoch')}, reduction {scheduler.reduction_factor})"
                if scheduler.scheduler == "asha" else "none")
    return Plan(
        name=config.name, space=space.name, space_cells=cells, controller=controller,
        trials=trials, time_limit_s=config.budget.seconds, concurrency=config.concurrency,
        cpus_per_trial=config.resources.cpus, gpus_per_trial=gpus,
        cluster_cpus_needed=config.concurrency * config.resources.cpus,
        cluster_gpus_needed=math.ceil(config.concurrency * gpus) if gpus else 0,
        trials_per_gpu=int(1 // gpus) if 0 < gpus < 1 else (1 if gpus else None),
        data=source, backbone=backbone, placements=placements, epochs=evaluator.epochs,
        early_stopping=stopping, storage=config.storage or f"SQLite in runs/{config.name}/history.db",
        data_check=data_check,
    )


def _scan_videos(data) -> tuple[str, ...]:
    """Check the video folder as a search would read it (root, layout, annotation files, every file's packets,
    classes without a usable training video), without decoding; raises AttnasError on what would fail trials."""
    from attnas.evaluators.datasets import video_folder

    return tuple(video_folder(data).scan().lines())
