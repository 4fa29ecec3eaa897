"""`attnas status`, `list` and `resume` on a history of 10,000 trials read it by query (counts, the ranked values,
the few whole records they show) and say exactly what reading every trial says (the slow path below, how they
read the history before)."""
import io
import json
import shutil
import sqlite3

import pytest
from rich.console import Console

from attnas.controllers import Observation, get_controller
from attnas.controllers.objective import Objective
from attnas.experiments.cli import main
from attnas.experiments.config import load_experiment
from attnas.experiments.dashboard.data import REFERENCES_ATTR, load_references
from attnas.experiments.dashboard.synthetic import write_synthetic_history
from attnas.experiments.driver import build_controller
from attnas.experiments.history import COMPLETE, FAILED, PRUNED, RUNNING, History, best_of, counted, to_rerun
from attnas.experiments.run_folder import open_run
from attnas.experiments.status import FAILURES_SHOWN, RunStatus, _trial_row, run_status, with_references
from attnas.experiments.summary import reference_name
from attnas.search_space import SearchSpace
from benchmarks.big_history import write_big_history
from tests.experiments.test_security import tamper


def set_attr(run_path, number: int, key: str, value_json: str) -> None:
    """Give trial `number` the user attribute `key` (raw JSON text) in the run's SQLite history."""
    with sqlite3.connect(run_path / "history.db") as connection:
        (trial_id,) = connection.execute("SELECT trial_id FROM trials WHERE number = ?", (number,)).fetchone()
        connection.execute("INSERT INTO trial_user_attributes (trial_id, key, value_json) VALUES (?, ?, ?) "
                           "ON CONFLICT (trial_id, key) DO UPDATE SET value_json = excluded.value_json",
                           (trial_id, key, value_json))


# ------------------------------------------------------------------------- the slow path: every trial read
def slow_status(run, history: History, *, top: int) -> RunStatus:
    records = history.trials()
    objective = history.objective
    counts = {s: sum(1 for r in records if r.state == s) for s in (COMPLETE, PRUNED, FAILED, RUNNING)}
    references = load_references(history)
    by_hash = {r.hash: r.name for r in references if r.hash}
    rows = with_references([_trial_row(record, by_hash.get(record.hash) or reference_name(record.hash))
                            for record in best_of(records, top, objective)], references)
    failures = [{"trial": r.number, "reason": r.reason} for r in records if r.state == FAILED][-FAILURES_SHOWN:]
    return RunStatus(run=run.name, path=str(run.path), storage=run.storage, counts=counts, top=top, rows=rows,
                     failures=failures, metric=objective.metric if objective.tradeoff is None else "reward",
                     problems=[r.problem for r in records if r.problem])


def slow_run_line(name: str, history: History, budget: str = "") -> str:
    records = history.trials()
    finished = [r for r in records if counted(r)]
    counts = [f"{sum(1 for r in finished if r.state == s)} {s}" for s in (COMPLETE, PRUNED, FAILED)]
    counts.append(f"{sum(1 for r in records if r.state == RUNNING)} {RUNNING}")
    unfinished = sum(1 for r in to_rerun(records) if r.state != RUNNING)
    if unfinished:
        counts.append(f"{unfinished} interrupted")
    best = best_of(records, 1, history.objective)
    shown = f"best {history.objective.metric} {best[0].value:.4f} (trial {best[0].number}, {best[0].hash})"
    return f"{name}: {len(finished)}{budget} trials ({', '.join(counts)}); {shown}"


def slow_controller(config, space, records):
    """The controller as resume rebuilt it before: every observation, then the pending trials through a state
    dict."""
    objective = Objective.from_dict(config.objective)
    readable = [r for r in records if r.problem is None]
    interrupted = to_rerun(readable)
    finished = [Observation(trial_id=r.attrs.get("ray_trial_id", f"history-{r.number}"),
                            cell=space.from_data(r.cell), values=dict(r.values), state=r.state)
                for r in readable if counted(r)]
    controller = get_controller(config.controller_name).from_history(
        space, finished, seed=config.seed, objective=objective, **dict(config.controller_settings))
    state = controller.state_dict()
    state["pending"] = [{"trial_id": r.attrs.get("ray_trial_id", f"history-{r.number}"), "cell": r.cell}
                        for r in interrupted]
    controller.load_state_dict(state)
    return controller, interrupted


