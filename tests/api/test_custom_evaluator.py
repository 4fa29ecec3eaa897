"""A user's own evaluator, named in the experiment as `module:attr` (this file), drives a real search through Ray:
every epoch it reports reaches the history (and so Tune's scheduler), its final metrics are the trial's values, and
an exception fails that trial alone with its reason."""
from __future__ import annotations

import pytest
import torch

import attnas
from attnas.experiments.history import COMPLETE, FAILED, PRUNED

EPOCHS = 4
FAILING_OP = "gather"


def expected_accuracy(cell: attnas.CellSpec, epoch: int) -> float:
    """A made-up but cell-dependent score that grows with the epochs, as training would."""
    return round((int(cell.hash[-6:], 16) % 1000) / 1000.0 * epoch / EPOCHS, 6)


def score_cell(cell, context):
    """The custom evaluator: builds the cell with attnas, runs it, reports each epoch, keeps a checkpoint file."""
    if FAILING_OP in {node.op for node in cell.nodes}:
        raise RuntimeError(f"this evaluator does not take {FAILING_OP}\nsecond line")
    module = attnas.build_cell(cell, channels=context.settings["channels"])
    clip = torch.randn(1, context.settings["channels"], 2, 4, 4)
    if module(clip).shape != clip.shape:
        raise RuntimeError("the cell changed the shape")
    marker = context.checkpoint_dir / "epochs.txt"
    for epoch in range(1, context.epochs + 1):
        marker.write_text(str(epoch))
        if context.report(epoch, accuracy=expected_accuracy(cell, epoch)):
            break
    return {"macs": 1234.0, "params": float(sum(p.numel() for p in module.parameters()))}


class ScoreByClass:
    """The class form: built per trial with the experiment's settings."""

    def __init__(self, *, channels: int):
        self.channels = channels

    def __call__(self, cell, context):
        return score_cell(cell, context)


def experiment(entry: str, **changes) -> dict:
    return {"name": "custom", "space": "small", "controller": {"name": "random"},
            "evaluator": {"custom": entry, "epochs": EPOCHS, "settings": {"channels": 8}},
            "budget": {"trials": 8}, "concurrency": 2,
            "early_stopping": {"scheduler": "asha", "grace_period": 1, "reduction_factor": 2}, **changes}


@pytest.mark.slow
@pytest.mark.parametrize("entry", ["tests.api.test_custom_evaluator:score_cell",
                                   "tests.api.test_custom_evaluator:ScoreByClass"])
def test_custom_evaluator_drives_a_search_through_ray(tmp_path, ray_module, entry):
    run = attnas.search(experiment(entry), runs_dir=tmp_path / "runs")
    trials = run.trials
    assert len(trials) == 8
    assert {t.state for t in trials} <= {COMPLETE, PRUNED, FAILED}
    for trial in trials:
        cell = attnas.CellSpec.from_dict(trial.cell)
        if trial.state == FAILED:
            assert FAILING_OP in {node.op for node in cell.nodes}
            assert trial.reason == f"RuntimeError: this evaluator does not take {FAILING_OP}"
            continue
        # every epoch's report reached Tune (the history's curve is written from Tune's per-epoch results)
        assert trial.curve == pytest.approx([expected_accuracy(cell, e) for e in range(1, len(trial.curve) + 1)])
        if trial.state == COMPLETE:
            assert len(trial.curve) == EPOCHS
            assert trial.value == pytest.approx(expected_accuracy(cell, EPOCHS))
            assert trial.values["macs"] == 1234.0
            assert trial.values["params"] == sum(p.numel() for p in attnas.build_cell(cell, 8).parameters())
        else:  # stopped by ASHA at a rung, on the strength of an intermediate report
            assert 1 <= trial.attrs["epochs_done"] < EPOCHS
            assert len(trial.curve) == trial.attrs["epochs_done"]
            assert trial.value == pytest.approx(expected_accuracy(cell, trial.attrs["epochs_done"]))
    assert run.best.value == max(t.value for t in trials if t.state == COMPLETE)
    # the best cell exports for the channels the user names (attnas cannot know where their model puts it)
    exported = run.export(tmp_path / "best.py", channels=8)
    assert f"trial{run.best.number}" in exported.read_text()
    with pytest.raises(attnas.AttnasError, match="custom evaluator.*pass --channels"):
        run.export(tmp_path / "best.py")


def test_a_custom_evaluator_that_cannot_be_imported_is_a_one_line_config_error(tmp_path):
    with pytest.raises(attnas.ConfigError, match=r"evaluator.custom: module 'tests.api' has no attribute 'nothing'"):
        attnas.search(experiment("tests.api:nothing"), runs_dir=tmp_path)
    with pytest.raises(attnas.ConfigError, match=r"evaluator.custom: expected 'module:attribute'"):
        attnas.search(experiment("no_colon"), runs_dir=tmp_path)
    with pytest.raises(attnas.ConfigError, match=r"evaluator.setings: unknown field \(did you mean 'settings'\?\)"):
        attnas.search(experiment("tests.api.test_custom_evaluator:score_cell")
                      | {"evaluator": {"custom": "tests.api.test_custom_evaluator:score_cell", "setings": {}}},
                      runs_dir=tmp_path)
    assert not (tmp_path / "custom").exists()


def test_dry_run_plans_a_custom_evaluator_search(tmp_path, capsys):
    import yaml

    from attnas.experiments.cli import main

    path = tmp_path / "custom.yaml"
    path.write_text(yaml.safe_dump(experiment("tests.api.test_custom_evaluator:score_cell")))
    assert main(["search", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "the custom evaluator tests.api.test_custom_evaluator:score_cell" in out
    assert not (tmp_path / "runs").exists()
