"""The one place attnas reaches into Optuna's private RDB storage (`optuna.storages._rdb`), for speed.

`read_rows` reads just the columns a history needs, several times faster than Optuna's `get_trials` on a long
history (which also parses every parameter's distribution), and only the trials, attributes and curves asked for;
`frozen_trials` reads whole trials as `get_trials` does, by one query per table (the dashboard's trial list);
`count_states` and `numbers_with` count and find trials by query; `create_trial` and `write_trial` write a trial's
start, and what its epoch or close changes, in one transaction each, where Optuna's public storage API commits each
param, attribute and value on its own; `insert_trials` writes many trials in one transaction (generated histories for
tests and benchmarks). They are used only with the Optuna versions they were written against (`SUPPORTED`); with
any other version, another storage, or tables that differ, they return None (or False) and the caller falls back to
Optuna's public API, which is always right, only slower.
"""
from __future__ import annotations

import functools
import json
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

import optuna
from optuna.trial import TrialState

UNREADABLE = object()  # what `read_rows` puts for a user attribute whose stored JSON does not parse
SUPPORTED = ((4, 0), (5, 2))  # Optuna versions [from, until) whose table layout this reader knows


def supported(version: str = optuna.__version__) -> bool:
    """Whether `version` of Optuna is one this reader was written against."""
    try:
        major_minor = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return False
    return SUPPORTED[0] <= major_minor < SUPPORTED[1]


def storage_of(study: optuna.Study) -> tuple[Any, int]:
    """A study's storage and id, which Optuna keeps private (`Study._storage`, `Study._study_id`); read here only.
    `History` holds both itself (`History.storage`, `History.study_id`)."""
    return study._storage, study._study_id


def read_rows(storage: Any, study_id: int, *, states: Iterable[TrialState] | None = None,
              numbers: Iterable[int] | None = None, keys: Iterable[str] | None = None,
              curves: bool = True, times: bool = True) -> list[tuple] | None:
    """(number, state, value, user attrs, intermediate values, start, complete) per trial of `study_id`, straight
    from the tables of an RDB storage; None when this reader does not apply (see the module docstring). Only the
    trials in `states` and `numbers`, only the user attributes named in `keys`, no intermediate values without
    `curves` and no times (None) without `times`, when asked: what a reader of a long history needs, read without
    the rest."""
    backend = _backend(storage)
    if backend is None:
        return None
    try:
        return _read(backend, study_id, states=None if states is None else list(states),
                     numbers=None if numbers is None else list(numbers), keys=None if keys is None else list(keys),
                     curves=curves, times=times)
    except Exception:  # tables that differ from the known layout: Optuna's own reader instead
        return None


def count_states(storage: Any, study_id: int) -> dict[TrialState, int] | None:
    """How many trials of `study_id` are in each state (one query); None when this reader does not apply."""
    backend = _backend(storage)
    if backend is None:
        return None
    import sqlalchemy as sa
    from optuna.storages._rdb import models

    trials = models.TrialModel.__table__
    try:
        with backend.engine.connect() as connection:
            return dict(connection.execute(sa.select(trials.c.state, sa.func.count()).where(
                trials.c.study_id == study_id).group_by(trials.c.state)).all())
    except Exception:
        return None


def numbers_with(storage: Any, study_id: int, keys: Iterable[str]) -> list[int] | None:
    """The numbers of the trials of `study_id` holding any of the user attributes `keys`, in order; None when this
    reader does not apply."""
    backend = _backend(storage)
    if backend is None:
        return None
    import sqlalchemy as sa
    from optuna.storages._rdb import models

    trials, attrs = models.TrialModel.__table__, models.TrialUserAttributeModel.__table__
    try:
        with backend.engine.connect() as connection:
            return list(connection.execute(
                sa.select(trials.c.number).distinct().join(attrs, attrs.c.trial_id == trials.c.trial_id)
                .where(trials.c.study_id == study_id, attrs.c.key.in_(list(keys))).order_by(trials.c.number))
                .scalars())
    except Exception:
        return None


def _backend(storage: Any) -> Any:
    backend = getattr(storage, "_backend", storage)  # Optuna may wrap its RDBStorage in a caching layer
    return backend if supported() and isinstance(backend, optuna.storages.RDBStorage) else None


