"""`attnas export`: a trial's cell as a standalone PyTorch module (py), its spec (yaml) or a torch.export program
(pt2), built for the channels (and clip shape) the cell sees where the experiment inserts it."""
from __future__ import annotations

from pathlib import Path

from experiments.history import COMPLETE
from experiments.run_folder import open_run
from search_space import CellSpec
from search_space.errors import AttnasError

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
            raise AttnasError(f"trial {trial} of {run.path} has no cell recorded")
    spec = CellSpec.from_dict(record.cell)
    spec = CellSpec.from_dict({**spec.to_dict(), "name": f"attnas_{run.name}_trial{record.number}"})
    fmt = fmt or FORMATS.get(Path(output).suffix.lower(), "py")
    path = Path(output)
    if path.parent and not path.parent.exists():
        raise AttnasError(f"{output}: folder {path.parent} does not exist")
    if fmt == "yaml":
        note = "" if record.state == COMPLETE else f"# trial state: {record.state}\n"
        path.write_text(f"# cell {spec.hash}, trial {record.number} of run {run.name}\n{note}{spec.to_yaml()}")
        return path
    from cells.export import export, export_program

    shape = placement_shape(run, spec)
    channels = channels or shape[0]
    if fmt == "py":
        return export(spec, path, channels=channels)
    if channels != shape[0]:
        shape = (channels, *shape[1:])
    return export_program(spec, path, channels=channels, example_shape=(2, *shape))


def placement_shape(run, spec: CellSpec) -> tuple[int, int, int, int]:
    """(C, T, H, W) of the feature map the experiment's first placement hands the cell."""
    import torch

    from cells.insert import inserted_cells
    from evaluators.proxy import ProxyEvaluator
    from experiments.config import load_experiment, proxy_config

    config = load_experiment(str(run.experiment_file))
    evaluator = ProxyEvaluator(proxy_config(config.evaluator, where=config.source))
    splits = evaluator.splits()
    model = evaluator.build_model(spec, splits.num_classes, splits.clip_shape)
    cell = next(iter(inserted_cells(model).values()))
    seen: list[tuple[int, ...]] = []
    handle = cell.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape)))
    with torch.no_grad():
        model.eval()(torch.zeros(1, *splits.clip_shape))
    handle.remove()
    return seen[0][1:]
