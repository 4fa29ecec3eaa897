"""The history store: what a trial leaves in the Optuna study, read back as the driver and CLI need it."""
import numpy as np
import optuna
import pytest

from attnas.experiments.history import COMPLETE, FAILED, PRUNED, RUNNING, History, sqlite_url
from attnas.search_space import load_space, load_zoo
from attnas.search_space.errors import AttnasError

SPACE = load_space("small")


def start(history, cell, **attrs):
    return history.start(cell=cell.to_dict(), cell_hash=cell.hash, controller="random",
                         encoding=list(SPACE.encode_vector(cell)), encoding_names=SPACE.vector_names(),
                         cardinalities=SPACE.vector_cardinalities(), **attrs)


@pytest.fixture
def history(tmp_path):
    return History(sqlite_url(str(tmp_path / "history.db")))


def test_a_trial_round_trips(history, tmp_path):
    cell = load_zoo("double_attention")
    number = start(history, cell, ray_trial_id="abc_00000")
    for epoch, accuracy in enumerate([0.5, 0.6, 0.7], start=1):
        history.report(number, epoch, accuracy)
    history.report(number, 3, 0.99)  # a repeated epoch is ignored
    history.finish(number, state=COMPLETE, values={"accuracy": 0.7, "macs": 1.5e6, "params": 1200.0,
                                                   "latency_ms": 2.5, "wall_time_s": 10.0}, node="node-1")
    reopened = History(sqlite_url(str(tmp_path / "history.db")), create=False)
    [record] = reopened.trials()
    assert record.number == number and record.state == COMPLETE
    assert record.hash == cell.hash and record.cell == cell.to_dict()
    assert record.curve == [0.5, 0.6, 0.7]
    assert record.value == 0.7 and record.values["macs"] == 1.5e6
    assert record.attrs["node"] == "node-1" and record.attrs["ray_trial_id"] == "abc_00000"
    frozen = reopened.study.trials[0]
    assert frozen.value == 0.7
    assert [frozen.params[n] for n in SPACE.vector_names()] == [int(v) for v in SPACE.encode_vector(cell)]


def test_states_and_reasons(history):
    rng = np.random.default_rng(0)
    cells = [SPACE.sample(rng) for _ in range(4)]
    numbers = [start(history, c) for c in cells]
    history.finish(numbers[0], state=COMPLETE, values={"accuracy": 0.4})
    history.report(numbers[1], 1, 0.2)
    history.finish(numbers[1], state=PRUNED, values={"accuracy": 0.2})
    history.finish(numbers[2], state=FAILED, reason="loss became nan at epoch 2")
    states = {r.number: r.state for r in history.trials()}
    assert states == {numbers[0]: COMPLETE, numbers[1]: PRUNED, numbers[2]: FAILED, numbers[3]: RUNNING}
    assert history.trial(numbers[2]).reason == "loss became nan at epoch 2"
    assert [r.number for r in history.trials([RUNNING])] == [numbers[3]]
    assert [r.number for r in history.best(5)] == [numbers[0]]


def test_complete_without_a_finite_metric_is_recorded_as_failed(history):
    number = start(history, load_zoo("non_local"))
    history.finish(number, state=COMPLETE, values={"accuracy": float("nan")})
    record = history.trial(number)
    assert record.state == FAILED and "no finite accuracy" in record.reason


def test_finish_twice_keeps_the_first(history):
    number = start(history, load_zoo("non_local"))
    history.finish(number, state=COMPLETE, values={"accuracy": 0.5})
    history.finish(number, state=COMPLETE, values={"accuracy": 0.9})
    assert history.trial(number).value == 0.5 and history.study.trials[0].value == 0.5


def test_a_new_driver_can_finish_a_trial_left_running(tmp_path):
    url = sqlite_url(str(tmp_path / "history.db"))
    first = History(url)
    number = start(first, load_zoo("double_attention"))
    first.report(number, 1, 0.3)
    first.flush(number)  # an epoch's value is written with the trial's next write; here there is none
    second = History(url, create=False)
    second.report(number, 2, 0.4)
    second.finish(number, state=COMPLETE, values={"accuracy": 0.45})
    record = History(url, create=False).trial(number)
    assert record.state == COMPLETE and record.curve == [0.3, 0.4]


def test_metadata(history):
    history.set_metadata(experiment="name: x\n", space="max_nodes: 1\n")
    assert history.metadata["experiment"] == "name: x\n"


def test_unreadable_storage_is_one_line(tmp_path):
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not a database" * 100)
    with pytest.raises(AttnasError, match=r"corrupt.db: cannot open the history storage") as error:
        History(sqlite_url(str(corrupt)))
    assert "\n" not in str(error.value)


def test_missing_study_is_one_line(tmp_path):
    optuna.create_study(storage=sqlite_url(str(tmp_path / "other.db")), study_name="other")
    with pytest.raises(AttnasError, match="holds no attnas history"):
        History(sqlite_url(str(tmp_path / "other.db")), create=False)


