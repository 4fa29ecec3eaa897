"""`controller: differentiable` through the CLI: search epochs and the re-trained derived cell in the history, the
architecture weights as trial and study attributes and as a dashboard figure; its settings validated."""
import pytest

from attnas.experiments.cli import main
from attnas.experiments.config import load_experiment
from attnas.experiments.differentiable import FIGURE_ID, WEIGHTS_ATTR
from attnas.experiments.history import COMPLETE, PRUNED
from attnas.experiments.run_folder import open_run
from attnas.search_space.schema import ConfigError
from attnas.search_space import CellSpec, load_space
from tests.experiments.tiny import write_tiny


@pytest.mark.slow
def test_cli_differentiable_search_records_epochs_and_the_retrained_cell(tmp_path, capsys, ray_module):
    path = write_tiny(tmp_path, name="tinyd", controller={"name": "differentiable", "epochs": 2, "arch_lr": 0.05},
                      concurrency=1)
    assert main(["search", path, "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    assert "best cell" in capsys.readouterr().out
    run = open_run(tmp_path / "runs" / "tinyd")
    records = run.history().trials()
    assert [(r.state, r.attrs["phase"]) for r in records] == [(PRUNED, "search"), (PRUNED, "search"),
                                                              (COMPLETE, "retrain")]
    assert all(r.attrs["controller"] == "differentiable" for r in records)
    assert [r.attrs["search_epoch"] for r in records[:2]] == [1, 2]
    space = load_space("small")
    for record in records:
        cell = CellSpec.from_dict(record.cell)
        space.check(cell)
        assert record.hash == cell.hash
        (weights,) = record.attrs[WEIGHTS_ATTR]  # one supernet cell: the tiny config inserts one
        assert len(weights["slots"]) == space.max_nodes and len(weights["depth"]) == space.max_nodes
        assert abs(sum(weights["slots"][0]["ops"]) - 1.0) < 1e-4
        assert 0.0 <= record.values.get("derived_top1", record.value) <= 1.0
    final = records[-1]
    assert final.cell == records[1].cell  # the last epoch's derived cell, re-trained
    assert len(final.curve) == 2 and 0.0 <= final.value <= 1.0 and final.values["macs"] > 0
    assert run.history().best()[0].number == final.number
    study = run.history().study
    assert study.user_attrs[WEIGHTS_ATTR]["epoch"] == 2
    system = study._storage.get_study_system_attrs(study._study_id)
    assert any(key.startswith(f"dashboard:plot_data:{FIGURE_ID}") for key in system)


def test_differentiable_settings_are_validated(tmp_path):
    ok = load_experiment(write_tiny(tmp_path, controller={"name": "differentiable", "epochs": 3, "width": 0.25}))
    assert ok.controller_name == "differentiable"
    with pytest.raises(ConfigError, match=r"controller.epoch: unknown field \(did you mean 'epochs'\?\)"):
        load_experiment(write_tiny(tmp_path, controller={"name": "differentiable", "epoch": 3}))
    with pytest.raises(ConfigError, match=r"controller.width: expected one of the space's widths \[0.25\]"):
        load_experiment(write_tiny(tmp_path, controller={"name": "differentiable", "width": 0.5}))
    with pytest.raises(ConfigError, match="controller: arch_lr must be > 0"):
        load_experiment(write_tiny(tmp_path, controller={"name": "differentiable", "arch_lr": -1.0}))


@pytest.mark.slow
def test_time_budget_stops_the_search_after_an_epoch_and_still_retrains(tmp_path, ray_module):
    path = write_tiny(tmp_path, name="tinyt", controller={"name": "differentiable", "epochs": 3},
                      budget={"time": 1})
    assert main(["search", path, "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    records = open_run(tmp_path / "runs" / "tinyt").history().trials()
    assert [(r.state, r.attrs["phase"]) for r in records] == [(PRUNED, "search"), (COMPLETE, "retrain")]
