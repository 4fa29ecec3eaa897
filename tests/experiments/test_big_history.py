"""The long-history generator (benchmarks/big_history.py): the trials its bulk inserts write are, to Optuna's own
reader and to History's, the trials the driver writes through History."""
import datetime

import optuna
import pytest

from attnas.experiments.history import COMPLETE, FAILED, PRUNED, RUNNING, History, sqlite_url
from attnas.experiments.optuna_tables import insert_trials
from attnas.search_space import load_space
from benchmarks.big_history import TrialWriter, plan_trials, write_big_history

TIME_FIELDS = ("datetime_start", "datetime_complete")


def written_through_history(history: History, space, trial: optuna.trial.FrozenTrial) -> None:
    """`trial` recorded the way the searcher records a trial: `History.start`, a report per epoch, `finish`."""
    attrs = dict(trial.user_attrs)
    number = history.start(cell=attrs.pop("cell"), cell_hash=attrs.pop("hash"), controller=attrs.pop("controller"),
                           encoding=[int(v) for v in space.encode_vector(space.from_data(trial.user_attrs["cell"]))],
                           encoding_names=space.vector_names(), cardinalities=space.vector_cardinalities(),
                           choices=space.vector_choices(), ray_trial_id=attrs.pop("ray_trial_id"),
                           started_at=attrs.pop("started_at"))
    for epoch, value in trial.intermediate_values.items():
        history.report(number, epoch, value)
    if trial.state == optuna.trial.TrialState.RUNNING:
        history.flush(number)  # a running trial's epochs are written with its next checkpoint; here, now
        return
    closing = attrs.pop("closing")
    for key in ("macs", "params", "latency_ms", "wall_time_s"):
        attrs.pop(key, None)
    history.finish(number, state=closing["state"], values=attrs.pop("values"), reason=attrs.pop("failure", None),
                   value=closing["value"], **attrs)


def comparable(trial: optuna.trial.FrozenTrial) -> dict:
    return {"number": trial.number, "state": trial.state, "value": trial.value, "params": trial.params,
            "distributions": trial.distributions, "user_attrs": trial.user_attrs,
            "system_attrs": trial.system_attrs, "intermediate_values": trial.intermediate_values}


def test_bulk_inserted_trials_read_back_as_trials_written_through_history(tmp_path):
    space = load_space("default")
    writer = TrialWriter(space)
    origin = datetime.datetime(2026, 1, 1)
    made_up = list(plan_trials(space, 200, epochs=4, seed=3, running=2))
    plans = [p for state, count in ((COMPLETE, 4), (PRUNED, 2), (FAILED, 2), (RUNNING, 2))
             for p in [p for p in made_up if p.state == state][:count]]
    assert [p.state for p in plans].count(FAILED) == 2 and plans[-1].state == RUNNING
    trials = [writer.frozen_trial(p, i, started=origin + datetime.timedelta(seconds=i),
                                  reward=p.values["accuracy"] if p.state == COMPLETE else None)
              for i, p in enumerate(plans)]
    by_history = History(sqlite_url(tmp_path / "history.db"), study="by-history")
    for trial in trials:
        written_through_history(by_history, space, trial)
    bulk = History(sqlite_url(tmp_path / "history.db"), study="bulk")
    assert insert_trials(bulk.storage, bulk.study_id, trials[:5])
    assert insert_trials(bulk.storage, bulk.study_id, trials[5:])  # numbered after the trials already there
    expected = [comparable(t) for t in by_history.study.get_trials()]
    assert [comparable(t) for t in bulk.study.get_trials()] == expected  # Optuna's own reader
    assert [t.datetime_start for t in bulk.study.get_trials()] == [t.datetime_start for t in trials]
    assert [t.datetime_complete for t in bulk.study.get_trials()] == [t.datetime_complete for t in trials]
    assert bulk.trials() == by_history.trials()  # History's reader: the same records, states, curves, values
    assert [r.state for r in bulk.trials()] == [p.state for p in plans]
    assert bulk.trials()[4].value == plans[4].curve[-1]  # a pruned trial's value: its last reported one


@pytest.mark.slow
def test_a_generated_run_folder_reads_like_a_search(tmp_path):
    run = write_big_history(tmp_path, trials=300, name="generated")
    history = run.history()
    records = history.trials()
    assert [r.number for r in records] == list(range(300))
    assert sum(r.state == RUNNING for r in records) == 2 and records[-1].state == RUNNING
    assert all(r.problem is None and r.cell and r.hash for r in records)
    complete = [r for r in records if r.state == COMPLETE]
    assert len(complete) > 200 and all(r.value == r.values["accuracy"] for r in complete)
    assert "budget:\n  trials: 300" in history.metadata["experiment"]
