"""What the dashboard's figures and the report read from a history: one `TrialPoint` per trial, and the reference
cells' scores (kept in the study's user attributes, never as trials, so no controller ever observes them)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import optuna
from optuna.trial import TrialState

from attnas.experiments.history import COMPLETE, FAILED, PRUNED, RUNNING, History, checked_attrs
from attnas.experiments.optuna_tables import read_rows, storage_of

REFERENCES_ATTR = "references"
REFERENCE_CELLS = ("none", "non_local", "double_attention")
_STATES = {TrialState.COMPLETE: COMPLETE, TrialState.FAIL: FAILED, TrialState.PRUNED: PRUNED,
           TrialState.RUNNING: RUNNING, TrialState.WAITING: RUNNING}


@dataclass(frozen=True)
class TrialPoint:
    """One trial as the figures see it; times are seconds since the history's first trial started."""

    number: int
    state: str
    value: float | None
    controller: str
    cell: Mapping[str, Any]
    hash: str
    curve: tuple[float, ...] = ()
    macs: float | None = None
    params: float | None = None
    latency_ms: float | None = None
    node: str | None = None
    started_s: float | None = None
    finished_s: float | None = None


@dataclass(frozen=True)
class Reference:
    """A reference cell scored once per run with the experiment's evaluator (see `references.py`)."""

    name: str
    accuracy: float
    macs: float | None = None
    params: float | None = None
    hash: str | None = None
    curve: tuple[float, ...] = field(default_factory=tuple)


def load_points(study: optuna.Study, *, fast: bool = True) -> list[TrialPoint]:
    """Every trial of the study, oldest first.

    On an RDB storage the trials are read with four plain queries (just the columns the figures use), several times
    faster than Optuna's `get_trials` on a long history; `fast=False`, any other storage, or an Optuna schema this
    code does not know takes Optuna's own path (the tests check both give the same points)."""
    if fast:
        rows = read_rows(*storage_of(study))  # None when the fast reader does not apply
        if rows is not None:
            return _points(rows)
    return _points([(t.number, t.state, t.value, t.user_attrs, t.intermediate_values, t.datetime_start,
                     t.datetime_complete) for t in study.get_trials(deepcopy=False)])


def point_from_trial(trial: optuna.trial.FrozenTrial, origin=None) -> TrialPoint:
    """The `TrialPoint` of one Optuna trial written by `experiments.history.History`."""
    return _point(trial.number, trial.state, trial.value, trial.user_attrs, trial.intermediate_values,
                  trial.datetime_start, trial.datetime_complete, origin)


def _points(rows: list[tuple]) -> list[TrialPoint]:
    starts = [row[5] for row in rows if row[5] is not None]
    origin = min(starts) if starts else None
    return [_point(*row, origin) for row in rows]


def _point(number, trial_state, value, attrs, intermediate, start, complete, origin) -> TrialPoint:
    attrs, _ = checked_attrs(number, attrs)  # a tampered field is left out of the figures
    values = attrs.get("values") or {}
    state = _STATES.get(trial_state, FAILED)

    def seconds(moment):
        return None if moment is None or origin is None else (moment - origin).total_seconds()

    return TrialPoint(
        number=number, state=state, value=value if state == COMPLETE else None,
        controller=str(attrs.get("controller", "?")), cell=attrs.get("cell") or {}, hash=attrs.get("hash", ""),
        curve=tuple(intermediate[k] for k in sorted(intermediate)),
        macs=_number(attrs.get("macs", values.get("macs"))), params=_number(attrs.get("params", values.get("params"))),
        latency_ms=_number(attrs.get("latency_ms", values.get("latency_ms"))), node=attrs.get("node"),
        started_s=seconds(start), finished_s=seconds(complete))


def load_references(history: History) -> list[Reference]:
    """The reference cells' scores recorded for this run (empty when `attnas references` has not run)."""
    raw = history.metadata.get(REFERENCES_ATTR) or {}
    order = {name: i for i, name in enumerate(REFERENCE_CELLS)}
    references = []
    for name, entry in sorted(raw.items(), key=lambda item: (order.get(item[0], len(order)), item[0])):
        if isinstance(entry, Mapping) and _number(entry.get("accuracy")) is not None:
            references.append(Reference(name=name, accuracy=float(entry["accuracy"]), macs=_number(entry.get("macs")),
                                        params=_number(entry.get("params")), hash=entry.get("hash"),
                                        curve=tuple(float(v) for v in entry.get("curve") or ())))
    return references


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
