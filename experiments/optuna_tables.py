"""The one place attnas reaches into Optuna's private RDB storage (`optuna.storages._rdb`), for speed.

`read_rows` reads just the columns a history needs, several times faster than Optuna's `get_trials` on a long
history (which also parses every parameter's distribution). `write_trial` writes what a trial's epoch or close
changes (intermediate values, user attributes, state and value) in one transaction, where Optuna's public storage
API commits each on its own. Both are used only with the Optuna versions they were written against (`SUPPORTED`);
with any other version or another storage they return None and the history falls back to Optuna's public API, which
is always right, only slower (`read_rows` also falls back on tables that differ).
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Mapping

import optuna

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


def _rdb(storage: Any) -> optuna.storages.RDBStorage | None:
    backend = getattr(storage, "_backend", storage)  # Optuna may wrap its RDBStorage in a caching layer
    return backend if supported() and isinstance(backend, optuna.storages.RDBStorage) else None


def read_rows(storage: Any, study_id: int) -> list[tuple] | None:
    """(number, state, value, user attrs, intermediate values, start, complete) per trial of `study_id`, straight
    from the tables of an RDB storage; None when this reader does not apply (see the module docstring)."""
    backend = _rdb(storage)
    if backend is None:
        return None
    try:
        return _read(backend, study_id)
    except Exception:  # tables that differ from the known layout: Optuna's own reader instead
        return None


def _read(backend: optuna.storages.RDBStorage, study_id: int) -> list[tuple]:
    import sqlalchemy as sa
    from optuna.storages._rdb import models

    trials = models.TrialModel.__table__
    values = models.TrialValueModel.__table__
    attrs = models.TrialUserAttributeModel.__table__
    steps = models.TrialIntermediateValueModel.__table__
    mine = sa.select(trials.c.trial_id).where(trials.c.study_id == study_id)
    with backend.engine.connect() as connection:
        rows = connection.execute(sa.select(trials.c.trial_id, trials.c.number, trials.c.state,
                                            trials.c.datetime_start, trials.c.datetime_complete)
                                  .where(trials.c.study_id == study_id).order_by(trials.c.number)).all()
        objective = {r[0]: models.TrialValueModel.stored_repr_to_value(r[1], r[2]) for r in connection.execute(
            sa.select(values.c.trial_id, values.c.value, values.c.value_type)
            .where(values.c.objective == 0, values.c.trial_id.in_(mine)))}
        user: dict[int, dict] = {}
        for trial_id, key, value_json in connection.execute(
                sa.select(attrs.c.trial_id, attrs.c.key, attrs.c.value_json).where(attrs.c.trial_id.in_(mine))):
            try:
                user.setdefault(trial_id, {})[key] = json.loads(value_json)
            except (TypeError, ValueError):  # a tampered or corrupt row: `history.checked_attrs` names it
                user.setdefault(trial_id, {})[key] = UNREADABLE
        curves: dict[int, dict] = {}
        for trial_id, step, value, kind in connection.execute(
                sa.select(steps.c.trial_id, steps.c.step, steps.c.intermediate_value,
                          steps.c.intermediate_value_type).where(steps.c.trial_id.in_(mine))):
            curves.setdefault(trial_id, {})[step] = \
                models.TrialIntermediateValueModel.stored_repr_to_intermediate_value(value, kind)
    return [(number, state, objective.get(trial_id), user.get(trial_id, {}), curves.get(trial_id, {}), start,
             complete) for trial_id, number, state, start, complete in rows]


def create_trial(storage: Any, study_id: int, *, params: Mapping[str, tuple[float, Any]],
                 user_attrs: Mapping[str, Any], system_attrs: Mapping[str, Any],
                 curve: Mapping[int, float]) -> tuple[int, int] | None:
    """A RUNNING trial of `study_id` with its params ({name: (internal value, distribution)}), attributes and
    intermediate values, inserted in one transaction as Optuna's `create_new_trial` stores a template trial (the
    study's row locked while the trial's number is counted); (trial id, number), or None when this writer does not
    apply (see the module docstring). Bulk inserts: Optuna's ORM path costs a few queries per param and attribute."""
    backend = _rdb(storage)
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
    backend = _rdb(storage)
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
    return datetime.now(timezone.utc).replace(tzinfo=None)
