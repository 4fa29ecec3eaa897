"""The dashboard fed by a real search: the driver's hook leaves a drawing and a note on every trial and attnas's
figures in the study; Ray Tune writes the learning curves where TensorBoard reads them; `attnas references` scores
the reference cells into the study without adding trials."""
import glob
import json
import shutil
import struct
from pathlib import Path

import optuna
import pytest
from optuna_dashboard import get_note
from optuna_dashboard._custom_plot_data import get_plotly_graph_objects

from attnas.experiments.cli import main
from attnas.experiments.dashboard.figures import FIGURE_TITLES
from attnas.experiments.dashboard.publisher import has_drawing
from attnas.experiments.history import COMPLETE
from attnas.experiments.run_folder import open_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def searched_run(finished_tiny_run, tmp_path_factory):
    """A copy of the session's tiny search (`attnas search`, 2 trials: conftest.py); `attnas references` writes into
    it below."""
    return open_run(shutil.copytree(finished_tiny_run, tmp_path_factory.mktemp("dashboard-search") / "dash",
                                    symlinks=True))


def scalars(event_file: str, tag: str) -> list[tuple[int, float]]:
    """(step, value) of one scalar in a TensorBoard event file (TFRecord framing: length, crc, event, crc)."""
    from tensorboardX.proto import event_pb2

    data, offset, found = Path(event_file).read_bytes(), 0, []
    while offset < len(data):
        (length,) = struct.unpack("<Q", data[offset:offset + 8])
        event = event_pb2.Event()
        event.ParseFromString(data[offset + 12:offset + 12 + length])
        offset += 12 + length + 4
        found += [(event.step, v.simple_value) for v in event.summary.value if v.tag == tag]
    return found


def test_every_trial_has_its_drawing_and_note_and_the_study_its_figures(searched_run):
    history = searched_run.history()
    trials = history.study.get_trials(deepcopy=False)
    assert len(trials) == 2
    for trial in trials:
        assert has_drawing(trial)
        note = get_note(optuna.trial.Trial(history.study, trial._trial_id))
        assert trial.user_attrs["hash"] in note and trial.user_attrs["node"] in note
    attrs = history.study._storage.get_study_system_attrs(history.study._study_id)
    figures = get_plotly_graph_objects(attrs)
    assert set(figures) == set(FIGURE_TITLES)
    best = json.loads(figures["attnas-best-by-trial"])["data"][0]
    complete = [t.value for t in trials if t.state.name == "COMPLETE"]
    assert max(v for v in best["y"] if v is not None) == max(complete)  # refreshed after the last trial


def test_ray_writes_each_trials_learning_curve_for_tensorboard(searched_run):
    for record in searched_run.history().trials([COMPLETE]):
        [event_file] = glob.glob(str(searched_run.ray_dir / "tune-*" / f"trial-{record.number}-*" / "events.out.*"))
        curve = scalars(event_file, "ray/tune/accuracy")
        assert [step for step, _ in curve] == list(range(1, len(record.curve) + 1))
        assert [value for _, value in curve] == pytest.approx(record.curve, abs=1e-6)


def test_references_are_scored_into_the_study_not_into_the_trials(searched_run, capsys):
    history = searched_run.history()
    before = [(r.number, r.hash, r.value) for r in history.trials()]
    assert main(["references", str(searched_run.path), "--cells", "none,non_local"]) == 0
    references = history.metadata["references"]
    assert set(references) == {"none", "non_local"}
    assert references["non_local"]["macs"] > references["none"]["macs"] > 0
    assert all(0.0 <= r["accuracy"] <= 1.0 and len(r["curve"]) == 2 for r in references.values())
    assert references["none"]["hash"] is None and len(references["non_local"]["hash"]) == 16
    assert [(r.number, r.hash, r.value) for r in searched_run.history().trials()] == before
    attrs = history.study._storage.get_study_system_attrs(history.study._study_id)
    stars = json.loads(get_plotly_graph_objects(attrs)["attnas-accuracy-vs-macs"])["data"][0]  # drawn first
    assert stars["name"] == "reference cells" and stars["text"] == ["backbone alone", "non-local"]
    assert "non_local: accuracy" in capsys.readouterr().out
