"""Starting a new search in a fresh run folder: the steps `attnas search` and `attnas.search` share."""
from __future__ import annotations

import os
from pathlib import Path

from attnas.experiments.config import ExperimentConfig
from attnas.experiments.run_folder import RunFolder, create_run
from attnas.search_space.errors import AttnasError


class RunExistsError(AttnasError):
    """The run folder asked for already holds a search (continue it with resume, or pick another name)."""


def start_run(config: ExperimentConfig, *, experiment_text: str, name: str | None = None,
              runs_dir: str | os.PathLike = "runs") -> RunFolder:
    """A new run folder for `config` holding copies of its experiment and space files, recorded in the history."""
    name = name or config.name
    run = create_run(name, root=runs_dir, storage=config.storage)
    history = run.history(create=True)
    if history.trials():
        raise RunExistsError(f"{run.path} already holds a search with {len(history.trials())} trials; continue it "
                             f"with `attnas resume {run.path}` or pick another name")
    space_text = Path(config.space_path).read_text()
    run.experiment_file.write_text(experiment_text)
    run.space_file.write_text(space_text)
    history.set_metadata(experiment=experiment_text, space=space_text, name=name,
                         controller=config.controller_name)
    return run