def _read(backend: optuna.storages.RDBStorage, study_id: int, *, states: list | None, numbers: list | None,
          keys: list | None, curves: bool, times: bool) -> list[tuple]:
    import sqlalchemy as sa
    from optuna.storages._rdb import models

    trials = models.TrialModel.__table__
    values = models.TrialValueModel.__table__
    attrs = models.TrialUserAttributeModel.__table__
    steps = models.TrialIntermediateValueModel.__table__
    where = [trials.c.study_id == study_id]
    if states is not None:
        where.append(trials.c.state.in_(states))
    if numbers is not None:
        where.append(trials.c.number.in_(numbers))
    mine = sa.select(trials.c.trial_id).where(*where)
    attr_filter = [attrs.c.trial_id.in_(mine)] + ([] if keys is None else [attrs.c.key.in_(keys)])
    with backend.engine.connect() as connection:
        # parsing the times costs more than the rest of a row: SQLite keeps them as text
        moments = (trials.c.datetime_start, trials.c.datetime_complete) if times else (sa.null(), sa.null())
        rows = connection.execute(sa.select(trials.c.trial_id, trials.c.number, trials.c.state, *moments)
                                  .where(*where).order_by(trials.c.number)).all()
        objective = {r[0]: models.TrialValueModel.stored_repr_to_value(r[1], r[2]) for r in connection.execute(
            sa.select(values.c.trial_id, values.c.value, values.c.value_type)
            .where(values.c.objective == 0, values.c.trial_id.in_(mine)))}
        user: dict[int, dict] = {}
        for trial_id, key, value_json in connection.execute(
                sa.select(attrs.c.trial_id, attrs.c.key, attrs.c.value_json).where(*attr_filter)):
            try:
                user.setdefault(trial_id, {})[key] = json.loads(value_json)
            except (TypeError, ValueError):  # a tampered or corrupt row: `history.checked_attrs` names it
                user.setdefault(trial_id, {})[key] = UNREADABLE
        curve: dict[int, dict] = {}
        for trial_id, step, value, kind in connection.execute(
                sa.select(steps.c.trial_id, steps.c.step, steps.c.intermediate_value,
                          steps.c.intermediate_value_type).where(steps.c.trial_id.in_(mine))) if curves else ():
            curve.setdefault(trial_id, {})[step] = \
                models.TrialIntermediateValueModel.stored_repr_to_intermediate_value(value, kind)
    return [(number, state, objective.get(trial_id), user.get(trial_id, {}), curve.get(trial_id, {}), start,
             complete) for trial_id, number, state, start, complete in rows]


def frozen_trials(storage: Any, study_id: int, *, numbers: Iterable[int] | None = None,
                  number_above: int | None = None) -> list[optuna.trial.FrozenTrial] | None:
    """The trials of `study_id` as Optuna's `get_all_trials` returns them, in order, read by one query per table:
    Optuna's own reader costs about 10 ms a trial on a history whose trials hold dozens of params (its ORM loads
    each row as an object and parses each param's distribution again). Only the trials in `numbers` or numbered
    above `number_above`, when either is given (both: either condition); None when this reader does not apply (see
    the module docstring)."""
    backend = _backend(storage)
    if backend is None:
        return None
    try:
        return _frozen(backend, study_id, None if numbers is None else set(numbers), number_above)
    except Exception:  # tables that differ from the known layout: Optuna's own reader instead
        return None


def best_numbers(storage: Any, study_id: int, count: int, *, maximize: bool) -> list[int] | None:
    """The numbers of the `count` complete trials of `study_id` with the best values, best first (ties: lower
    number first); None when this reader does not apply."""
    backend = _backend(storage)
    if backend is None:
        return None
    import sqlalchemy as sa
    from optuna.storages._rdb import models

    trials, values = models.TrialModel.__table__, models.TrialValueModel.__table__
    order = values.c.value.desc() if maximize else values.c.value.asc()
    try:
        with backend.engine.connect() as connection:
            return list(connection.execute(
                sa.select(trials.c.number).join(values, values.c.trial_id == trials.c.trial_id)
                .where(trials.c.study_id == study_id, trials.c.state == TrialState.COMPLETE,
                       values.c.objective == 0, values.c.value_type == models.TrialValueModel.TrialValueType.FINITE)
                .order_by(order, trials.c.number).limit(count)).scalars())
    except Exception:
        return None


