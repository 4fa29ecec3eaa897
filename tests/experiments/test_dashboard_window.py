"""The dashboard on a long history: its trial list is the best trials and the latest ones, read by the fast reader
(experiments/dashboard/trial_window.py), and grows only at its end while a search adds trials; `--trials` chooses
its size. Checked through the server's own API, as the browser reads it, against Optuna's public reader."""
import json
import math

import optuna
import pytest

from attnas.experiments.cli import main
from attnas.experiments.dashboard.server import DashboardServer
from attnas.experiments.dashboard.synthetic import write_synthetic_history
from attnas.experiments.dashboard.trial_window import TrialWindow
from attnas.experiments.history import COMPLETE
from attnas.experiments.optuna_tables import frozen_trials
from benchmarks.big_history import write_big_history
from tests.experiments.test_dashboard_server import get, start_cli_dashboard

TRIALS, LIMIT = 300, 50


@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    """A long history the tests only read."""
    root = tmp_path_factory.mktemp("runs")
    yield write_big_history(root, trials=TRIALS, name="long", running=2)


@pytest.fixture
def growing_run(tmp_path_factory):
    """A long history a test adds trials to."""
    root = tmp_path_factory.mktemp("runs")
    yield write_big_history(root, trials=TRIALS, name="growing", running=2)


def optunas_trials(run):
    history = run.history(create=False)
    return history, history.storage.get_all_trials(history.study_id, deepcopy=False)


def test_the_fast_reader_returns_optunas_trials(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    # notes, drawings, failed and pruned trials: what the driver and publisher write
    run = write_synthetic_history(root, name="synthetic", trials=12, controllers=("random", "evolution"))
    history, trials = optunas_trials(run)
    assert frozen_trials(history.storage, history.study_id) == trials
    assert [t.system_attrs for t in frozen_trials(history.storage, history.study_id)] == \
        [t.system_attrs for t in trials]
    chosen = frozen_trials(history.storage, history.study_id, numbers=[1, 3], number_above=9)
    assert chosen == [trials[n] for n in (1, 3, 10, 11)]
    assert frozen_trials(history.storage, history.study_id, numbers=[]) == []


def expected_window(trials, limit):
    first_latest = len(trials) - (limit - limit // 10)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE and math.isfinite(t.value)]
    best = sorted(complete, key=lambda t: (-t.value, t.number))[:limit // 10]
    return sorted(t.number for t in best if t.number < first_latest) + list(range(first_latest, len(trials)))


def test_a_long_history_shows_the_best_and_the_latest_and_grows_at_its_end(growing_run):
    history, trials = optunas_trials(growing_run)
    assert len(trials) == TRIALS
    with DashboardServer(growing_run.path, port=0, trials=LIMIT).start() as server:
        host, port = server.address
        url = f"http://{host}:{port}/api/studies/{history.study_id}"
        detail = json.loads(get(url)[1])
        shown = [t["number"] for t in detail["trials"]]
        assert shown == expected_window(trials, LIMIT)
        assert len(shown) <= LIMIT and shown[-1] == TRIALS - 1
        best = max((t for t in trials if t.state == optuna.trial.TrialState.COMPLETE), key=lambda t: t.value)
        assert [t["number"] for t in detail["best_trials"]] == [best.number]
        assert server.shown == (f"the trial list shows {len(shown)} of the run's {TRIALS} trials: the "
                                f"{len(shown) - LIMIT + LIMIT // 10} best and the latest {LIMIT - LIMIT // 10}, "
                                f"then every new one (--trials all shows every trial)")
        # a search goes on: a running trial of the window finishes, a new trial starts and finishes
        running = [t.number for t in trials if t.state == optuna.trial.TrialState.RUNNING]
        assert running and all(n in shown for n in running)
        writer = growing_run.history()
        writer.finish(running[0], state=COMPLETE, values={"accuracy": 0.5, "macs": 1e6})
        new = writer.start(cell=trials[0].user_attrs["cell"], cell_hash=trials[0].user_attrs["hash"],
                           controller="evolution")
        writer.finish(new, state=COMPLETE, values={"accuracy": 0.25, "macs": 1e6})
        window = server.storage
        now = window.get_all_trials(history.study_id, deepcopy=False)
        assert [t.number for t in now] == shown + [new]  # the list only grew, at its end
        states = {t.number: t.state for t in now}
        assert states[running[0]] == optuna.trial.TrialState.COMPLETE and states[new] == states[running[0]]
        again = window.get_all_trials(history.study_id, deepcopy=False)
        assert [t.number for t in again] == [t.number for t in now]
        everything = writer.storage.get_all_trials(history.study_id, deepcopy=False)
        assert again == [t for t in everything if t.number in {*shown, new}]  # the kept trials are up to date


def test_every_trial_when_asked_or_when_the_history_is_short(long_run):
    history, trials = optunas_trials(long_run)
    for limit in (None, len(trials)):
        window = TrialWindow(history.storage, limit)
        assert window.get_all_trials(history.study_id) == trials
        assert window.window(history.study_id).shown == len(trials)


def test_optunas_own_reader_when_the_fast_one_does_not_apply(long_run, monkeypatch):
    from attnas.experiments.dashboard import trial_window

    history, trials = optunas_trials(long_run)
    fast = TrialWindow(history.storage, LIMIT).get_all_trials(history.study_id)
    monkeypatch.setattr(trial_window, "frozen_trials", lambda *a, **k: None)
    monkeypatch.setattr(trial_window, "best_numbers", lambda *a, **k: None)
    monkeypatch.setattr(trial_window, "count_states", lambda *a, **k: None)
    slow = TrialWindow(history.storage, LIMIT)
    assert slow.get_all_trials(history.study_id) == fast
    assert [t.number for t in fast] == expected_window(trials, LIMIT)


@pytest.mark.slow
def test_cli_dashboard_says_what_the_trial_list_leaves_out(long_run, capsys):
    process, host, port = start_cli_dashboard(long_run.path, "--trials", str(LIMIT))
    try:
        line = process.stdout.readline()
        assert line.startswith(f"the trial list shows {len(expected_window(optunas_trials(long_run)[1], LIMIT))} "
                               f"of the run's {TRIALS} trials"), line
    finally:
        process.terminate()
        process.wait(timeout=30)
    for bad, expected in (("0", "expected a whole number >= 1"), ("some", "expected a whole number")):
        with pytest.raises(SystemExit) as exit_:
            main(["dashboard", str(long_run.path), "--trials", bad])
        assert exit_.value.code == 2 and expected in capsys.readouterr().err
