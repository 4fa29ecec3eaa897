"""The Python API: run a search, open a finished (or running) one, export its cells, build and insert cells.

Each function does what its `attnas` command does, through the same code, and returns objects instead of printing.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from attnas.cells import build, insert
from attnas.experiments.export import FORMATS, export_trial
from attnas.experiments.history import COMPLETE, FAILED, PRUNED, RUNNING, TrialRecord, best_of
from attnas.experiments.run_folder import RunFolder, open_run
from attnas.search_space import CellSpec
from attnas.search_space.errors import AttnasError

__all__ = ["Run", "search", "load_run", "export", "build_cell", "insert"]

# Columns of `Run.trials_dataframe()` / `Run.records()`, beside number, state, hash, reason and controller.
VALUE_COLUMNS = ("accuracy", "macs", "params", "latency_ms", "wall_time_s")


@dataclass(frozen=True)
class Run:
    """One search's run folder and history. Every property reads the history afresh, so a `Run` opened while its
    search is going on shows the trials recorded so far."""

    folder: RunFolder

    @property
    def path(self) -> Path:
        """The run folder (runs/NAME)."""
        return self.folder.path

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def storage(self) -> str:
        """SQLAlchemy URL of the history (SQLite in the run folder unless the search was given another)."""
        return self.folder.storage

    @property
    def trials(self) -> list[TrialRecord]:
        """Every trial in the order they started: cell (as data), hash, state, values, curve, failure reason."""
        return self.folder.history().trials()

    @property
    def best(self) -> TrialRecord | None:
        """The complete trial with the highest accuracy (None before one completes)."""
        top = best_of(self.trials, 1)
        return top[0] if top else None

    @property
    def best_cell(self) -> CellSpec | None:
        """The best trial's cell as a `CellSpec` (build it with `attnas.build_cell(cell, channels)`)."""
        best = self.best
        return CellSpec.from_dict(best.cell) if best is not None else None

    def counts(self) -> dict[str, int]:
        """How many trials are complete, pruned, failed and running."""
        trials = self.trials
        return {state: sum(1 for t in trials if t.state == state) for state in (COMPLETE, PRUNED, FAILED, RUNNING)}

    def records(self) -> list[dict[str, Any]]:
        """The trials as flat dicts, one per trial (the rows of `trials_dataframe`)."""
        return [{"number": t.number, "state": t.state, "hash": t.hash,
                 **{column: t.values.get(column) for column in VALUE_COLUMNS},
                 "epochs": len(t.curve), "controller": t.attrs.get("controller"), "reason": t.reason}
                for t in self.trials]

    def trials_dataframe(self):
        """The trials as a pandas DataFrame (needs pandas), one row per trial."""
        try:
            import pandas
        except ImportError:
            raise AttnasError("Run.trials_dataframe needs pandas (pip install pandas); Run.records() gives the "
                              "same rows as dicts") from None
        return pandas.DataFrame.from_records(self.records(), columns=["number", "state", "hash", *VALUE_COLUMNS,
                                                                      "epochs", "controller", "reason"])

    def export(self, output: str | os.PathLike, *, trial: int | None = None, format: str | None = None,
               channels: int | None = None) -> Path:
        """Write trial `trial` (default: the best) as a standalone module (.py), its spec (.yaml) or a torch.export
        program (.pt2), as `attnas export` does; returns the path written."""
        return export_trial(str(self.path), trial=trial, output=str(output), fmt=format, channels=channels)


def as_cell(cell: CellSpec | Mapping[str, Any] | str | os.PathLike) -> CellSpec:
    """A `CellSpec` from itself, its dict, a zoo cell's name ("non_local") or a cell YAML file."""
    from attnas.search_space import load_zoo, zoo_names

    if isinstance(cell, CellSpec):
        return cell
    if isinstance(cell, Mapping):
        return CellSpec.from_dict(dict(cell))
    if str(cell) in zoo_names():
        return load_zoo(str(cell))
    return CellSpec.from_yaml(str(cell))


def build_cell(cell: CellSpec | Mapping[str, Any] | str | os.PathLike, channels: int):
    """The cell as an `nn.Module` on maps of `channels` channels, the identity at initialisation; `cell` is a
    `CellSpec`, its dict, a zoo cell's name or a YAML file."""
    return build(as_cell(cell), channels)


def load_run(name_or_path: str | os.PathLike, *, runs_dir: str | os.PathLike = "runs") -> Run:
    """The run in folder `name_or_path`, or named so under `runs_dir`; `RunNotFoundError` when there is none."""
    return Run(open_run(name_or_path, root=runs_dir))


def search(experiment: str | os.PathLike | Mapping[str, Any], *, name: str | None = None,
           storage: str | None = None, address: str | None = None, runs_dir: str | os.PathLike = "runs",
           trials: int | None = None, time: str | float | None = None, progress: bool = False) -> Run:
    """Run the search an experiment describes (a YAML file, or the same fields as a dict) until its budget is spent,
    in a new run folder `runs_dir/name` (default: the experiment's name), and return that `Run`.

    `storage` (a SQLAlchemy URL), `trials` and `time` override the experiment's; `address` joins a Ray cluster
    (default: RAY_ADDRESS, else Ray is started locally, or the Ray already initialised in this process is used).
    Raises `ConfigError` for a bad experiment and `RunExistsError` when the run folder already holds a search.
    """

    from attnas.experiments.config import experiment_from_data, load_experiment, parse_duration
    from attnas.experiments.driver import run_search
    from attnas.experiments.launch import start_run

    if isinstance(experiment, Mapping):
        config = experiment_from_data(dict(experiment))
    else:
        config = load_experiment(str(experiment))
    if time is not None:
        try:
            parse_duration(time)
        except ValueError as error:
            raise AttnasError(f"search(time=...): {error}, got {time!r}") from None
    budget = replace(config.budget, **{k: v for k, v in (("trials", trials), ("time", time)) if v is not None})
    config = replace(config, budget=budget, storage=storage or config.storage)
    folder = start_run(config, name=name, runs_dir=runs_dir)
    run_search(config, folder, address=address, progress=progress)
    return Run(folder)


def export(cell_or_run: CellSpec | Mapping[str, Any] | str | os.PathLike | Run, output: str | os.PathLike, *,
           channels: int | None = None, trial: int | None = None, format: str | None = None) -> Path:
    """Write a cell as a standalone PyTorch module (.py, needs only torch), its YAML spec, or a torch.export
    program (.pt2). `cell_or_run` is a `CellSpec` (or its dict; `channels` required), or a run (a `Run`, its
    folder or its name: the best trial unless `trial` is given, with its trained weights when available)."""
    if isinstance(cell_or_run, (CellSpec, Mapping)):
        spec = as_cell(cell_or_run)
        path = Path(output)
        fmt = format or FORMATS.get(path.suffix.lower(), "py")
        if fmt == "yaml":
            path.write_text(spec.to_yaml())
            return path
        if channels is None:
            raise AttnasError("export: channels: expected the input channels C of the module, e.g. channels=256")
        from attnas.cells import export as export_module
        from attnas.cells import export_program

        if fmt == "pt2":  # traced on a small clip; batch, T, H and W stay dynamic
            return Path(export_program(spec, path, channels=channels, example_shape=(2, channels, 4, 8, 8)))
        return Path(export_module(spec, path, channels=channels))
    run = cell_or_run if isinstance(cell_or_run, Run) else load_run(cell_or_run)
    return run.export(output, trial=trial, format=format, channels=channels)