# ---------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    """10,000 trials, two left running; three trials closed as interrupted by a stopped driver, one of them
    re-run since; one start a killed driver left half-written."""
    run = write_big_history(tmp_path_factory.mktemp("runs"), trials=10_000, name="long")
    history = run.history()
    numbers = {s: [r.number for r in history.trials([s], keys=(), curves=False)] for s in (FAILED, COMPLETE)}
    for number in numbers[FAILED][:3]:
        set_attr(run.path, number, "interrupted", "true")
    set_attr(run.path, numbers[FAILED][3], "half_written", "true")
    set_attr(run.path, numbers[COMPLETE][-1], "rerun_of", json.dumps(numbers[FAILED][0]))
    references = {"none": {"accuracy": 0.35, "macs": 2.0e8, "params": 1.0e5},
                  "non_local": {"accuracy": 0.6, "macs": 2.1e8, "params": 1.2e5}}
    history.set_metadata(**{REFERENCES_ATTR: references})
    return run


class WholeReads:
    """Counts `History.trials` calls that read every trial whole (no state, number or key filter)."""

    def __init__(self, monkeypatch):
        self.count = 0
        original = History.trials

        def trials(history, states=None, **kwargs):
            if states is None and kwargs.get("numbers") is None and kwargs.get("keys") is None:
                self.count += 1
            return original(history, states, **kwargs)

        monkeypatch.setattr(History, "trials", trials)


# ---------------------------------------------------------------------------------------------------- tests
@pytest.mark.slow
def test_status_on_a_long_history_says_what_reading_every_trial_says(long_run, monkeypatch, capsys):
    history = long_run.history()
    expected = slow_status(long_run, history, top=10)
    whole = WholeReads(monkeypatch)
    status = run_status(long_run, history, top=10)
    assert whole.count == 0
    assert status == expected
    assert status.counts[RUNNING] == 2 and sum(status.counts.values()) == 10_000
    assert [row.reference for row in status.rows if row.trial is None] == ["non_local", "none"]
    assert len(status.failures) == FAILURES_SHOWN
    assert main(["status", str(long_run.path), "--json", "--top", "25"]) == 0
    assert whole.count == 0
    assert json.loads(capsys.readouterr().out) == json.loads(slow_status(long_run, history, top=25).to_json())


@pytest.mark.slow
def test_list_and_the_budget_of_resume_on_a_long_history(long_run, monkeypatch, capsys):
    history = long_run.history()
    expected = slow_run_line("long", history, "/10000")
    records = history.trials()
    whole = WholeReads(monkeypatch)
    assert main(["list", str(long_run.path.parent)]) == 0
    assert capsys.readouterr().out == expected + "\n"
    assert "(3 interrupted)" not in expected and "2 interrupted" in expected  # one of the three was re-run
    progress = history.progress()
    assert progress.done == sum(1 for r in records if counted(r)) == 10_000 - 2 - 3 - 1
    assert [r.number for r in progress.rerun] == [r.number for r in to_rerun(records)]
    assert progress.rerun == to_rerun(records)
    assert whole.count == 0


@pytest.mark.slow
def test_resume_rebuilds_the_controller_the_slow_path_built(long_run, tmp_path, monkeypatch, capsys):
    config = load_experiment(str(long_run.experiment_file))
    space = SearchSpace.from_yaml(str(long_run.space_file))
    records = long_run.history().trials()
    controller, interrupted = build_controller(config, space, records)
    expected, expected_interrupted = slow_controller(config, space, records)
    assert controller.name == "evolution" and len(controller.observations) == 10_000 - 6
    assert controller.state_dict() == expected.state_dict()
    assert [r.number for r in interrupted] == [r.number for r in expected_interrupted]
    assert controller.propose("next") == expected.propose("next")
    # a spent budget: `attnas resume` says so after reading only counts and the flagged trials
    spent = tmp_path / "spent"
    shutil.copytree(long_run.path, spent)
    history = open_run(spent).history()
    for record in history.progress().rerun:
        if record.state == RUNNING:
            history.finish(record.number, state=FAILED, reason="closed for this test")
        else:
            set_attr(spent, record.number, "interrupted", "false")
    done = sum(1 for r in history.trials() if counted(r))
    assert done == 10_000 - 2 and not to_rerun(history.trials())  # the half-written start, the re-run trial
    whole = WholeReads(monkeypatch)
    assert main(["resume", str(spent), "--trials", "100", "--quiet"]) == 0
    assert f"its budget of 100 trials is spent ({done} finished)" in capsys.readouterr().err
    assert whole.count == 0


def test_status_and_list_on_a_small_history_are_unchanged(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    run = write_synthetic_history(tmp_path / "runs", name="small", trials=14)
    history = run.history()
    complete = sorted(history.trials([COMPLETE]), key=lambda r: -r.value)
    tamper(run.path, complete[1].number, "cell", "{not json")  # a damaged record among the best is named
    tamper(run.path, complete[2].number, "values", '"a string"')
    # damaged records are named when the ranking reaches them: never with fewer rows than the slow path
    short = run_status(run, history, top=1)
    assert short.rows == slow_status(run, history, top=1).rows and len(short.problems) == 1
    for top in (3, 10):
        expected = slow_status(run, history, top=top)
        assert run_status(run, history, top=top) == expected
        assert main(["status", str(run.path), "--top", str(top)]) == 0
        shown = capsys.readouterr().out
        console = Console(file=io.StringIO(), width=100)
        expected.print_table(console)
        assert shown == console.file.getvalue()
        assert f"trial {complete[1].number}: damaged record: field 'cell'" in shown
    assert main(["list", str(run.path.parent)]) == 0
    assert capsys.readouterr().out == slow_run_line("small", history) + "\n"
