"""Where a run's dashboard artifacts (the cell drawings) live: runs/<name>/artifacts, an Optuna file-system
artifact store that `attnas dashboard` serves from. On a cluster the folder is on the driver's machine, so the
dashboard runs there (or wherever the run folder is copied)."""
from __future__ import annotations

import os
from pathlib import Path

from optuna.artifacts import FileSystemArtifactStore

ARTIFACTS_DIR = "artifacts"


def run_artifact_dir(run) -> Path:
    """The artifacts folder of a run folder (`experiments.run_folder.RunFolder`)."""
    return Path(run.path) / ARTIFACTS_DIR


def artifact_store(folder: str | os.PathLike) -> FileSystemArtifactStore:
    """The artifact store kept in `folder` (created if missing)."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(str(folder))
