"""The attnas command line: help, planning, and one-line errors with exit code 2 for every user mistake."""
import subprocess
import sys

import pytest

from attnas.experiments.cli import build_parser, main
from attnas.experiments.config import load_experiment
from attnas.experiments.plan import plan

COMMANDS = ("search", "resume", "status", "export", "evaluate", "train", "space")


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "attnas.experiments.cli", *args], capture_output=True, text=True,
                          timeout=120)


def test_help_lists_every_command():
    text = build_parser().format_help()
    for command in COMMANDS:
        assert command in text


@pytest.mark.parametrize("args, message", [
    (["status", "no-such-run"], "no-such-run: no such run"),
    (["search", "missing.yaml"], "missing.yaml: no such file"),
    (["search", "experiments/configs/quickstart.yaml", "--time", "soon"], "--time: expected a positive duration"),
    (["export", "no-such-run", "-o", "x.py"], "no-such-run: no such run"),
    (["evaluate", "not_a_cell", "--config", "experiments/configs/quickstart.yaml"],
     "not_a_cell: no such cell file or reference cell"),
    (["space", "nowhere.yaml"], "nowhere.yaml: no such file"),
])
def test_user_mistakes_exit_2_with_one_line(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("args", [["status"], ["search", "x.yaml", "--trials", "0"], ["export", "r"],
                                  ["frobnicate"], ["space", "small", "--sample", "-1"]])
def test_bad_flags_exit_2_without_traceback(args):
    result = run_cli(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stderr.strip()


def test_no_command_prints_help_and_exits_2():
    result = run_cli()
    assert result.returncode == 2 and "commands" in result.stderr


def test_bad_experiment_file_is_one_line_naming_file_and_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nconcurrency: lots\n")
    result = run_cli("search", str(path), "--dry-run")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"attnas: error: {path}: concurrency: expected a whole number, got str 'lots'"


def test_not_a_run_folder(tmp_path):
    assert main(["status", str(tmp_path)]) == 2


def test_cluster_experiment_parses_and_plans():
    config = load_experiment("experiments/configs/cluster_kinetics.yaml")
    planned = plan(config)
    assert planned.gpus_per_trial == 0.5 and planned.trials_per_gpu == 2
    assert planned.cluster_gpus_needed == 8 and planned.cluster_cpus_needed == 64
    assert planned.backbone == "resnet26" and planned.placements == ("conv3:1", "conv4:1")
    assert "kinetics videos under /data/kinetics400" in planned.data
    assert planned.storage.startswith("postgresql")


@pytest.mark.slow
def test_cluster_experiment_model_builds_at_its_clip_size():
    """The cluster experiment's backbone takes its clips and its placements exist: checked here, not on the
    cluster."""
    import torch

    from attnas.cells.backbones import create_backbone
    from attnas.cells.insert import insert, inserted_cells
    from attnas.experiments.config import proxy_config
    from attnas.search_space import load_zoo

    config = load_experiment("experiments/configs/cluster_kinetics.yaml")
    evaluator = proxy_config(config.evaluator, where=config.source)
    sampling = evaluator.data.sampling
    clip = (3, sampling.frames, sampling.crop, sampling.crop)
    model = create_backbone(evaluator.backbone, num_classes=400, **evaluator.backbone_args)
    insert(model, load_zoo("double_attention"), list(evaluator.at), example_input=torch.zeros(1, *clip))
    assert len(inserted_cells(model)) == 2


def test_dry_run_prints_the_plan(capsys):
    assert main(["search", "experiments/configs/quickstart.yaml", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "experiment 'quickstart'" in out and "2 trials at once" in out