def _frozen(backend: optuna.storages.RDBStorage, study_id: int, numbers: set[int] | None,
            number_above: int | None) -> list[optuna.trial.FrozenTrial]:
    import sqlalchemy as sa
    from optuna.distributions import json_to_distribution
    from optuna.storages._rdb import models

    trials = models.TrialModel.__table__
    where = [trials.c.study_id == study_id]
    chosen = [trials.c.number.in_(sorted(numbers))] if numbers else []
    if number_above is not None:
        chosen.append(trials.c.number > number_above)
    if chosen:
        where.append(sa.or_(*chosen))
    elif numbers is not None:
        return []
    mine = sa.select(trials.c.trial_id).where(*where)
    distribution = functools.lru_cache(maxsize=None)(json_to_distribution)  # trials share a few distinct ones

    def by_trial(table: Any, *columns: str) -> dict[int, list[tuple]]:
        grouped: dict[int, list[tuple]] = {}
        order = table.c.param_id if table is models.TrialParamModel.__table__ else table.c.trial_id
        for row in connection.execute(sa.select(table.c.trial_id, *(table.c[c] for c in columns))
                                      .where(table.c.trial_id.in_(mine)).order_by(order)):
            grouped.setdefault(row[0], []).append(tuple(row[1:]))
        return grouped

    with backend.engine.connect() as connection:
        rows = connection.execute(sa.select(trials.c.trial_id, trials.c.number, trials.c.state,
                                            trials.c.datetime_start, trials.c.datetime_complete)
                                  .where(*where).order_by(trials.c.trial_id)).all()
        values = by_trial(models.TrialValueModel.__table__, "objective", "value", "value_type")
        params = by_trial(models.TrialParamModel.__table__, "param_name", "param_value", "distribution_json")
        user = by_trial(models.TrialUserAttributeModel.__table__, "key", "value_json")
        system = by_trial(models.TrialSystemAttributeModel.__table__, "key", "value_json")
        steps = by_trial(models.TrialIntermediateValueModel.__table__, "step", "intermediate_value",
                         "intermediate_value_type")
    frozen = []
    for trial_id, number, state, start, complete in rows:
        objectives = {k: models.TrialValueModel.stored_repr_to_value(v, kind)
                      for k, v, kind in values.get(trial_id, ())}
        trial_params = params.get(trial_id, ())
        frozen.append(optuna.trial.FrozenTrial(
            number=number, state=state, value=None,
            values=[objectives[k] for k in sorted(objectives)] or None,
            datetime_start=start, datetime_complete=complete,
            params={name: distribution(text).to_external_repr(value) for name, value, text in trial_params},
            distributions={name: distribution(text) for name, _, text in trial_params},
            user_attrs={key: json.loads(text) for key, text in user.get(trial_id, ())},
            system_attrs={key: json.loads(text) for key, text in system.get(trial_id, ())},
            intermediate_values={step: models.TrialIntermediateValueModel.stored_repr_to_intermediate_value(v, kind)
                                 for step, v, kind in steps.get(trial_id, ())},
            trial_id=trial_id))
    return frozen


def create_trial(storage: Any, study_id: int, *, params: Mapping[str, tuple[float, Any]],
                 user_attrs: Mapping[str, Any], system_attrs: Mapping[str, Any],
                 curve: Mapping[int, float]) -> tuple[int, int] | None:
    """A RUNNING trial of `study_id` with its params ({name: (internal value, distribution)}), attributes and
    intermediate values, inserted in one transaction as Optuna's `create_new_trial` stores a template trial (the
    study's row locked while the trial's number is counted); (trial id, number), or None when this writer does not
    apply (see the module docstring). Bulk inserts: Optuna's ORM path costs a few queries per param and attribute."""
    backend = _backend(storage)
    if backend is None:
        return None
    import sqlalchemy as sa
    from optuna.distributions import distribution_to_json
    from optuna.storages._rdb import models

    trials, studies = models.TrialModel.__table__, models.StudyModel.__table__
    with backend.engine.begin() as connection:
        connection.execute(sa.select(studies.c.study_id).where(studies.c.study_id == study_id).with_for_update()).one()
        number = connection.execute(sa.select(sa.func.count(trials.c.trial_id))
                                    .where(trials.c.study_id == study_id)).scalar_one()
        trial_id = connection.execute(trials.insert().values(
            number=number, study_id=study_id, state=optuna.trial.TrialState.RUNNING,
            datetime_start=_utc_now())).inserted_primary_key[0]
        rows = [(models.TrialParamModel, [{"trial_id": trial_id, "param_name": name, "param_value": value,
                                           "distribution_json": distribution_to_json(distribution)}
                                          for name, (value, distribution) in params.items()]),
                (models.TrialUserAttributeModel, _attr_rows(trial_id, user_attrs)),
                (models.TrialSystemAttributeModel, _attr_rows(trial_id, system_attrs)),
                (models.TrialIntermediateValueModel, _step_rows(trial_id, curve))]
        for model, values in rows:
            if values:
                connection.execute(model.__table__.insert(), values)
    return trial_id, number


