"""The search's history: an Optuna study in an RDB (SQLite in the run folder, or any SQLAlchemy URL).

Only the driver writes. Each attnas trial is one Optuna trial:

- value: the objective's metric (validation top-1 by default); intermediate values: that metric per epoch;
- params: the cell's fixed-length encoding (one categorical per entry, its choices named), so Optuna's importance and
  parallel-coordinate views work on cells;
- user attributes: the cell spec and hash, controller, state and failure reason, multiply-adds, parameters,
  latency, wall time, the node it ran on, the Ray trial id and its last checkpoint;
- state: RUNNING while it trains, then COMPLETE, PRUNED (stopped early by ASHA) or FAIL.

The study is named after the run, so one database (a shared PostgreSQL server) holds many runs; its own user
attributes hold the experiment file (as resolved), the search space and the objective as text, so `resume`, `status`
and `export` need nothing but the storage and the run's name.

Writes are batched per trial: a trial's start is one transaction (the RUNNING trial with its params, cell and
attributes), so a driver killed at any moment leaves either no trial or a trial whose cell is known; each epoch's
metric is held until the trial's next write, its checkpoint (one transaction for both) or its close; the close is
one transaction (the epochs held, values, attributes, `closing`: the state it closes with, then the state itself).
Where a write cannot be one transaction (an Optuna version `optuna_tables` does not know), the same writes are made
one by one in that order, and a driver killed before the state is told leaves a record the next one completes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import optuna
from optuna.trial import TrialState

from attnas.experiments.optuna_tables import UNREADABLE, create_trial, write_trial
from attnas.experiments.trial_params import categorical_params
from attnas.search_space import CellSpec
from attnas.search_space.errors import AttnasError, quoted

optuna.logging.set_verbosity(optuna.logging.WARNING)

COMPLETE, FAILED, PRUNED, RUNNING = "complete", "failed", "pruned", "running"
_TO_OPTUNA = {COMPLETE: TrialState.COMPLETE, FAILED: TrialState.FAIL, PRUNED: TrialState.PRUNED}
_FROM_OPTUNA = {TrialState.COMPLETE: COMPLETE, TrialState.FAIL: FAILED, TrialState.PRUNED: PRUNED,
                TrialState.RUNNING: RUNNING, TrialState.WAITING: RUNNING}
STUDY_NAME = "attnas"  # the study of runs made before studies were named after their run
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
    objective_value: float | None = None

    @property
    def value(self) -> float | None:
        """The trial's value in the study: the objective's reward for a complete trial, the last reported metric
        for a pruned one (histories written before the objective was stored: the accuracy)."""
        if self.objective_value is not None:
            return self.objective_value
        return self.values.get("accuracy") if self.state == COMPLETE else None


class History:
    """Reads and writes a search's trials in an Optuna study (see the module docstring for the layout)."""

    def __init__(self, storage: str, *, create: bool = True, metric: str = "accuracy", study: str = STUDY_NAME):
        self.storage_url = storage
        self.metric = metric
        self.study_name = study
        if not create:
            _require_database_file(storage)
        try:
            rdb = _open_storage(storage)
            if create:
                self.study = optuna.create_study(storage=rdb, study_name=study, direction="maximize",
                                                 load_if_exists=True)
            else:
                self.study = optuna.load_study(storage=rdb, study_name=study)
            self.storage = rdb
            self.study_id = rdb.get_study_id_from_name(study)
        except KeyError:
            raise AttnasError(f"{_redact(storage)}: holds no attnas history named {study!r}") from None
        except (optuna.exceptions.StorageInternalError, ImportError, ValueError) as error:
            raise AttnasError(f"{_redact(storage)}: cannot open the history storage ({_first_line(error)})") \
                from None
        except Exception as error:  # SQLAlchemy's own errors: a bad URL, an unreachable server, a corrupt file
            if type(error).__module__.startswith("sqlalchemy"):
                raise AttnasError(f"{_redact(storage)}: cannot open the history storage "
                                  f"({_first_line(error)})") from None
            raise
        self._ids: dict[int, int] = {}  # trial number -> Optuna's trial id
        # per running trial: epochs reported and attributes held until its next write (see `report`)
        self._held: dict[int, tuple[dict[int, float], dict[str, Any]]] = {}

    @staticmethod
    def redacted(url: str) -> str:
        """A storage URL without its password, for messages."""
        return _redact(url)

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
              choices: Sequence[Sequence[str]] = (), curve: Sequence[float] = (),
              system_attrs: Mapping[str, Any] | None = None, **attrs: Any) -> int:
        """Record a trial that starts now, in one transaction; returns its number (the N of `attnas export --trial
        N`). Its params are the cell's encoding as named categoricals (`choices`, see experiments/trial_params.py);
        `curve` holds the metric of epochs it already has (a trial trained again from another's checkpoint);
        `system_attrs` what the dashboard attaches to it (its drawing's artifact)."""
        params, distributions = categorical_params(encoding_names, encoding, cardinalities, choices)
        user_attrs = {"cell": cell, "hash": cell_hash, "controller": controller, **attrs}
        intermediate = {epoch: float(v) for epoch, v in enumerate(curve, start=1) if _finite(v)}
        created = create_trial(self.storage, self.study_id, user_attrs=user_attrs, system_attrs=system_attrs or {},
                               curve=intermediate, params={name: (distributions[name].to_internal_repr(value),
                                                                  distributions[name])
                                                           for name, value in params.items()})
        if created is not None:
            trial_id, number = created
            self._ids[number] = trial_id
            return number
        template = optuna.trial.FrozenTrial(
            number=-1, trial_id=-1, state=TrialState.RUNNING, value=None, datetime_start=datetime.now(),
            datetime_complete=None, params=params, distributions=distributions,
            user_attrs=user_attrs, system_attrs=dict(system_attrs or {}), intermediate_values=intermediate)
        trial_id = self.storage.create_new_trial(self.study_id, template_trial=template)
        number = self.storage.get_trial_number_from_id(trial_id)
        self._ids[number] = trial_id
        return number

    def report(self, number: int, epoch: int, value: float) -> None:
        """The metric after `epoch` (1-based) of a running trial; repeated epochs are ignored. It is held and
        written with the trial's next write (its checkpoint, `flush` or its close), in the same transaction: the
        history never holds an epoch's checkpoint without that epoch's value."""
        if value is None or not math.isfinite(value):
            return
        self._pending(number)[0].setdefault(int(epoch), float(value))

    def set_attrs(self, number: int, **attrs: Any) -> None:
        """Write user attributes of a running trial now, with what is held for it, in one transaction."""
        curve, held = self._pending(number)
        self._write(number, curve=curve, attrs={**held, **attrs})
        self._held.pop(number, None)

    def hold_attrs(self, number: int, **attrs: Any) -> None:
        """User attributes written with the trial's next write (e.g. the checkpoint of its last epoch, which only
        matters once the trial is closed, so it is written with its close)."""
        self._pending(number)[1].update(attrs)

    def flush(self, number: int) -> None:
        """Write what is held for a trial (its reported epochs, held attributes), if anything."""
        if any(self._held.get(number, ({}, {}))):
            self.set_attrs(number)

    def finish(self, number: int, *, state: str, values: Mapping[str, float] | None = None,
               reason: str | None = None, value: float | None = None, **attrs: Any) -> None:
        """Close a trial as complete, pruned or failed, with its final values, in one transaction with what is held
        for it. A complete trial's value is `value` (the objective's reward) or else its metric; a pruned one's is
        its last reported metric. Safe to call twice (the first close stays)."""
        if state not in _TO_OPTUNA:
            raise ValueError(f"unknown trial state {state!r}")
        values = dict(values or {})
        curve, closing = self._pending(number)
        closing = dict(closing)
        for key in METRIC_ATTRS:
            if key in values and values[key] is not None:
                closing[key] = float(values[key])
        closing["values"] = {k: float(v) for k, v in values.items() if _finite(v)}
        if reason:
            closing["failure"] = reason[:2000]
        closing.update(attrs)
        metric = values.get(self.metric) if value is None else value
        if state == COMPLETE and not _finite(metric):
            state, reason = FAILED, reason or f"no finite {self.metric} reported"
            closing["failure"] = reason
        # `closing` goes last: where the writes are not one transaction (another Optuna version), a driver killed
        # before the state is told leaves a record `recover` completes.
        closing["closing"] = {"state": state, "value": float(metric) if state == COMPLETE else None}
        self._write(number, curve=curve, attrs=closing, state=state, value=closing["closing"]["value"])
        self._held.pop(number, None)

    def tell(self, number: int) -> None:
        """Tell Optuna the state (and value) a trial's `closing` attribute holds: how a resume completes a close
        that a killed driver left half-done."""
        closing = self._frozen(number).user_attrs.get("closing") or {}
        state = closing.get("state", FAILED)
        value = closing.get("value") if state == COMPLETE else None
        self.study.tell(number, value, state=_TO_OPTUNA.get(state, TrialState.FAIL), skip_if_finished=True)

    def recover(self) -> list[int]:
        """Repair what a driver killed mid-write left (called by the driver before it reads the history): a trial
        enqueued but not yet picked up (histories written before starts were one transaction) is picked up (it then
        counts as left running); a trial whose close was cut short is closed as it was meant to be; a trial whose
        start lacks its cell is closed as failed with `half_written`, so it neither blocks a resume nor counts in
        the budget. Returns the numbers closed as half-written."""
        for _ in self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            self.study.ask()
        half_written = []
        for record in self.trials([RUNNING]):
            if isinstance(record.attrs.get("closing"), dict):
                self.tell(record.number)
            elif record.problem is None and (not record.cell or not record.hash):
                self.finish(record.number, state=FAILED, half_written=True,
                            reason="the driver was killed while this trial's start was being written; its cell is "
                                   "unknown, so it was not trained")
                half_written.append(record.number)
        return half_written

    def _pending(self, number: int) -> tuple[dict[int, float], dict[str, Any]]:
        return self._held.setdefault(number, ({}, {}))

    def _write(self, number: int, *, curve: Mapping[int, float], attrs: Mapping[str, Any],
               state: str | None = None, value: float | None = None) -> None:
        """One transaction (optuna_tables.write_trial); with an Optuna version it does not know, Optuna's public
        API, one commit each, in the same order (epochs, attributes, then the close)."""
        trial_id = self._trial_id(number)
        optuna_state = None if state is None else _TO_OPTUNA[state]
        if write_trial(self.storage, trial_id, curve=curve, attrs=attrs, state=optuna_state,
                       value=value) is not None:
            return
        frozen = self.storage.get_trial(trial_id)
        if state is not None and frozen.state.is_finished():
            return
        for epoch, intermediate in sorted(curve.items()):
            if epoch not in frozen.intermediate_values:
                self.storage.set_trial_intermediate_value(trial_id, epoch, intermediate)
        for key, attr in attrs.items():
            self.storage.set_trial_user_attr(trial_id, key, attr)
        if state is not None:
            self.study.tell(number, value if state == COMPLETE else None, state=optuna_state, skip_if_finished=True)

    def _trial_id(self, number: int) -> int:
        if number not in self._ids:
            self._ids[number] = self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)
        return self._ids[number]

    def _frozen(self, number: int) -> optuna.trial.FrozenTrial:
        return self.storage.get_trial(self._trial_id(number))

    # --------------------------------------------------------------------------------------------- reading
    def trials(self, states: Iterable[str] | None = None, *, numbers: Iterable[int] | None = None,
               keys: Iterable[str] | None = None, curves: bool = True) -> list[TrialRecord]:
        """Every trial (or those in `states`, and those numbered `numbers`), oldest first. `keys` reads only those
        user attributes (a record then holds only them: its `problem` covers only them), `curves=False` no
        learning curves: how a long history is read for what a command needs."""
        from attnas.experiments.optuna_tables import read_rows

        wanted = None if states is None else set(states)
        optuna_states = None if wanted is None else [s for s, name in _FROM_OPTUNA.items() if name in wanted]
        numbers = None if numbers is None else sorted(set(numbers))
        keys = None if keys is None else tuple(keys)
        rows = read_rows(self.storage, self.study_id, states=optuna_states, numbers=numbers, keys=keys,
                         curves=curves, times=False)  # a record holds no times
        if rows is None:
            chosen = None if numbers is None else set(numbers)
            rows = [(t.number, t.state, t.value,
                     t.user_attrs if keys is None else {k: v for k, v in t.user_attrs.items() if k in keys},
                     t.intermediate_values if curves else {}, t.datetime_start, t.datetime_complete)
                    for t in self.study.get_trials(deepcopy=False, states=optuna_states)
                    if chosen is None or t.number in chosen]
        records = [_record(*row[:5]) for row in rows]
        return records if wanted is None else [r for r in records if r.state in wanted]

    def counts(self) -> dict[str, int]:
        """How many trials are complete, pruned, failed and running (one query on an RDB storage)."""
        from attnas.experiments.optuna_tables import count_states

        by_state = count_states(self.storage, self.study_id)
        if by_state is None:
            by_state = {}
            for trial in self.study.get_trials(deepcopy=False):
                by_state[trial.state] = by_state.get(trial.state, 0) + 1
        counts = dict.fromkeys((COMPLETE, PRUNED, FAILED, RUNNING), 0)
        for state, count in by_state.items():
            counts[_FROM_OPTUNA.get(state, FAILED)] += count
        return counts

    def progress(self) -> "Progress":
        """Counts by state, the trials that count in the budget, and the trials a resume trains again (`counted`,
        `to_rerun`), reading only the trials that are running or flagged interrupted, half-written or re-run."""
        from attnas.experiments.optuna_tables import numbers_with

        flagged = numbers_with(self.storage, self.study_id, FLAGS)
        counts = self.counts()
        if flagged is None:
            records = self.trials()
        else:
            running = [r.number for r in self.trials([RUNNING], keys=(), curves=False)]
            records = self.trials(numbers=[*flagged, *running])
        left_out = {s: sum(1 for r in records if r.state == s and not counted(r)) for s in counts}
        return Progress(counts=counts, finished={s: counts[s] - left_out[s] for s in (COMPLETE, PRUNED, FAILED)},
                        rerun=to_rerun(records))

    @property
    def objective(self):
        """The run's objective (`controllers.objective.Objective`) as stored at its start; accuracy by default."""
        from attnas.controllers.objective import Objective

        return Objective.from_dict(self.metadata.get("objective") or None)

    def best(self, count: int = 1) -> list[TrialRecord]:
        """The `count` best complete trials under the run's objective, best first."""
        return self.ranked(count)[0]

    def ranked(self, count: int) -> tuple[list[TrialRecord], list[TrialRecord]]:
        """The `count` best complete, undamaged trials under the run's objective, best first (what `best_of`
        picks from every record), and the damaged records met on the way, by number. All complete trials are
        ranked on their values alone, then whole records are read best first until `count` undamaged ones are
        found: a long history is never read whole."""
        ranked, unranked = self._rank_complete()
        damaged = self.trials(numbers=unranked)  # their values are damaged: they cannot be ranked
        best: list[TrialRecord] = []
        step = max(2 * count, 16)
        for start in range(0, len(ranked), step):
            whole = {r.number: r for r in self.trials(numbers=ranked[start:start + step])}
            for number in ranked[start:start + step]:
                if len(best) == count:
                    return best, sorted(damaged, key=lambda r: r.number)
                (damaged if whole[number].problem else best).append(whole[number])
        return best, sorted(damaged, key=lambda r: r.number)

    def _rank_complete(self) -> tuple[list[int], list[int]]:
        """The numbers of the complete trials best first, as `best_of` orders their records, and of those whose
        `values` are damaged (left out of the ranking); from each trial's value and values alone."""
        from attnas.experiments.optuna_tables import read_rows

        rows = read_rows(self.storage, self.study_id, states=[TrialState.COMPLETE], keys=("values",), curves=False,
                         times=False)
        if rows is None:
            light = self.trials([COMPLETE], keys=("values",), curves=False)
            return [r.number for r in best_of(light, math.inf, self.objective)], [r.number for r in light if r.problem]
        objective, valid = self.objective, _FIELD_CHECKS["values"][0]
        keys, unranked = [], []
        for number, _, value, attrs, *_ in rows:  # what `_record` and `best_of` make of these two fields
            values = attrs.get("values", {})
            if values is UNREADABLE or not valid(values):  # valid values are all finite numbers
                unranked.append(number)
                continue
            if not _finite(value):
                value = values.get("accuracy")
            if value is not None:
                tier, reward = objective.rank(values, COMPLETE)
                keys.append((-tier, -reward, number))
        return [number for *_, number in sorted(keys)], unranked

    def trial(self, number: int) -> TrialRecord:
        found = self.trials(numbers=[number])
        if found:
            return found[0]
        raise AttnasError(f"no trial {number} in this history (trials 0..{sum(self.counts().values()) - 1})")


