"""`attnas export`: a trial's cell as a standalone PyTorch module (py), its spec (yaml) or a torch.export program
(pt2), built for the channels (and clip shape) the cell sees where the experiment inserts it. When the trial's
checkpoint is on this machine, its trained weights come along: in the pt2 program, or as cell.pt beside cell.py."""
from __future__ import annotations

from pathlib import Path

from attnas.experiments.history import COMPLETE
from attnas.experiments.run_folder import open_run
from attnas.search_space import CellSpec
from attnas.search_space.errors import AttnasError

FORMATS = {".py": "py", ".yaml": "yaml", ".yml": "yaml", ".pt2": "pt2"}


def export_trial(run_dir: str, *, trial: int | None, output: str, fmt: str | None = None,
                 channels: int | None = None) -> Path:
    """Write trial `trial` (None: the best complete trial) of the run to `output`; returns the path."""
    run = open_run(run_dir)
    history = run.history()
    if trial is None:
        best = history.best(1)
        if not best:
            raise AttnasError(f"{run.path}: no complete trial to export yet (see `attnas status {run.path}`)")
        record = best[0]
    else:
        record = history.trial(trial)
        if not record.cell:
            raise AttnasError(f"{run.path}: {record.problem}" if record.problem
                              else f"trial {trial} of {run.path} has no cell recorded")
    spec = CellSpec.from_dict(record.cell)
    spec = CellSpec.from_dict({**spec.to_dict(), "name": f"attnas_{run.name}_trial{record.number}"})
    fmt = fmt or FORMATS.get(Path(output).suffix.lower(), "py")
    path = Path(output)
    if path.parent and not path.parent.exists():
        raise AttnasError(f"{output}: folder {path.parent} does not exist")
    if fmt == "yaml":
        note = "" if record.state == COMPLETE else f"# trial state: {record.state}\n"
        path.write_text(f"# cell {spec.hash}, trial {record.number} of run {run.name!r}\n{note}{spec.to_yaml()}")
        return path
    from attnas.cells.export import export, export_program

    weights = trained_cell_weights(record, run.checkpoint_folder(record.attrs.get("checkpoint")))
    trained_channels = int(weights["project.weight"].shape[0]) if weights else None
    if weights is not None and channels not in (None, trained_channels):
        weights = None  # the trial trained the cell for other channels: export the architecture alone
    channels = channels or trained_channels
    if fmt == "py":
        export(spec, path, channels=channels or placement_shape(run, spec)[0])
        if weights is not None:
            import torch

            torch.save(weights, path.with_suffix(".pt"))
        return path
    shape = placement_shape(run, spec)
    channels = channels or shape[0]
    return export_program(spec, path, channels=channels, example_shape=(2, channels, *shape[1:]),
                          weights=weights)


def weights_path(output: str | Path) -> Path:
    """Where `attnas export -o cell.py` puts the trained weights of the cell: cell.pt beside it."""
    return Path(output).with_suffix(".pt")


def trained_cell_weights(record, folder: Path | None) -> dict | None:
    """The cell's weights as trained in the trial (first placement), from its last checkpoint in `folder`; None if
    the checkpoint is not on this machine."""
    from attnas.evaluators.checkpoint import checkpoint_path, model_weights

    if not folder or not checkpoint_path(folder).is_file():
        return None
    model = model_weights(folder)
    first = next((k for k in model if ".cell." in k), None)
    if first is None:
        return None
    prefix = first[: first.index(".cell.") + len(".cell.")]
    return {k[len(prefix):]: v for k, v in model.items() if k.startswith(prefix)}


def placement_shape(run, spec: CellSpec) -> tuple[int, int, int, int]:
    """(C, T, H, W) of the feature map the experiment's first placement hands the cell."""
    import torch

    from attnas.cells.insert import inserted_cells
    from attnas.evaluators.custom import is_custom
    from attnas.evaluators.proxy import ProxyEvaluator
    from attnas.evaluators.simulated import cost_model, is_simulated
    from attnas.experiments.config import load_experiment, proxy_config

    config = load_experiment(str(run.experiment_file))
    if is_custom(config.evaluator):
        raise AttnasError(f"{run.path}: the run scored cells with a custom evaluator, so attnas does not know the "
                          "feature map the cell sees; pass --channels (channels=...) and export py or yaml")
    if is_simulated(config.evaluator):  # the cell sits where the simulated evaluator counted its costs
        model, clip_shape = cost_model(spec)
    else:
        evaluator = ProxyEvaluator(proxy_config(config.evaluator, where=config.source))
        splits = evaluator.splits()
        model, clip_shape = evaluator.build_model(spec, splits.num_classes, splits.clip_shape), splits.clip_shape
    cell = next(iter(inserted_cells(model).values()))
    seen: list[tuple[int, ...]] = []
    handle = cell.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape)))
    with torch.no_grad():
        model.eval()(torch.zeros(1, *clip_shape))
    handle.remove()
    return seen[0][1:]
