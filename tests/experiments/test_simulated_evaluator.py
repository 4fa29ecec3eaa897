"""The simulated evaluator (evaluators/simulated.py): its scores are a fixed, deterministic function of the cell, and
a search with it goes through the real CLI, Ray trainable, per-epoch reports, history, resume, status and export."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from attnas.evaluators.simulated import (HIGH, LOW, SimulatedEvaluatorConfig, accuracy_curve, cell_costs,
                                         count_costs, final_accuracy, run_simulated)
from attnas.experiments.cli import main
from attnas.experiments.config import experiment_from_data
from attnas.experiments.history import COMPLETE, RUNNING
from attnas.experiments.run_folder import open_run
from attnas.search_space import CellSpec, load_space, load_zoo
from attnas.search_space.schema import ConfigError

SIMULATED = {"kind": "simulated", "epochs": 3, "seed": 7, "noise": 0.02}


def settings(**changes) -> SimulatedEvaluatorConfig:
    return SimulatedEvaluatorConfig(**{**SIMULATED, **changes})


def distinct_cells(count: int, seed: int = 0) -> list[CellSpec]:
    space, rng, cells = load_space("default"), np.random.default_rng(seed), {}
    while len(cells) < count:
        cell = space.sample(rng)
        cells.setdefault(cell.hash, cell)
    return list(cells.values())


# --------------------------------------------------------------------------------------------------- the function
def test_same_cell_and_seed_give_the_same_numbers_in_another_process():
    cell = load_zoo("non_local")
    here = accuracy_curve(cell, settings())
    code = ("import json; from attnas.evaluators.simulated import SimulatedEvaluatorConfig, accuracy_curve; "
            "from attnas.search_space import load_zoo; "
            f"print(json.dumps(accuracy_curve(load_zoo('non_local'), SimulatedEvaluatorConfig(**{SIMULATED!r}))))")
    # another process with another string-hash salt: nothing may depend on Python's hash()
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"})
    assert json.loads(other.stdout) == here
    assert here[-1] == final_accuracy(cell, seed=7)


def test_distinct_cells_score_differently_within_the_range_and_the_seed_changes_the_function():
    cells = distinct_cells(200)
    scores = [final_accuracy(cell, seed=7) for cell in cells]
    assert len(set(scores)) == len(cells)
    assert all(LOW <= s <= HIGH for s in scores)
    assert np.std(scores) > 0.03, "a flat function would give a search nothing to find"
    other_seed = [final_accuracy(cell, seed=8) for cell in cells]
    assert abs(np.corrcoef(scores, other_seed)[0, 1]) < 0.5


def test_a_cell_renamed_or_reordered_scores_the_same():
    cell = load_zoo("double_attention")
    renamed = CellSpec.from_dict(cell.canonical().to_dict())
    assert renamed.hash == cell.hash
    assert final_accuracy(renamed, 3) == final_accuracy(cell, 3)


def test_the_curve_rises_to_the_final_value_and_noise_never_moves_the_last_epoch():
    for cell in distinct_cells(20, seed=1):
        clean = accuracy_curve(cell, settings(noise=0.0, epochs=5))
        assert all(a < b for a, b in zip(clean, clean[1:])), clean
        assert clean[-1] == final_accuracy(cell, 7)
        noisy = accuracy_curve(cell, settings(noise=0.05, epochs=5))
        assert noisy[-1] == clean[-1]
        assert noisy[:-1] != clean[:-1]
        assert max(abs(a - b) for a, b in zip(noisy, clean)) <= 0.05


def test_a_trial_resumed_from_its_checkpoint_reports_only_the_epochs_left(tmp_path):
    cell, config = load_zoo("non_local"), settings(epochs=4, costs=False)
    reported: list[tuple[int, float]] = []
    first = run_simulated(config, cell, tmp_path, lambda epoch, metrics: reported.append((epoch, metrics["accuracy"])))
    curve = accuracy_curve(cell, config)
    assert reported == [(1, curve[0]), (2, curve[1]), (3, curve[2])]
    assert first == {"accuracy": curve[3], "resumed_from": 0.0}
    (tmp_path / "simulated_epoch.txt").write_text("2")  # the checkpoint of a trial lost after its second epoch
    reported.clear()
    again = run_simulated(config, cell, tmp_path, lambda epoch, metrics: reported.append((epoch, metrics["accuracy"])))
    assert reported == [(3, curve[2])]
    assert again == {"accuracy": curve[3], "resumed_from": 2.0}


def test_costs_are_the_cost_models_and_a_cached_cell_needs_no_torch(tmp_path):
    cell, other = load_zoo("non_local"), load_zoo("double_attention")
    costs = cell_costs(cell, cache_dir=tmp_path)
    assert costs == count_costs(cell)
    assert costs["macs"] > 1e6 and costs["params"] > 1e3
    assert cell_costs(other, cache_dir=tmp_path) != costs
    code = ("import sys, json; from attnas.evaluators.simulated import cell_costs; "
            "from attnas.search_space import load_zoo; "
            f"costs = cell_costs(load_zoo('non_local'), cache_dir={str(tmp_path)!r}); "
            "print(json.dumps([costs, 'torch' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [costs, False]


@pytest.mark.parametrize("evaluator, message", [
    ({"kind": "simulated", "epoch": 3}, r"evaluator\.epoch: unknown field \(did you mean 'epochs'\?\)"),
    ({"kind": "simulatd"}, r"evaluator\.kind: .*simulated"),
    ({"kind": "simulated", "noise": 2}, r"evaluator\.noise: expected a number in \[0, 0\.5\]"),
    ({"kind": "simulated", "epochs": 0}, r"evaluator\.epochs: "),
    ({"kind": "simulated", "epoch_seconds": -1}, r"evaluator\.epoch_seconds: "),
])
def test_config_errors_name_the_file_and_field(evaluator, message):
    with pytest.raises(ConfigError, match=rf"^exp\.yaml: {message}"):
        experiment_from_data({"name": "sim", "space": "small", "evaluator": evaluator}, where="exp.yaml",
                             source="exp.yaml")


def test_the_differentiable_search_refuses_the_simulated_evaluator():
    with pytest.raises(ConfigError, match=r"^exp\.yaml: evaluator\.kind: .*built-in proxy evaluator"):
        experiment_from_data({"name": "sim", "space": "small", "controller": {"name": "differentiable"},
                              "evaluator": {"kind": "simulated"}}, where="exp.yaml", source="exp.yaml")


# ------------------------------------------------------------------------------------------------- through the CLI
def write_experiment(folder: Path, **changes) -> str:
    data = {"name": "sim", "space": "small", "controller": {"name": "random"}, "evaluator": SIMULATED,
            "budget": {"trials": 12}, "concurrency": 2, "early_stopping": {"scheduler": "none"}, **changes}
    path = folder / "sim.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def test_dry_run_evaluate_and_train_with_the_simulated_evaluator(tmp_path, capsys):
    path = write_experiment(tmp_path)
    assert main(["search", path, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "no model trained: the simulated evaluator (seed 7), 3 epochs on simulated scores (0 s per epoch)" in out
    assert main(["evaluate", "non_local", "--config", path, "--seeds", "2"]) == 0
    out = capsys.readouterr().out
    cell = load_zoo("non_local")
    for seed in (7, 8):
        assert f"seed {seed} epoch 3: simulated accuracy {final_accuracy(cell, seed):.4f}" in out
    assert f"{cell_costs(cell)['macs']:,.0f}" in out
    assert main(["evaluate", "none", "--config", path]) == 2
    assert main(["train", "non_local", "--config", path]) == 2
    err = capsys.readouterr().err
    assert "no score for the backbone alone" in err and "evaluator.kind: this command needs the built-in proxy" in err
    assert "Traceback" not in err


@pytest.mark.slow
def test_a_simulated_search_records_every_curve_resumes_and_shows_in_status_and_export(tmp_path, capsys, ray_local):
    path = write_experiment(tmp_path)
    assert main(["search", path, "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    run_dir = tmp_path / "runs" / "sim"
    config = SimulatedEvaluatorConfig(**SIMULATED)

    def check(records, count):
        assert len(records) == count
        assert {r.state for r in records} == {COMPLETE}, [(r.state, r.reason) for r in records]
        assert len({r.hash for r in records}) == count
        for record in records:
            cell = CellSpec.from_dict(record.cell)
            assert record.curve == pytest.approx(accuracy_curve(cell, config), abs=1e-12)
            assert record.value == final_accuracy(cell, 7)
            assert record.values["macs"] == cell_costs(cell)["macs"]
            assert record.values["params"] == cell_costs(cell)["params"]

    first = open_run(run_dir).history().trials()
    check(first, 12)
    capsys.readouterr()
    assert main(["resume", str(run_dir), "--trials", "16", "--quiet"]) == 0
    after = open_run(run_dir).history().trials()
    check(after, 16)
    assert [(r.number, r.hash, r.value) for r in after[:12]] == [(r.number, r.hash, r.value) for r in first]
    assert not [r for r in after if r.state == RUNNING]
    capsys.readouterr()
    assert main(["status", str(run_dir)]) == 0
    out = capsys.readouterr().out
    best = max(after, key=lambda r: r.value)
    assert "16 trials: 16 complete" in out and best.hash[:8] in out and f"{best.value:.4f}" in out
    exported = tmp_path / "best.py"
    assert main(["export", str(run_dir), "--best", "-o", str(exported)]) == 0
    assert best.hash in exported.read_text()
    assert "the run used the simulated evaluator, which trains nothing" in capsys.readouterr().err