def write_trial(storage: Any, trial_id: int, *, curve: Mapping[int, float], attrs: Mapping[str, Any],
                state: optuna.trial.TrialState | None = None, value: float | None = None) -> bool | None:
    """In one transaction: the epochs of `curve` the trial does not hold yet (an epoch already stored keeps its
    value, as with `Trial.report`), the user attributes `attrs`, then, when `state` is given, the trial's close as
    `Study.tell` makes it (a pruned trial's value is its last intermediate value). Returns False, writing nothing,
    when closing a trial that is already finished; raises like Optuna when writing to one without closing it; None
    when this writer does not apply (see the module docstring)."""
    backend = _backend(storage)
    if backend is None:
        return None
    import sqlalchemy as sa
    from optuna.storages._rdb import models

    trials = models.TrialModel.__table__
    steps = models.TrialIntermediateValueModel
    user = models.TrialUserAttributeModel.__table__
    values = models.TrialValueModel
    with backend.engine.begin() as connection:
        current = connection.execute(sa.select(trials.c.state).where(trials.c.trial_id == trial_id)
                                     .with_for_update()).scalar_one()
        if state is not None and current.is_finished():
            return False
        backend.check_trial_is_updatable(trial_id, current)
        stored = {step: (number, kind) for step, number, kind in connection.execute(
            sa.select(steps.step, steps.intermediate_value, steps.intermediate_value_type)
            .where(steps.trial_id == trial_id))}
        new = {step: v for step, v in curve.items() if step not in stored}
        if new:
            connection.execute(steps.__table__.insert(), _step_rows(trial_id, new))
            stored.update((row["step"], (row["intermediate_value"], row["intermediate_value_type"]))
                          for row in _step_rows(trial_id, new))
        if attrs:
            connection.execute(user.delete().where(user.c.trial_id == trial_id, user.c.key.in_(list(attrs))))
            connection.execute(user.insert(), _attr_rows(trial_id, attrs))
        if state is None:
            return True
        if state == optuna.trial.TrialState.PRUNED and value is None and stored:
            value = steps.stored_repr_to_intermediate_value(*stored[max(stored)])
        if value is not None:
            number, kind = values.value_to_stored_repr(float(value))
            connection.execute(values.__table__.delete().where(values.trial_id == trial_id, values.objective == 0))
            connection.execute(values.__table__.insert().values(trial_id=trial_id, objective=0, value=number,
                                                                value_type=kind))
        connection.execute(trials.update().where(trials.c.trial_id == trial_id)
                           .values(state=state, datetime_complete=_utc_now()))
    return True


def _attr_rows(trial_id: int, attrs: Mapping[str, Any]) -> list[dict]:
    return [{"trial_id": trial_id, "key": key, "value_json": json.dumps(value)} for key, value in attrs.items()]


def _step_rows(trial_id: int, curve: Mapping[int, float]) -> list[dict]:
    from optuna.storages._rdb import models

    rows = []
    for step, value in sorted(curve.items()):
        number, kind = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(float(value))
        rows.append({"trial_id": trial_id, "step": step, "intermediate_value": number,
                     "intermediate_value_type": kind})
    return rows


def _utc_now() -> datetime:
    """Now as Optuna's RDB tables hold times: naive UTC."""
    return _utc(datetime.now())