def test_bad_url_and_password_redaction():
    with pytest.raises(AttnasError) as error:
        History("postgresql://alice:secret@127.0.0.1:1/nodb")
    assert "secret" not in str(error.value) and "alice:***@" in str(error.value)


def test_history_on_a_real_postgresql_server(postgres_url):
    history = History(postgres_url)
    cell = load_zoo("double_attention")
    number = start(history, cell)
    history.report(number, 1, 0.25)
    history.finish(number, state=COMPLETE, values={"accuracy": 0.3, "macs": 10.0})
    [record] = History(postgres_url, create=False).trials()
    assert record.state == COMPLETE and record.value == 0.3 and record.curve == [0.25]
    assert record.cell == cell.to_dict()


def test_fast_reader_gives_what_optunas_reader_gives(history, monkeypatch):
    rng = np.random.default_rng(3)
    for state in (COMPLETE, PRUNED, FAILED, None):
        number = start(history, SPACE.sample(rng), node="n")
        history.report(number, 1, 0.25)
        if state is not None:
            history.finish(number, state=state, values={"accuracy": 0.5, "macs": 3.0}, reason="why")
    fast = history.trials()
    import attnas.experiments.optuna_tables as module

    monkeypatch.setattr(module, "supported", lambda: False)
    assert history.trials() == fast
    assert [r.state for r in fast] == [COMPLETE, PRUNED, FAILED, RUNNING]


# ------------------------------------------------------------------------------------------ batched writes
def writes_of(history, calls) -> int:
    """How many write transactions (commits that wrote) `calls()` makes."""
    from benchmarks.driver_overhead import WriteCounter

    with WriteCounter().counting() as counter:
        calls()
    return counter.writes["driver"] + counter.writes["other"]


def test_a_trial_is_one_write_to_start_one_per_checkpoint_and_one_to_close(history):
    rng = np.random.default_rng(5)
    numbers = []
    assert writes_of(history, lambda: numbers.append(start(history, SPACE.sample(rng), ray_trial_id="r"))) == 1
    [number] = numbers
    assert writes_of(history, lambda: history.report(number, 1, 0.3)) == 0
    assert writes_of(history, lambda: history.set_attrs(number, checkpoint="ray/t/checkpoint_0")) == 1
    assert history.trial(number).curve == [0.3], "the epoch and its checkpoint are written together"

    def close():
        history.report(number, 2, 0.4)
        history.hold_attrs(number, checkpoint="ray/t/checkpoint_1")
        history.finish(number, state=COMPLETE, values={"accuracy": 0.4, "macs": 2.0, "params": 3.0}, node="n")

    assert writes_of(history, close) == 1
    assert writes_of(history, lambda: history.finish(number, state=FAILED, reason="again")) == 0
    record = history.trial(number)
    assert (record.state, record.value, record.curve) == (COMPLETE, 0.4, [0.3, 0.4])
    assert record.attrs["checkpoint"] == "ray/t/checkpoint_1" and record.attrs["node"] == "n"


def driven(history, cells) -> None:
    """The calls a driver makes for four trials: complete, pruned, failed, and one still running."""
    numbers = [start(history, cell, ray_trial_id=f"r{i}") for i, cell in enumerate(cells)]
    for number in numbers:
        history.report(number, 1, 0.25)
        history.set_attrs(number, checkpoint=f"ray/{number}/checkpoint_0")
        history.report(number, 1, 0.99)  # a repeated epoch is ignored
    history.report(numbers[0], 2, 0.5)
    history.hold_attrs(numbers[0], checkpoint="ray/0/checkpoint_1")
    history.finish(numbers[0], state=COMPLETE, values={"accuracy": 0.5, "macs": 7.0, "latency_ms": 1.5},
                   value=0.45, node="n", epochs_done=2)
    history.report(numbers[1], 2, 0.3)
    history.finish(numbers[1], state=PRUNED, values={"accuracy": 0.3}, node="n")
    history.finish(numbers[2], state=FAILED, reason="loss became nan", values={"accuracy": 0.1})
    history.finish(numbers[2], state=COMPLETE, values={"accuracy": 0.9})  # a second close changes nothing
    rerun = start(history, cells[3], curve=[0.2, float("nan")], rerun_of=numbers[2])
    history.report(rerun, 3, 0.6)
    history.flush(rerun)


def test_batched_writes_leave_what_optunas_public_api_leaves(tmp_path, monkeypatch):
    """The same driver calls, written in one transaction each and by Optuna's public API one commit at a time (the
    path taken with an Optuna version optuna_tables does not know), leave the same study."""
    import attnas.experiments.optuna_tables as tables

    cells = [SPACE.sample(np.random.default_rng(11)) for _ in range(4)]
    batched = History(sqlite_url(str(tmp_path / "batched.db")))
    driven(batched, cells)
    monkeypatch.setattr(tables, "supported", lambda: False)
    public = History(sqlite_url(str(tmp_path / "public.db")))
    driven(public, cells)

    def fields(history):
        return [(t.number, t.state, t.value, t.params, t.distributions, t.user_attrs, t.intermediate_values)
                for t in history.study.get_trials()]

    assert fields(batched) == fields(public)
    monkeypatch.undo()
    records = batched.trials()
    assert [r.state for r in records] == [COMPLETE, PRUNED, FAILED, RUNNING, RUNNING]
    assert [r.curve for r in records] == [[0.25, 0.5], [0.25, 0.3], [0.25], [0.25], [0.2, 0.6]]
    assert [r.value for r in records[:3]] == [0.45, 0.3, None]  # complete: the reward; pruned: its last metric
    assert records[0].attrs["checkpoint"] == "ray/0/checkpoint_1" and records[0].values["latency_ms"] == 1.5
    assert records[2].reason == "loss became nan" and records[4].attrs["rerun_of"] == records[2].number

