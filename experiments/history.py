"""The search's history: an Optuna study in an RDB (SQLite in the run folder, or any SQLAlchemy URL).

Only the driver writes. Each attnas trial is one Optuna trial:

- value: the objective's metric (validation top-1 by default); intermediate values: that metric per epoch;
- params: the cell's fixed-length encoding (one categorical per entry, its choices named), so Optuna's importance and
  parallel-coordinate views work on cells;
- user attributes: the cell spec and hash, controller, state and failure reason, multiply-adds, parameters,
  latency, wall time, the node it ran on, the Ray trial id and its last checkpoint;
- state: RUNNING while it trains, then COMPLETE, PRUNED (stopped early by ASHA) or FAIL.

The study's own user attributes hold the experiment file and search space as text, so `resume`, `status` and
`export` need nothing but the storage.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import optuna
from optuna.trial import TrialState

from attnas.experiments.trial_params import categorical_params
from attnas.search_space import CellSpec
from attnas.search_space.errors import AttnasError, quoted

optuna.logging.set_verbosity(optuna.logging.WARNING)

COMPLETE, FAILED, PRUNED, RUNNING = "complete", "failed", "pruned", "running"
_TO_OPTUNA = {COMPLETE: TrialState.COMPLETE, FAILED: TrialState.FAIL, PRUNED: TrialState.PRUNED}
_FROM_OPTUNA = {TrialState.COMPLETE: COMPLETE, TrialState.FAIL: FAILED, TrialState.PRUNED: PRUNED,
                TrialState.RUNNING: RUNNING, TrialState.WAITING: RUNNING}
STUDY_NAME = "attnas"
METRIC_ATTRS = ("macs", "params", "latency_ms", "wall_time_s")


@dataclass(frozen=True)
class TrialRecord:
    """One trial as the history holds it."""

    number: int
    state: str
    cell: dict
    hash: str
    values: dict[str, float] = field(default_factory=dict)
    curve: list[float] = field(default_factory=list)
    reason: str | None = None
    attrs: Mapping[str, Any] = field(default_factory=dict)
    problem: str | None = None  # what is damaged in the stored record (its fields are left out), see checked_attrs
    unreadable: tuple[str, ...] = ()  # fields whose stored text is not JSON: Optuna itself cannot load this trial

    @property
    def value(self) -> float | None:
        return self.values.get("accuracy")


class History:
    """Reads and writes a search's trials in an Optuna study (see the module docstring for the layout)."""

    def __init__(self, storage: str, *, create: bool = True, metric: str = "accuracy"):
        self.storage_url = storage
        self.metric = metric
        if not create:
            _require_database_file(storage)
        try:
            rdb = optuna.storages.RDBStorage(storage, engine_kwargs=_engine_kwargs(storage))
            if create:
                self.study = optuna.create_study(storage=rdb, study_name=STUDY_NAME, direction="maximize",
                                                 load_if_exists=True)
            else:
                self.study = optuna.load_study(storage=rdb, study_name=STUDY_NAME)
        except KeyError:
            raise AttnasError(f"{_redact(storage)}: holds no attnas history") from None
        except (optuna.exceptions.StorageInternalError, ImportError, ValueError) as error:
            raise AttnasError(f"{_redact(storage)}: cannot open the history storage ({_first_line(error)})") \
                from None
        except Exception as error:  # SQLAlchemy's own errors: a bad URL, an unreachable server, a corrupt file
            if type(error).__module__.startswith("sqlalchemy"):
                raise AttnasError(f"{_redact(storage)}: cannot open the history storage "
                                  f"({_first_line(error)})") from None
            raise
        self._open: dict[int, optuna.trial.Trial] = {}

    # ------------------------------------------------------------------------------------- study metadata
    def set_metadata(self, **values: Any) -> None:
        for key, value in values.items():
            self.study.set_user_attr(key, value)

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self.study.user_attrs)

    # --------------------------------------------------------------------------------------------- writing
    def start(self, *, cell: dict, cell_hash: str, controller: str, encoding: Sequence[int] = (),
              encoding_names: Sequence[str] = (), cardinalities: Sequence[int] = (),
              choices: Sequence[Sequence[str]] = (), **attrs: Any) -> int:
        """Record a trial that starts now; returns its number (the N of `attnas export --trial N`). Its params are
        the cell's encoding as named categoricals (`choices`, see experiments/trial_params.py)."""
        params, distributions = categorical_params(encoding_names, encoding, cardinalities, choices)
        if params:
            self.study.enqueue_trial(params, skip_if_exists=False)
        trial = self.study.ask(fixed_distributions=distributions)
        for key, value in {"cell": cell, "hash": cell_hash, "controller": controller, **attrs}.items():
            trial.set_user_attr(key, value)
        self._open[trial.number] = trial
        return trial.number

    def set_attrs(self, number: int, **attrs: Any) -> None:
        trial = self._trial(number)
        for key, value in attrs.items():
            trial.set_user_attr(key, value)

    def report(self, number: int, epoch: int, value: float) -> None:
        """Record the metric after `epoch` (1-based) of a running trial; repeated epochs are ignored."""
        if value is None or not math.isfinite(value):
            return
        trial = self._trial(number)
        with warnings.catch_warnings():  # a repeated epoch (a trial resumed from a checkpoint) is ignored
            warnings.simplefilter("ignore", UserWarning)
            trial.report(float(value), step=int(epoch))

    def finish(self, number: int, *, state: str, values: Mapping[str, float] | None = None,
               reason: str | None = None, **attrs: Any) -> None:
        """Close a trial as complete, pruned or failed, with its final values. Safe to call twice."""
        if state not in _TO_OPTUNA:
            raise ValueError(f"unknown trial state {state!r}")
        values = dict(values or {})
        trial = self._trial(number)
        if self._frozen(number).state.is_finished():
            self._open.pop(number, None)
            return
        for key in METRIC_ATTRS:
            if key in values and values[key] is not None:
                trial.set_user_attr(key, float(values[key]))
        trial.set_user_attr("values", {k: float(v) for k, v in values.items() if _finite(v)})
        if reason:
            trial.set_user_attr("failure", reason[:2000])
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        metric = values.get(self.metric)
        if state == COMPLETE and not _finite(metric):
            state, reason = FAILED, reason or f"no finite {self.metric} reported"
            trial.set_user_attr("failure", reason)
        self.study.tell(number, float(metric) if state == COMPLETE else None, state=_TO_OPTUNA[state],
                        skip_if_finished=True)
        self._open.pop(number, None)

    def _trial(self, number: int) -> optuna.trial.Trial:
        if number not in self._open:
            self._open[number] = optuna.trial.Trial(self.study, self._frozen(number)._trial_id)
        return self._open[number]

    def _frozen(self, number: int) -> optuna.trial.FrozenTrial:
        storage = self.study._storage
        return storage.get_trial(storage.get_trial_id_from_study_id_trial_number(self.study._study_id, number))

    # --------------------------------------------------------------------------------------------- reading
    def trials(self, states: Iterable[str] | None = None) -> list[TrialRecord]:
        """Every trial (or those in `states`), oldest first."""
        try:
            rows = read_rows(self.study)
        except Exception:  # an Optuna whose tables differ: its own reader is always right, only slower
            rows = None
        if rows is None:
            rows = [(t.number, t.state, t.value, t.user_attrs, t.intermediate_values, t.datetime_start,
                     t.datetime_complete) for t in self.study.get_trials(deepcopy=False)]
        records = [_record(*row[:5]) for row in rows]
        return records if states is None else [r for r in records if r.state in set(states)]

    def best(self, count: int = 1) -> list[TrialRecord]:
        """The `count` complete trials with the highest metric, best first."""
        return best_of(self.trials([COMPLETE]), count)

    def trial(self, number: int) -> TrialRecord:
        for record in self.trials():
            if record.number == number:
                return record
        raise AttnasError(f"no trial {number} in this history (trials 0..{len(self.study.trials) - 1})")