def insert_trials(storage: Any, study_id: int, trials: Sequence[optuna.trial.FrozenTrial]) -> bool:
    """Add finished or running `trials` (numbered after the study's last trial, in order) to `study_id` in one
    transaction of bulk inserts: what `Study.add_trials` stores, written a hundred times faster, for histories of
    tens of thousands of trials made for tests and benchmarks. False, with nothing written, when this adapter does
    not apply (see the module docstring): the caller then uses `Study.add_trials`."""
    backend = _backend(storage)
    if backend is None:
        return False
    import sqlalchemy as sa
    from optuna.storages._rdb import models

    trial_table = models.TrialModel.__table__
    row_columns = _row_columns()
    shared: dict[tuple, tuple] = {}  # trials often share their params and attribute objects: each is encoded once

    def once(what: str, key: Any, encode) -> Any:
        if (what, id(key)) not in shared:
            shared[what, id(key)] = (key, encode())  # holding `key` keeps its id from being reused
        return shared[what, id(key)][1]

    @functools.lru_cache(maxsize=None)
    def as_json(distribution: optuna.distributions.BaseDistribution) -> str:
        return optuna.distributions.distribution_to_json(distribution)

    with backend.engine.begin() as connection:
        first = connection.execute(sa.select(sa.func.count()).select_from(trial_table)
                                   .where(trial_table.c.study_id == study_id)).scalar_one()
        connection.execute(trial_table.insert(), [
            {"number": first + i, "study_id": study_id, "state": t.state, "datetime_start": _utc(t.datetime_start),
             "datetime_complete": _utc(t.datetime_complete)} for i, t in enumerate(trials)])
        ids = dict(connection.execute(sa.select(trial_table.c.number, trial_table.c.trial_id).where(
            trial_table.c.study_id == study_id, trial_table.c.number >= first)).all())
        rows: dict[Any, list[tuple]] = {model: [] for model in row_columns}
        for i, trial in enumerate(trials):
            trial_id = ids[first + i]
            if trial.value is not None:
                value, kind = models.TrialValueModel.value_to_stored_repr(trial.value)
                rows[models.TrialValueModel].append((trial_id, 0, value, kind.name))
            params = once("params", trial.params, lambda: [
                (name, trial.distributions[name].to_internal_repr(value), as_json(trial.distributions[name]))
                for name, value in trial.params.items()])
            rows[models.TrialParamModel].extend((trial_id, *param) for param in params)
            for model, attrs in ((models.TrialUserAttributeModel, trial.user_attrs),
                                 (models.TrialSystemAttributeModel, trial.system_attrs)):
                rows[model].extend((trial_id, key, once("json", value, lambda: json.dumps(value))
                                    if isinstance(value, (dict, list)) else json.dumps(value))
                                   for key, value in attrs.items())
            for step, value in trial.intermediate_values.items():
                stored, kind = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(value)
                rows[models.TrialIntermediateValueModel].append((trial_id, step, stored, kind.name))
        for model, batch in rows.items():
            if batch:
                _execute_many(connection, model.__table__, row_columns[model], batch)
    return True


def _execute_many(connection: Any, table: Any, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """One INSERT of many plain rows straight through the database driver: SQLAlchemy's per-row parameter handling
    costs more than the database's own work at millions of rows. Enum columns hold their member's name, as
    SQLAlchemy stores them."""
    compiled = table.insert().compile(dialect=connection.dialect, column_keys=list(columns))
    if compiled.positional:
        order = [columns.index(key) for key in compiled.positiontup]
        if order != sorted(order):
            rows = [tuple(row[i] for i in order) for row in rows]
        connection.exec_driver_sql(str(compiled), rows)
    else:
        connection.exec_driver_sql(str(compiled), [dict(zip(columns, row)) for row in rows])


def _row_columns() -> dict[Any, tuple[str, ...]]:
    from optuna.storages._rdb import models

    return {models.TrialValueModel: ("trial_id", "objective", "value", "value_type"),
            models.TrialParamModel: ("trial_id", "param_name", "param_value", "distribution_json"),
            models.TrialUserAttributeModel: ("trial_id", "key", "value_json"),
            models.TrialSystemAttributeModel: ("trial_id", "key", "value_json"),
            models.TrialIntermediateValueModel: ("trial_id", "step", "intermediate_value", "intermediate_value_type")}


def _utc(moment: Any) -> Any:
    """A naive local time as Optuna stores it: naive UTC (`TrialModel.datetime_start`'s setter)."""
    return None if moment is None else moment.astimezone(timezone.utc).replace(tzinfo=None)
