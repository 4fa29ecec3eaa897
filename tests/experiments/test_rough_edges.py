"""Rough edges a new user met, each along the command they typed: a missing space, a misspelt reference cell,
counts in the plan, exporting an unfinished trial, and `train`'s output and weights."""
import pytest

from attnas.experiments.cli import main
from attnas.experiments.dashboard.synthetic import write_synthetic_history
from attnas.experiments.history import FAILED, PRUNED
from tests.experiments.tiny import TINY, write_tiny


def test_space_that_is_neither_a_file_nor_shipped(capsys):
    assert main(["space", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert "nosuch: no such file or shipped space (shipped spaces: attnbench, default, small, tiny)" in err
    assert "mapping" not in err and len(err.strip().splitlines()) == 1


def test_misspelt_reference_cell_gets_a_suggestion(tmp_path, capsys):
    assert main(["evaluate", "nonlocal", "--config", write_tiny(tmp_path)]) == 2
    assert "did you mean 'non_local'?" in capsys.readouterr().err


def test_plan_counts_agree_in_number(tmp_path, capsys):
    config = write_tiny(tmp_path, budget={"trials": 1}, concurrency=1,
                        early_stopping={"scheduler": "asha", "grace_period": 1, "reduction_factor": 2},
                        evaluator={**TINY["evaluator"], "epochs": 1})
    assert main(["search", config, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "budget: 1 trial; 1 trial at once" in out and "to run 1 trial at once" in out
    assert ", 1 epoch on " in out and "grace 1 epoch," in out
    assert "1 trials" not in out and "1 epochs" not in out


@pytest.fixture(scope="module")
def unfinished_run(tmp_path_factory):
    return write_synthetic_history(tmp_path_factory.mktemp("runs"), name="unfinished", trials=40)


@pytest.mark.parametrize("state, expected", [(PRUNED, "was pruned after"), (FAILED, "failed (synthetic failure")])
def test_exporting_an_unfinished_trial_warns(unfinished_run, tmp_path, capsys, state, expected):
    record = next(r for r in unfinished_run.history().trials() if r.state == state)
    output = tmp_path / "cell.yaml"
    assert main(["export", str(unfinished_run.path), "--trial", str(record.number), "-o", str(output)]) == 0
    captured = capsys.readouterr()
    assert f"warning: trial {record.number} {expected}" in captured.err
    assert output.is_file() and f"wrote {output}" in captured.out
    best = unfinished_run.history().best(1)[0]
    assert main(["export", str(unfinished_run.path), "--trial", str(best.number), "-o", str(output)]) == 0
    assert "warning" not in capsys.readouterr().err


@pytest.mark.slow
def test_train_labels_validation_and_its_weights_load_into_the_rebuilt_model(tmp_path, capsys):
    import torch

    from attnas.experiments.standalone import load_trained

    config = write_tiny(tmp_path, evaluator={**TINY["evaluator"], "pretrain_epochs": 0})
    weights = tmp_path / "weights.pt"
    assert main(["train", "non_local", "--config", config, "--epochs", "1", "-o", str(weights)]) == 0
    out = capsys.readouterr().out
    assert "train epoch 1: validation top1 " in out and "validation loss" in out
    hint = f"load_trained('non_local', config={config!r}, weights={str(weights)!r})"
    assert hint in out.replace("\n", "")
    model = load_trained("non_local", config=config, weights=str(weights))
    saved = torch.load(weights, weights_only=True)
    assert set(model.state_dict()) == set(saved)
    assert all(torch.equal(model.state_dict()[k], saved[k]) for k in saved)


def test_dry_run_checks_the_placements(tmp_path, capsys):
    config = write_tiny(tmp_path, evaluator={**TINY["evaluator"], "at": ["conv2:0", "conv9:0"]})
    assert main(["search", config, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"{config}: field 'evaluator.at': unknown placement 'conv9:0' for backbone 'proxy_i3d'" in err
    assert "valid placements: conv1, conv1:0, conv2, conv2:0" in err


@pytest.mark.slow
def test_building_the_package_warns_about_no_package_data(tmp_path):
    import subprocess
    import sys
    import zipfile
    from pathlib import Path

    import shutil

    # built from a copy: setuptools leaves a build/ folder in the tree it builds
    source = tmp_path / "source"
    shutil.copytree(Path(__file__).resolve().parents[2], source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "runs", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
                            "-v", "-w", str(tmp_path)], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    log = build.stdout + build.stderr
    for symptom in ("Package would be ignored", "is deprecated", "SetuptoolsDeprecationWarning", "package_data"):
        assert symptom not in log, [line for line in log.splitlines() if symptom in line][:3]
    [wheel] = tmp_path.glob("attnas-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "attnas/cells/zoo/non_local.yaml" in names
    assert "attnas/experiments/configs/quickstart.yaml" in names
    assert "attnas/experiments/configs/spaces/small.yaml" in names