def filled(history) -> History:
    """Nine trials: complete (two tied, one over 0.9), pruned, failed, one closed as interrupted and one re-run of
    it, one left running."""
    rng = np.random.default_rng(5)
    plan = [(COMPLETE, 0.6, {}), (PRUNED, 0.4, {}), (COMPLETE, 0.8, {}), (FAILED, None, {"interrupted": True}),
            (COMPLETE, 0.8, {}), (FAILED, None, {}), (COMPLETE, 0.95, {"rerun_of": 3}), (COMPLETE, 0.7, {}),
            (None, None, {})]
    for state, accuracy, attrs in plan:
        number = start(history, SPACE.sample(rng), node="n")
        history.report(number, 1, 0.25)
        if state is not None:
            history.finish(number, state=state, values={} if accuracy is None else {"accuracy": accuracy},
                           reason="why" if state == FAILED else None, **attrs)
    return history


def read_everything(history):
    return (history.trials([COMPLETE, RUNNING]), history.trials(numbers=[8, 2, 5, 99]),
            history.trials(keys=("values", "interrupted"), curves=False), history.counts(), history.progress(),
            history.ranked(3), history.best(10), history.trial(4))


def test_reads_by_query_give_what_optunas_reader_gives(history, monkeypatch):
    filled(history)
    fast = read_everything(history)
    import attnas.experiments.optuna_tables as module

    monkeypatch.setattr(module, "supported", lambda: False)
    assert read_everything(history) == fast
    complete_or_running, chosen, narrow, counts, progress, (best, damaged), best_all, fourth = fast
    assert [r.number for r in complete_or_running] == [0, 2, 4, 6, 7, 8]
    assert [r.number for r in chosen] == [2, 5, 8]
    assert all(set(r.attrs) <= {"values", "interrupted"} and r.curve == [] for r in narrow)
    assert counts == {COMPLETE: 5, PRUNED: 1, FAILED: 2, RUNNING: 1}
    assert progress.finished == {COMPLETE: 5, PRUNED: 1, FAILED: 1} and progress.done == 7
    assert [r.number for r in progress.rerun] == [8]  # trial 3 was re-run as trial 6
    assert [r.number for r in best] == [6, 2, 4] and damaged == []  # ties: the earlier trial first
    assert [r.number for r in best_all] == [6, 2, 4, 7, 0] and fourth.number == 4


def test_reads_by_query_on_a_real_postgresql_server(postgres_url):
    history = filled(History(postgres_url))
    assert history.counts() == {COMPLETE: 5, PRUNED: 1, FAILED: 2, RUNNING: 1}
    assert history.progress().done == 7 and [r.number for r in history.progress().rerun] == [8]
    assert [r.number for r in history.best(3)] == [6, 2, 4]
    assert [r.number for r in history.trials(numbers=[1, 8])] == [1, 8]


def test_a_history_opened_while_another_process_creates_its_tables(tmp_path, monkeypatch):
    """`attnas status` (or a second search) opening a new SQLite history while a search is creating its tables: the
    loser of that race sees SQLite's "table ... already exists" and opens the winner's tables; other errors are
    not retried."""
    import sqlite3

    import sqlalchemy

    real = optuna.storages.RDBStorage
    calls = []

    class Racing(real):
        def __init__(self, url, **kwargs):
            calls.append(url)
            super().__init__(url, **kwargs)  # the other process wins the race and makes the tables...
            if len(calls) == 1:
                lost = sqlite3.OperationalError("table alembic_version already exists")
                raise sqlalchemy.exc.OperationalError("CREATE TABLE alembic_version", {}, lost)

    monkeypatch.setattr(optuna.storages, "RDBStorage", Racing)
    url = sqlite_url(str(tmp_path / "history.db"))
    history = History(url, study="racing")
    assert len(calls) == 2 and history.trials() == []

    class Broken(real):
        def __init__(self, url, **kwargs):
            calls.append(url)
            raise sqlalchemy.exc.OperationalError("SELECT 1", {}, sqlite3.OperationalError("disk I/O error"))

    monkeypatch.setattr(optuna.storages, "RDBStorage", Broken)
    calls.clear()
    with pytest.raises(Exception, match="disk I/O error"):
        History(sqlite_url(str(tmp_path / "other.db")), study="broken")
    assert len(calls) == 1
