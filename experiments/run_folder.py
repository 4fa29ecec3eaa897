"""A run folder: where one search keeps its files.

    runs/<name>/
      run.json        the run's study name, its storage when that is not history.db beside it, and when it started
      experiment.yaml the experiment as resolved: `space: space.yaml`, command-line overrides (--trials, --time)
                      written in; what `resume`, `status`, `export` and `report` read
      space.yaml      the search space as it was
      history.db      the Optuna study (default storage; any SQLAlchemy URL instead with --storage)
      ray/            Ray Tune's trial folders: results, checkpoints, TensorBoard event files

Every path inside is relative to the folder (the default history and the trials' checkpoints), so `cp -a` or `mv`
of a run folder gives a working run, and a copy is independent of its original. The history is the source of truth;
the experiment and space files are also stored in the study, so a run on PostgreSQL can be resumed from any machine
that reaches the database. The study is named after the run (`study` in run.json), so one database holds many runs.

Commands name a run with `find_run`: a folder, a name under runs/, the one run whose name starts with what was given
(`make search` names runs quickstart-DATE-TIME), or `--latest`, the run that started last.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from attnas.experiments.history import STUDY_NAME, History, sqlite_url
from attnas.search_space.errors import AttnasError, quoted
from attnas.search_space.yaml_io import read_text_file

RUNS_ROOT = "runs"
RUN_FILE = "run.json"
HISTORY_FILE = "history.db"
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
    """Paths of one run, the storage URL of its history and the name of its study there."""

    path: Path
    storage: str
    study: str = STUDY_NAME

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

    def checkpoint_folder(self, recorded: str | None) -> Path | None:
        """A trial's recorded checkpoint (relative to the run folder, or absolute in older runs) as a path here."""
        return resolve_checkpoint(self.path, recorded)

    def history(self, *, create: bool = False) -> History:
        return History(self.storage, create=create, study=self.study)


