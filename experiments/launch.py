"""Starting a new search in a fresh run folder: the steps `attnas search` and `attnas.search` share, and keeping the
experiment as resolved in the run (so resume, status and export need nothing outside the folder or the database)."""
from __future__ import annotations

import os
from pathlib import Path

from attnas.experiments.config import ExperimentConfig
from attnas.experiments.run_folder import RunFolder, create_run
from attnas.search_space.errors import AttnasError


class RunExistsError(AttnasError):
    """The run folder asked for already holds a search (continue it with resume, or pick another name)."""


def start_run(config: ExperimentConfig, *, name: str | None = None,
              runs_dir: str | os.PathLike = "runs") -> RunFolder:
    """A new run folder for `config` holding its experiment (as resolved) and space files, recorded in the
    history."""
    name = name or config.name
    run = create_run(name, root=runs_dir, storage=config.storage)
    history = run.history(create=True)
    if history.trials():
        raise RunExistsError(f"{run.path} already holds a search with {len(history.trials())} trials; continue it "
                             f"with `attnas resume {run.path}` or pick another name")
    keep_experiment(run, config, space=Path(config.space_path).read_text())
    history.set_metadata(name=name, controller=config.controller_name)
    return run


def keep_experiment(run: RunFolder, config: ExperimentConfig, *, space: str) -> None:
    """Write the experiment as resolved (overrides in, `space: space.yaml`) and the space into the run folder and
    its history."""
    experiment = config.resolved_yaml(space=run.space_file.name)
    run.space_file.write_text(space)
    run.experiment_file.write_text(experiment)
    run.history(create=True).set_metadata(experiment=experiment, space=space)