def best_of(records: Iterable[TrialRecord], count: int) -> list[TrialRecord]:
    """The `count` complete, undamaged records with the highest metric, best first (earlier trials win ties)."""
    complete = [r for r in records if r.state == COMPLETE and r.value is not None and r.problem is None]
    return sorted(complete, key=lambda r: (-r.value, r.number))[:count]


UNREADABLE = object()  # what `read_rows` puts for a user attribute whose stored JSON does not parse


def _valid_cell(value: Any) -> bool:
    try:
        CellSpec.from_dict(value)
    except AttnasError:
        return False
    return True


_FIELD_CHECKS = {
    "cell": (_valid_cell, "a valid cell spec"),
    "hash": (lambda v: isinstance(v, str) and 0 < len(v) <= 128 and v.isprintable(), "a cell hash"),
    "values": (lambda v: isinstance(v, Mapping) and all(isinstance(k, str) and _finite(x) for k, x in v.items()),
               "a mapping of metric name to number"),
    "failure": (lambda v: isinstance(v, str), "a text"),
    "controller": (lambda v: isinstance(v, str), "a controller name"),
    **{key: (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number") for key in METRIC_ATTRS},
}


def checked_attrs(number: int, attrs: Mapping[str, Any]) -> tuple[dict, str | None]:
    """A trial's stored user attributes without the fields a tampered or corrupt record breaks (not JSON, or not
    what the driver writes), and one line naming the trial and each such field (None when all is well). Readers
    (status, report, export, resume) go on with the rest and say what they left out."""
    clean, problems = dict(attrs), []
    for key, value in attrs.items():
        if value is UNREADABLE:
            problems.append(f"field {key!r}: not valid JSON")
            del clean[key]
    for key, (valid, expected) in _FIELD_CHECKS.items():
        if key in clean and not valid(clean[key]):
            problems.append(f"field {key!r}: expected {expected}, got {quoted(clean.pop(key), 40)}")
    return clean, (f"trial {number}: damaged record: " + "; ".join(problems)) if problems else None


def _record(number: int, state: TrialState, value: float | None, attrs: dict, intermediate: dict) -> TrialRecord:
    unreadable = tuple(key for key, value in attrs.items() if value is UNREADABLE)
    attrs, problem = checked_attrs(number, attrs)
    values = dict(attrs.get("values") or {})
    curve = [intermediate[k] for k in sorted(intermediate)]
    return TrialRecord(number=number, state=_FROM_OPTUNA.get(state, FAILED), cell=attrs.get("cell", {}),
                       hash=attrs.get("hash", ""), values=values, curve=curve, reason=attrs.get("failure"),
                       attrs=attrs, problem=problem, unreadable=unreadable)


def read_rows(study: optuna.Study) -> list[tuple] | None:
    """(number, state, value, user attrs, intermediate values, start, complete) per trial, straight from the
    tables of an RDB storage (just these columns: several times faster than Optuna's `get_trials` on a long
    history, which also parses every parameter's distribution); None for other storages."""
    import json

    import sqlalchemy as sa
    from optuna.storages._rdb import models

    storage = study._storage
    backend = getattr(storage, "_backend", storage)  # Optuna wraps its RDBStorage in a caching layer
    if not isinstance(backend, optuna.storages.RDBStorage):
        return None
    trials = models.TrialModel.__table__
    values = models.TrialValueModel.__table__
    attrs = models.TrialUserAttributeModel.__table__
    steps = models.TrialIntermediateValueModel.__table__
    mine = sa.select(trials.c.trial_id).where(trials.c.study_id == study._study_id)
    with backend.engine.connect() as connection:
        rows = connection.execute(sa.select(trials.c.trial_id, trials.c.number, trials.c.state,
                                            trials.c.datetime_start, trials.c.datetime_complete)
                                  .where(trials.c.study_id == study._study_id).order_by(trials.c.number)).all()
        objective = {r[0]: models.TrialValueModel.stored_repr_to_value(r[1], r[2]) for r in connection.execute(
            sa.select(values.c.trial_id, values.c.value, values.c.value_type)
            .where(values.c.objective == 0, values.c.trial_id.in_(mine)))}
        user: dict[int, dict] = {}
        for trial_id, key, value_json in connection.execute(
                sa.select(attrs.c.trial_id, attrs.c.key, attrs.c.value_json).where(attrs.c.trial_id.in_(mine))):
            try:
                user.setdefault(trial_id, {})[key] = json.loads(value_json)
            except (TypeError, ValueError):  # a tampered or corrupt row: `checked_attrs` names it
                user.setdefault(trial_id, {})[key] = UNREADABLE
        curves: dict[int, dict] = {}
        for trial_id, step, value, kind in connection.execute(
                sa.select(steps.c.trial_id, steps.c.step, steps.c.intermediate_value,
                          steps.c.intermediate_value_type).where(steps.c.trial_id.in_(mine))):
            curves.setdefault(trial_id, {})[step] = \
                models.TrialIntermediateValueModel.stored_repr_to_intermediate_value(value, kind)
    return [(number, state, objective.get(trial_id), user.get(trial_id, {}), curves.get(trial_id, {}), start,
             complete) for trial_id, number, state, start, complete in rows]


def _require_database_file(storage: str) -> None:
    """Reading a history never creates storage: opening a missing SQLite file would make a new, empty one."""
    import sqlalchemy

    try:
        url = sqlalchemy.engine.make_url(storage)
    except sqlalchemy.exc.ArgumentError:
        return  # not a URL: RDBStorage says so below
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") \
            and not Path(url.database).is_file():
        raise AttnasError(f"{_redact(storage)}: the history database {url.database} is missing")


def sqlite_url(path: str) -> str:
    return f"sqlite:///{path}"


def _engine_kwargs(storage: str) -> dict:
    # A busy timeout lets a dashboard read while the driver writes.
    return {"connect_args": {"timeout": 30}} if storage.startswith("sqlite") else {"pool_pre_ping": True}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def _redact(url: str) -> str:
    """A storage URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url