@dataclass(frozen=True)
class Progress:
    """How far a search got, read without reading every trial (`History.progress`)."""

    counts: dict[str, int]  # every trial by state
    finished: dict[str, int]  # complete, pruned and failed trials that count in the budget (`counted`)
    rerun: list[TrialRecord]  # what a resume trains again (`to_rerun`)

    @property
    def done(self) -> int:
        return sum(self.finished.values())


FLAGS = ("interrupted", "half_written", "rerun_of")  # user attributes that change what counts (`counted`, `to_rerun`)


def counted(record: TrialRecord) -> bool:
    """Whether a finished trial counts in the trial budget (not one closed as interrupted or half-written)."""
    return record.state != RUNNING and not record.attrs.get("interrupted") and not record.attrs.get("half_written")


def to_rerun(records: list[TrialRecord]) -> list[TrialRecord]:
    """Trials a resume trains again: left running by a killed driver, or closed as interrupted by a stopped one
    and not trained again since."""
    rerun_already = {r.attrs.get("rerun_of") for r in records}
    return [r for r in records if r.state == RUNNING
            or (r.attrs.get("interrupted") and r.number not in rerun_already)]


def best_of(records: Iterable[TrialRecord], count: int, objective: Any = None) -> list[TrialRecord]:
    """The `count` best complete, undamaged records, best first (earlier trials win ties): by `objective.rank`
    (budgets first, then reward) when an objective is given, else by value."""
    complete = [r for r in records if r.state == COMPLETE and r.value is not None and r.problem is None]
    if objective is None:
        return sorted(complete, key=lambda r: (-r.value, r.number))[:_limit(count)]
    keys = {r.number: objective.rank(r.values, COMPLETE) for r in complete}
    return sorted(complete, key=lambda r: (-keys[r.number][0], -keys[r.number][1], r.number))[:_limit(count)]


