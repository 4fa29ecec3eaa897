"""Malformed input through the CLI, the classes a fuzz of about 3,800 cases found (issue 13, "Also"): each ends in
one line naming the file and field (or flag) and what was expected, exit 2, before anything runs or is written."""
from __future__ import annotations

import copy

import pytest
import yaml

from attnas.experiments.cli import main
from tests.experiments.tiny import TINY


def evaluator_with(**fields) -> dict:
    data = copy.deepcopy(TINY)
    data["evaluator"].update(fields)
    return data


def data_with(**fields) -> dict:
    data = copy.deepcopy(TINY)
    data["evaluator"]["data"].update(fields)
    return data


@pytest.mark.parametrize("experiment, expected", [
    (evaluator_with(backbone="resnet9000"), "field 'evaluator.backbone': unknown backbone 'resnet9000'"),
    (evaluator_with(backbone_args={"stem_width": 8, "nonsense": 1}),
     "field 'evaluator.backbone_args': backbone 'proxy_i3d': got an unexpected keyword argument 'nonsense'"),
    (data_with(task="nosuch"), "evaluator: data: task must be one of odd_one_out"),
    (data_with(video_root="/nonexistent", video_layout="weird"), "video_layout must be one of folder"),
    (data_with(train_size=0), "train_size must be >= 1"),
    (evaluator_with(device="tpu"), "device must be one of auto, cpu, cuda"),
    (evaluator_with(momentum=-1), "momentum must be in [0, 1), got -1.0"),
    (evaluator_with(label_smoothing=2), "label_smoothing must be in [0, 1), got 2.0"),
    (evaluator_with(weight_decay=-1), "weight_decay must be >= 0, got -1.0"),
    (evaluator_with(seed=-3), "seed and pretrain_seed must be >= 0"),
    ({**TINY, "seed": -1}, "seed: expected a number >= 0"),
], ids=lambda value: value if isinstance(value, str) and len(value) < 20 else None)
def test_values_a_trial_would_fail_on_are_refused_by_the_dry_run(experiment, expected, tmp_path, capsys):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(experiment, sort_keys=False))
    assert main(["search", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert expected in err and str(path) in err, err
    assert len(err.strip().splitlines()) == 1, err


LAUGHS = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 9))


@pytest.mark.parametrize("text, expected", [
    ("name: x\nspace: small\nbudget:\n  trials: 1:30\n",
     "budget.trials: expected a whole number or null, got str '1:30'"),
    ("name: x\nspace: small\nname: y\n", "key 'name' appears twice at line 3"),
    ("name: x\nspace: small\nl0: &l0 [a, a, a, a, a, a, a, a, a, a]\n" + LAUGHS, "aliases expand to more than"),
    ("name: x\nspace: small\ncontroller: &c [*c]\n", "aliases expand to more than"),
], ids=["base-60 number", "duplicate key", "billion laughs", "recursive alias"])
def test_yaml_that_plain_yaml_reads_differently_or_without_end_is_refused(text, expected, tmp_path, capsys):
    path = tmp_path / "x.yaml"
    path.write_text(text)
    assert main(["search", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert expected in err and str(path) in err, err
    assert len(err.strip().splitlines()) == 1, err


def test_yaml_anchors_and_merge_keys_still_work(tmp_path, capsys):
    path = tmp_path / "x.yaml"
    path.write_text("name: x\nspace: small\nbudget: {trials: 3}\n"
                    "early_stopping: &stopping {scheduler: asha, grace_period: 1}\n"
                    "evaluator:\n  <<: {epochs: 2, batch_size: 16}\n  eval_batch_size: 32\n")
    assert main(["search", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "3 trials" in out and "2 epochs" in out


@pytest.mark.parametrize("argv, expected", [
    (["space", "small", "--sample", "100000000"], "--sample: expected a whole number from 0 to 10000"),
    (["space", "small", "--seed", "-3"], "--seed: expected a whole number >= 0"),
    (["dashboard", "x", "--port", "70000"], "--port: expected a whole number from 0 to 65535"),
    (["export", "x", "--channels", "100000000000", "-o", "c.py"], "--channels: expected a whole number from 1 to"),
])
def test_flags_out_of_range_are_refused_before_any_work(argv, expected, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err, err
