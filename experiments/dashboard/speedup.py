"""Makes optuna-dashboard's trial list linear in the number of trials.

optuna-dashboard keeps each trial's note (and artifacts it uploaded itself) in the study's system attributes, and
for every trial it serializes it scans all of them for that trial's keys: O(trials x attributes). With a note per
trial that is quadratic (about a minute for 5,000 trials). `install()` swaps the two lookups for versions that index
the attributes once per request and return exactly what the originals return (tests/experiments/
test_dashboard_server.py compares them); it does nothing when optuna-dashboard's internals are not the ones it
knows, so a newer optuna-dashboard is only slower, never wrong.
"""
from __future__ import annotations

import threading
from typing import Any

_NOTE_VER, _NOTE_STR, _ARTIFACTS = "note_ver", "note_str", "artifacts"
_local = threading.local()
_installed = False


def install() -> bool:
    """Patch optuna-dashboard's per-trial note and artifact lookups (idempotent); True when they are in place."""
    global _installed
    if _installed:
        return True
    try:
        from optuna_dashboard import _note, _serializer
        from optuna_dashboard.artifact import _backend
    except ImportError:
        return False
    known = (getattr(_serializer, "note", None) is _note and hasattr(_note, "get_note_from_system_attrs")
             and getattr(_serializer, "list_trial_artifacts", None) is getattr(_backend, "list_trial_artifacts", 0)
             and getattr(_note, "note_ver_key", lambda t: None)(7) == "dashboard:7:note_ver"
             and getattr(_backend, "DASHBOARD_ARTIFACTS_ATTR_PREFIX", None) == "dashboard:artifacts:"
             and getattr(_backend, "ARTIFACTS_ATTR_PREFIX", None) == "artifacts:")
    if not known:
        return False
    original_note = _note.get_note_from_system_attrs
    original_artifacts = _backend.list_trial_artifacts

    def get_note_from_system_attrs(system_attrs: dict[str, Any], trial_id):
        if trial_id is None:
            return original_note(system_attrs, trial_id)
        entry = _index(system_attrs)["notes"].get(int(trial_id))
        if entry is None or entry[0] is None:
            return {"version": 0, "body": ""}
        version, chunks = entry
        return {"version": int(version), "body": "".join(chunks[str(i)] for i in range(len(chunks)))}

    def list_trial_artifacts(study_system_attrs, trial_system_attrs, trial):
        import json

        from_study = [json.loads(v) for v in _index(study_system_attrs)["artifacts"].get(trial._trial_id, ())]
        from_trial = [json.loads(v) for k, v in trial_system_attrs.items() if k.startswith("artifacts:")]
        return [a for a in from_study + from_trial if a is not None]

    get_note_from_system_attrs.original = original_note  # type: ignore[attr-defined]
    list_trial_artifacts.original = original_artifacts  # type: ignore[attr-defined]
    _note.get_note_from_system_attrs = get_note_from_system_attrs
    _serializer.list_trial_artifacts = list_trial_artifacts
    _installed = True
    return True


def _index(system_attrs: dict[str, Any]) -> dict[str, dict]:
    """Per-trial notes and dashboard artifacts of one study's system attributes, built once per dict object.

    One request serializes all trials against the same dict, so each thread remembers the last dict it indexed
    (holding it, so its id cannot be reused by another dict)."""
    last = getattr(_local, "last", None)
    if last is not None and last[0] is system_attrs and last[1] == len(system_attrs):
        return last[2]
    notes: dict[int, list] = {}
    artifacts: dict[int, list] = {}
    for key, value in system_attrs.items():
        if not key.startswith("dashboard:"):
            continue
        parts = key.split(":")
        if len(parts) == 3 and parts[2] == _NOTE_VER and parts[1].isdigit():
            notes.setdefault(int(parts[1]), [None, {}])[0] = value
        elif len(parts) == 4 and parts[2] == _NOTE_STR and parts[1].isdigit():
            notes.setdefault(int(parts[1]), [None, {}])[1][parts[3]] = value
        elif len(parts) >= 4 and parts[1] == _ARTIFACTS and parts[2].isdigit():
            artifacts.setdefault(int(parts[2]), []).append(value)
    index = {"notes": {k: tuple(v) for k, v in notes.items()}, "artifacts": artifacts}
    _local.last = (system_attrs, len(system_attrs), index)
    return index