def _limit(count: float) -> int | None:
    return None if count == math.inf else int(count)


def list_studies(storage: str) -> list[tuple[str, int]]:
    """(study name, number of trials) of every run a database holds, in creation order; the trials are counted by
    query (Optuna's study summaries would read every trial of every run)."""
    from attnas.experiments.optuna_tables import count_states

    try:
        rdb = _open_storage(storage)
        found = []
        for study in rdb.get_all_studies():
            study_id = rdb.get_study_id_from_name(study.study_name)
            counts = count_states(rdb, study_id)
            found.append((study.study_name, sum(counts.values()) if counts is not None
                          else len(rdb.get_all_trials(study_id, deepcopy=False))))
    except Exception as error:  # SQLAlchemy's and Optuna's own errors: a bad URL, an unreachable server
        raise AttnasError(f"{_redact(storage)}: cannot open the history storage ({_first_line(error)})") from None
    return found


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
    values = attrs.get("values")
    values = {k: v for k, v in values.items() if _finite(v)} if isinstance(values, dict) else {}
    curve = [intermediate[k] for k in sorted(intermediate)]
    cell = attrs.get("cell")
    cell_hash = attrs.get("hash")
    reason = attrs.get("failure")
    return TrialRecord(number=number, state=_FROM_OPTUNA.get(state, FAILED),
                       cell=cell if isinstance(cell, dict) else {},
                       hash=cell_hash if isinstance(cell_hash, str) else "", values=values, curve=curve,
                       reason=None if reason is None else str(reason), attrs=attrs,
                       objective_value=float(value) if _finite(value) else None, problem=problem,
                       unreadable=unreadable)


def _open_storage(url: str, attempts: int = 5) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage at `url`. Several processes opening a new database at once (searches sharing it, or
    `attnas status` while a search creates its history) all create its tables; the losers of that race see an
    integrity error, or SQLite's "table ... already exists", and simply open the tables the winner made."""
    import time

    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(_as_template(url), engine_kwargs=_engine_kwargs(url))
        except Exception as error:
            lost_race = type(error).__name__ in ("IntegrityError", "ProgrammingError") or (
                type(error).__name__ == "OperationalError" and "already exists" in str(error))
            if attempt == attempts - 1 or not lost_race:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _as_template(url: str) -> str:
    """`url` as Optuna reads it: a template whose `{SCHEMA_VERSION}` it fills in (`str.format`), so the braces of a
    run folder's path (`runs/ablation{1}/`) must be doubled to stay braces. Only SQLite URLs: those attnas makes from
    a path; a URL the user wrote keeps Optuna's meaning."""
    return url.replace("{", "{{").replace("}", "}}") if url.startswith("sqlite:") else url


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
