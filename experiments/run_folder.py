"""A run folder: where one search keeps its files.

    runs/<name>/
      run.json        which storage holds the history (so `resume`, `status`, `export`, `dashboard` find it)
      experiment.yaml the experiment file as it was when the search started
      space.yaml      the search space as it was
      history.db      the Optuna study (default storage; any SQLAlchemy URL instead with --storage)
      ray/            Ray Tune's trial folders: results, checkpoints, TensorBoard event files

The history is the source of truth; the copies of the experiment and space files are also stored in the study, so
a run on PostgreSQL can be resumed from any machine that reaches the database.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from attnas.experiments.history import History, sqlite_url
from attnas.search_space.errors import AttnasError, quoted
from attnas.search_space.yaml_io import read_text_file

RUNS_ROOT = "runs"
RUN_FILE = "run.json"
RUN_FILE_BYTES = 64 * 1024
RUN_NAME_RULE = "1 to 100 letters, digits, '_', '-' or '.', starting with a letter or digit"
_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def check_run_name(name: object, *, where: str = "run name") -> str:
    """`name` when it is a plain run name (RUN_NAME_RULE: one folder under the runs folder, never a path, no
    quotes or newlines), else a one-line `AttnasError` that names `where` (the flag or field it came from)."""
    if not isinstance(name, str) or not _RUN_NAME.fullmatch(name):
        raise AttnasError(f"{where}: expected a run name of {RUN_NAME_RULE}, got {quoted(name)}")
    return name


class RunNotFoundError(AttnasError):
    """A run name or folder that holds no attnas run."""


@dataclass(frozen=True)
class RunFolder:
    """Paths of one run, and the storage URL of its history."""

    path: Path
    storage: str

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def ray_dir(self) -> Path:
        return self.path / "ray"

    @property
    def experiment_file(self) -> Path:
        return self.path / "experiment.yaml"

    @property
    def space_file(self) -> Path:
        return self.path / "space.yaml"

    def history(self, *, create: bool = False) -> History:
        return History(self.storage, create=create)


def create_run(name: str, *, root: str | os.PathLike = RUNS_ROOT, storage: str | None = None) -> RunFolder:
    """Make (or reuse, when it is the same run) the folder runs/<name>/ and record where its history lives."""
    path = Path(root).resolve() / check_run_name(name)
    path.mkdir(parents=True, exist_ok=True)
    storage = storage or sqlite_url(str(path / "history.db"))
    existing = path / RUN_FILE
    if existing.exists():
        recorded = _read_run_file(existing)
        if recorded.get("storage") != storage:
            raise AttnasError(f"{path}: already holds a run whose history is elsewhere; use `attnas resume "
                              f"{path}` or another --name")
    _write_json(existing, {"name": name, "storage": storage})
    return RunFolder(path=path, storage=storage)


def open_run(run: str | os.PathLike, *, root: str | os.PathLike = RUNS_ROOT) -> RunFolder:
    """The run given as a folder path or as a name under runs/; a one-line error if there is none."""
    candidates = [Path(run), Path(root) / str(run)]
    for candidate in candidates:
        run_file = candidate / RUN_FILE
        if run_file.is_file():
            recorded = _read_run_file(run_file)
            storage = recorded.get("storage")
            if not isinstance(storage, str):
                raise AttnasError(f"{run_file}: field 'storage': expected a storage URL")
            return RunFolder(path=candidate.resolve(), storage=storage)
    if Path(run).exists():
        raise RunNotFoundError(f"{run}: not an attnas run folder (no {RUN_FILE}); expected a folder made by "
                               "`attnas search`")
    raise RunNotFoundError(f"{run}: no such run (looked for {candidates[0]} and {candidates[1]})")


def _read_run_file(path: Path) -> dict:
    try:
        data = json.loads(read_text_file(path, where=str(path), limit=RUN_FILE_BYTES, what="a run file"))
    except json.JSONDecodeError as error:
        raise AttnasError(f"{path}: unreadable run file ({error})") from None
    except AttnasError as error:
        raise AttnasError(f"unreadable run file: {error}") from None
    if not isinstance(data, dict):
        raise AttnasError(f"{path}: unreadable run file (expected a JSON object)")
    return data


def _write_json(path: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".run.", suffix=".json")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    os.replace(tmp, path)