def create_run(name: str, *, root: str | os.PathLike = RUNS_ROOT, storage: str | None = None) -> RunFolder:
    """Make (or reuse, when it is the same run) the folder runs/<name>/ and record where its history lives."""
    path = Path(root).resolve() / check_run_name(name)
    if path.exists() and not path.is_dir():
        raise AttnasError(f"{path}: exists and is not a folder; expected a run folder (pick another --name)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise AttnasError(f"{path}: cannot create the run folder ({error.strerror})") from None
    existing = path / RUN_FILE
    if existing.exists():
        recorded = _read_run_file(existing)
        if recorded.get("storage") != storage:
            raise AttnasError(f"{path}: already holds a run whose history is elsewhere; use `attnas resume "
                              f"{path}` or another --name")
        name = str(recorded.get("study", STUDY_NAME))
        started = recorded.get("started")
    else:
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    _write_json(existing, {"name": path.name, "study": name, "storage": storage, "started": started})
    return RunFolder(path=path, storage=storage or _local_history(path), study=name)


def open_run(run: str | os.PathLike, *, root: str | os.PathLike = RUNS_ROOT, storage: str | None = None) -> RunFolder:
    """The run given as a folder path or as a name under runs/; a one-line error if there is none. With `storage`,
    a run that has no folder here is the study of that name in that database (its folder would be runs/<name>)."""
    candidates = [Path(run), Path(root) / str(run)]
    if storage is not None and not any((c / RUN_FILE).is_file() for c in candidates):
        from attnas.experiments.history import list_studies

        name = Path(str(run)).name
        if name not in {study for study, _ in list_studies(storage)}:
            raise RunNotFoundError(f"{run}: no run of that name in {History.redacted(storage)} (see `attnas list "
                              "--storage URL`)")
        return RunFolder(path=(Path(root) / name).resolve(), storage=storage, study=name)
    for candidate in candidates:
        run_file = candidate / RUN_FILE
        if run_file.is_file():
            recorded = _read_run_file(run_file)
            folder = candidate.resolve()
            storage = recorded.get("storage")
            if storage is None or _is_own_history(storage, recorded):
                storage = _local_history(folder)
                if not (folder / HISTORY_FILE).is_file():
                    raise AttnasError(f"{folder}: the run's history ({HISTORY_FILE}) is missing")
            elif not isinstance(storage, str):
                raise AttnasError(f"{run_file}: field 'storage': expected a storage URL or null")
            study = recorded.get("study", STUDY_NAME)
            if not isinstance(study, str) or not study:
                raise AttnasError(f"{run_file}: field 'study': expected the run's study name")
            return RunFolder(path=folder, storage=storage, study=study)
    if Path(run).exists():
        raise RunNotFoundError(f"{run}: not an attnas run folder (no {RUN_FILE}); expected a folder made by "
                               "`attnas search`")
    raise RunNotFoundError(f"{run}: no such run (looked for {candidates[0]} and {candidates[1]})")


class AmbiguousRunError(AttnasError):
    """A run name that is the start of several runs' names."""


def find_run(run: str | os.PathLike | None = None, *, latest: bool = False, root: str | os.PathLike = RUNS_ROOT,
             storage: str | None = None) -> RunFolder:
    """The run a command names: `run` as open_run takes it, else the one run under `root` (or, with `storage`, in
    that database) whose name starts with `run`; with `latest`, the run there that started last. The one place
    that resolves what a user typed for RUN."""
    if latest:
        return open_run(_latest_run(root, storage), root=root, storage=storage)
    if run is None:
        raise AttnasError("expected a run (a folder, a name or the start of one) or --latest")
    try:
        return open_run(run, root=root, storage=storage)
    except RunNotFoundError as error:
        prefix = str(run)
        if not _RUN_NAME.fullmatch(prefix):  # a path: only whole names are looked up
            raise
        matches = [name for name in _run_names(root, storage) if name.startswith(prefix)]
        if len(matches) > 1:
            raise AmbiguousRunError(f"{prefix}: {len(matches)} runs start with that name ({', '.join(matches)}); "
                                    "give more of it, or --latest") from None
        if not matches:
            raise RunNotFoundError(f"{error}, and no run's name starts with {prefix!r}") from None
        return open_run(matches[0], root=root, storage=storage)


def _run_names(root: str | os.PathLike, storage: str | None) -> list[str]:
    """The names of the runs under `root`, or in `storage`, by name."""
    if storage is not None:
        from attnas.experiments.history import list_studies

        return sorted(name for name, _ in list_studies(storage))
    folder = Path(root)
    if not folder.is_dir():
        return []
    return sorted(path.name for path in folder.iterdir() if (path / RUN_FILE).is_file())


def _latest_run(root: str | os.PathLike, storage: str | None) -> str:
    """The name of the run that started last: in `storage`, the study created last; under `root`, the run whose
    run.json records the latest start (runs made before it was recorded: the file's modification time)."""
    if storage is not None:
        from attnas.experiments.history import list_studies

        studies = list_studies(storage)
        if not studies:
            raise RunNotFoundError(f"--latest: {History.redacted(storage)} holds no runs yet")
        return studies[-1][0]
    names = _run_names(root, None)
    if not names:
        raise RunNotFoundError(f"--latest: no runs under {Path(root).resolve()} yet (start one with `attnas search "
                               "CONFIG`)")
    return max(names, key=lambda name: (_start_time(Path(root) / name / RUN_FILE), name))


def _start_time(run_file: Path) -> float:
    try:
        started = _read_run_file(run_file).get("started")
    except AttnasError:  # a damaged run.json: its command says so when the run is opened
        started = None
    try:
        return datetime.fromisoformat(started).timestamp()
    except (TypeError, ValueError):
        return run_file.stat().st_mtime


def list_runs(root: str | os.PathLike) -> list[RunFolder]:
    """The run folders directly under `root`, by name."""
    folder = Path(root)
    if not folder.is_dir():
        raise AttnasError(f"{folder}: no such runs folder")
    runs = []
    for candidate in sorted(folder.iterdir()):
        if (candidate / RUN_FILE).is_file():
            try:
                runs.append(open_run(candidate))
            except AttnasError:
                continue
    return runs


def resolve_checkpoint(run_path: Path | None, recorded: str | None) -> Path | None:
    """A recorded checkpoint path on this machine: relative paths are inside the run folder `run_path`."""
    if not recorded:
        return None
    path = Path(recorded)
    return path if path.is_absolute() or run_path is None else run_path / path


def _local_history(folder: Path) -> str:
    return sqlite_url(str(folder / HISTORY_FILE))


def _is_own_history(storage: object, recorded: dict) -> bool:
    # run.json written before paths were relative: an absolute SQLite URL of the run's own history.db
    return (isinstance(storage, str) and storage.startswith("sqlite:///")
            and Path(storage.removeprefix("sqlite:///")).name == HISTORY_FILE and "study" not in recorded)


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
