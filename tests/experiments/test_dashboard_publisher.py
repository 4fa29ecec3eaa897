"""The publisher the driver calls: each trial's drawing (an SVG artifact) and note, attnas's figures saved into the
study and refreshed no more often than asked; and the searcher's calls into it."""
import json
import logging
import pickle
import threading

import optuna
import pytest
from optuna.artifacts import get_all_artifact_meta
from optuna_dashboard import get_note
from optuna_dashboard._custom_plot_data import get_plotly_graph_objects

from attnas.experiments.dashboard.background import BackgroundPublisher
from attnas.experiments.dashboard.data import point_from_trial
from attnas.experiments.dashboard.drawing import cell_svg
from attnas.experiments.dashboard.figures import build_figures
from attnas.experiments.dashboard.notes import trial_note
from attnas.experiments.dashboard.publisher import DashboardPublisher
from attnas.experiments.history import COMPLETE, History, sqlite_url
from attnas.search_space import load_space, load_zoo


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def history(tmp_path):
    history = History(sqlite_url(str(tmp_path / "history.db")))
    history.set_metadata(name="unit", controller="random")
    return history


def start(history, spec, controller="random"):
    return history.start(cell=spec.to_dict(), cell_hash=spec.hash, controller=controller)


@pytest.mark.slow
def test_drawings_notes_and_throttled_figures(history, tmp_path):
    clock = Clock()
    publisher = DashboardPublisher(history=history, artifact_dir=tmp_path / "artifacts", min_interval_s=30,
                                   clock=clock)
    cells = [load_zoo("non_local"), load_zoo("double_attention"), load_zoo("squeeze_excitation")]
    numbers = []
    for index, spec in enumerate(cells):
        number = start(history, spec)
        publisher.trial_started(number)
        publisher.trial_started(number)  # twice (a resumed trial): still one drawing
        history.report(number, 1, 0.2 + index / 10)
        history.finish(number, state=COMPLETE, values={"accuracy": 0.3 + index / 10, "macs": 1e6 * (index + 1)},
                       node="10.0.0.1/x")
        publisher.trial_finished(number)
        numbers.append(number)
        clock.now += 10
    assert publisher.errors == []
    storage = history.study._storage
    for number, spec in zip(numbers, cells):
        frozen = history.study.trials[number]
        metas = get_all_artifact_meta(frozen, storage=storage)
        assert [(m.filename, m.mimetype) for m in metas] == [(f"cell-{spec.hash}.svg", "image/svg+xml")]
        with publisher.store.open_reader(metas[0].artifact_id) as reader:
            assert reader.read().decode() == cell_svg(spec, title=f"trial {number}: cell {spec.hash}")
        note = get_note(optuna.trial.Trial(history.study, frozen._trial_id))
        url = f"/artifacts/{history.study._study_id}/{frozen._trial_id}/{metas[0].artifact_id}"
        assert note == trial_note(point_from_trial(frozen), drawing_url=url)
        assert f"![drawing of cell {spec.hash}]({url})" in note
        assert spec.hash in note and "10.0.0.1/x" in note
    # refreshed after the first trial (never refreshed before), not after the next two (within 30 s)
    assert publisher.refreshes == 1 and publisher.pending == 2
    clock.now += 30
    number = start(history, load_zoo("cbam"))
    publisher.trial_started(number)
    history.finish(number, state=COMPLETE, values={"accuracy": 0.9, "macs": 5e6})
    publisher.trial_finished(number)
    assert publisher.refreshes == 2 and publisher.pending == 0
    publisher.finish()
    assert publisher.refreshes == 2  # nothing finished since the last refresh
    saved = get_plotly_graph_objects(storage.get_study_system_attrs(history.study._study_id))
    assert set(saved) == set(build_figures([]))
    best = json.loads(saved["attnas-best-by-trial"])["data"][0]
    assert best["name"] == "random" and best["y"] == [0.3, 0.4, 0.5, 0.9]
    assert get_note(history.study).startswith("## attnas search `unit`")
    assert history.study.metric_names == ["accuracy"]


def test_finish_refreshes_what_finished_since_the_last_refresh(history, tmp_path):
    clock = Clock()
    publisher = DashboardPublisher(history=history, artifact_dir=tmp_path / "a", min_interval_s=30, clock=clock)
    for index in range(2):
        number = start(history, load_zoo("non_local" if index == 0 else "cbam"))
        history.finish(number, state=COMPLETE, values={"accuracy": 0.5 + index / 10, "macs": 1e6})
        publisher.trial_finished(number)
    assert publisher.refreshes == 1
    publisher.finish()
    assert publisher.refreshes == 2
    saved = get_plotly_graph_objects(history.study._storage.get_study_system_attrs(history.study._study_id))
    assert json.loads(saved["attnas-best-by-trial"])["data"][0]["y"] == [0.5, 0.6]
    # a refresh that took 10 s waits 100 s, not 30, before the next one
    publisher.refresh_seconds = 10.0
    clock.now += 50
    number = start(history, load_zoo("double_attention"))
    history.finish(number, state=COMPLETE, values={"accuracy": 0.1, "macs": 1e6})
    publisher.trial_finished(number)
    assert publisher.refreshes == 2
    clock.now += 50
    publisher.trial_finished(number)
    assert publisher.refreshes == 3


def test_a_dashboard_error_never_stops_the_search(history, tmp_path):
    publisher = DashboardPublisher(history=history, artifact_dir=tmp_path / "a")
    publisher.trial_started(99)  # no such trial
    publisher.trial_finished(99)
    assert len(publisher.errors) == 2 and "trial 99" in publisher.errors[0]


class RecordingPublisher:
    def __init__(self):
        self.calls = []

    def drawing_attrs(self, cell_hash):
        return {}

    def trial_started(self, number):
        self.calls.append(("started", number))

    def trial_finished(self, number):
        self.calls.append(("finished", number))


@pytest.mark.slow
def test_the_searcher_calls_the_publisher_and_does_not_pickle_it(history):
    from attnas.controllers import create_controller
    from attnas.controllers.objective import Objective
    from attnas.experiments.searcher import ControllerSearcher

    space = load_space("small")
    publisher = RecordingPublisher()
    searcher = ControllerSearcher(controller=create_controller("random", space=space, seed=0), space=space,
                                  history=history, evaluator={}, epochs=1, trials=2, deadline=None, interrupted=[],
                                  objective=Objective.from_dict(None), publisher=publisher)
    config = searcher.suggest("t1")
    assert publisher.calls == [("started", config["number"])]
    searcher.on_trial_complete("t1", {"accuracy": 0.5, "epoch": 1})
    searcher.on_trial_complete("t1", {"accuracy": 0.5, "epoch": 1})  # Ray may call twice: one note
    assert publisher.calls == [("started", config["number"]), ("finished", config["number"])]
    assert history.trials()[0].state == COMPLETE
    copy = pickle.loads(pickle.dumps(searcher))
    assert copy.publisher is None and copy.history is None


def published(history, publisher, number, spec):
    """The drawing (its filename and SVG) and the note trial `number` holds."""
    frozen = history.study.trials[number]
    [meta] = get_all_artifact_meta(frozen, storage=history.study._storage)
    with publisher.store.open_reader(meta.artifact_id) as reader:
        svg = reader.read().decode()
    return meta.filename, svg, get_note(optuna.trial.Trial(history.study, frozen._trial_id))


def start_named(history, spec):
    """A trial started as the searcher starts it: its drawing's artifact named in its start."""
    return history.start(cell=spec.to_dict(), cell_hash=spec.hash, controller="random",
                         system_attrs=DashboardPublisher.drawing_attrs(spec.hash))


@pytest.mark.slow
def test_the_background_publisher_draws_and_notes_every_trial_even_those_closed_before_it_got_to_them(
        history, tmp_path):
    publisher = DashboardPublisher(history=history, artifact_dir=tmp_path / "a", min_interval_s=30, clock=Clock())
    gate = threading.Event()  # the thread waits until every trial is closed: the driver outran it
    draw = publisher.trial_started
    publisher.trial_started = lambda number: (gate.wait(), draw(number))
    background = BackgroundPublisher(publisher)
    cells = [load_zoo("non_local"), load_zoo("double_attention"), load_zoo("squeeze_excitation")]
    numbers = []
    for index, spec in enumerate(cells):
        number = start_named(history, spec)
        background.trial_started(number)
        history.finish(number, state=COMPLETE, values={"accuracy": 0.3 + index / 10, "macs": 1e6})
        background.trial_finished(number)
        numbers.append(number)
    assert publisher.refreshes == 0 and not publisher.errors
    gate.set()
    background.finish()
    assert not background._thread.is_alive() and publisher.errors == []
    for number, spec in zip(numbers, cells):
        filename, svg, note = published(history, publisher, number, spec)
        assert filename == f"cell-{spec.hash}.svg"
        assert svg == cell_svg(spec, title=f"trial {number}: cell {spec.hash}")
        assert f"![drawing of cell {spec.hash}](" in note and "0." in note
    # three notes queued at once make one refresh, and nothing finished after it: finish adds none
    assert publisher.refreshes == 1 and publisher.pending == 0
    saved = get_plotly_graph_objects(history.study._storage.get_study_system_attrs(history.study._study_id))
    assert json.loads(saved["attnas-best-by-trial"])["data"][0]["y"] == pytest.approx([0.3, 0.4, 0.5])


def test_an_exception_on_the_publishers_thread_is_logged_and_the_next_trials_are_published(
        history, tmp_path, caplog):
    publisher = DashboardPublisher(history=history, artifact_dir=tmp_path / "a")
    write_note = publisher.write_note

    def failing_once(number):
        if number == 0:
            raise RuntimeError("the note server is down")
        write_note(number)

    publisher.write_note = failing_once
    background = BackgroundPublisher(publisher)
    cells = [load_zoo("non_local"), load_zoo("cbam")]
    with caplog.at_level(logging.WARNING, logger="attnas.dashboard"):
        for spec in cells:
            number = start_named(history, spec)
            background.trial_started(number)
            history.finish(number, state=COMPLETE, values={"accuracy": 0.5, "macs": 1e6})
            background.trial_finished(number)
        background.finish()
    assert publisher.errors == ["note of trial 0: RuntimeError: the note server is down"]
    assert "the note server is down" in caplog.text
    assert get_note(optuna.trial.Trial(history.study, history.study.trials[0]._trial_id)) == ""
    _, _, note = published(history, publisher, 1, cells[1])
    assert cells[1].hash in note
    assert published(history, publisher, 0, cells[0])[0] == f"cell-{cells[0].hash}.svg"
    assert [r.state for r in history.trials()] == [COMPLETE, COMPLETE]
