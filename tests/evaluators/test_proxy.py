"""ProxyEvaluator: determinism, resume equality, failures as results, reporting, cell insertion, config errors."""
import math
from dataclasses import replace

import pytest
import torch

from attnas.evaluators import DataConfig, ProxyConfig, ProxyEvaluator
from attnas.evaluators import proxy as proxy_module
from attnas.search_space import AttnasError, load_zoo


def tiny_config(tmp_path, **overrides):
    data = DataConfig(task="match", fields={"frames": 4, "size": 16}, train_size=48, validation_size=24,
                      test_size=24, cache_dir=str(tmp_path / "cache"))
    settings = dict(data=data, backbone_args={"stem_width": 4, "widths": (8, 8, 8)}, at=("conv3:0",), epochs=3,
                    batch_size=16, eval_batch_size=16, threads=1, seed=3, device="cpu", measure_latency=False,
                    pretrain_epochs=1)
    settings.update(overrides)
    return ProxyConfig(**settings)


def numbers(result):
    """Everything a trial computes except timings."""
    return (result.status, result.top1, result.top5, result.loss, result.test_top1, result.params, result.macs,
            [{k: v for k, v in epoch.items()} for epoch in result.curve])


@pytest.mark.slow
def test_same_seed_same_numbers_twice(tmp_path):
    evaluator = ProxyEvaluator(tiny_config(tmp_path))
    first = evaluator.evaluate("non_local", test=True)
    second = evaluator.evaluate("non_local", test=True)
    assert first.status == "ok", first.reason
    assert numbers(first) == numbers(second)
    assert len(first.curve) == 3 and first.epochs == 3 and first.test_top1 is not None
    assert first.curve[0]["train_loss"] != first.curve[-1]["train_loss"]  # it trained
    other_seed = ProxyEvaluator(tiny_config(tmp_path, seed=4)).evaluate("non_local")
    assert [e["train_loss"] for e in other_seed.curve] != [e["train_loss"] for e in first.curve]


def test_resume_mid_trial_gives_the_uninterrupted_result(tmp_path):
    config = tiny_config(tmp_path, epochs=4, backbone_args={"stem_width": 4, "widths": (8, 8, 8), "dropout": 0.3})
    uninterrupted = ProxyEvaluator(config).evaluate("double_attention")
    assert uninterrupted.status == "ok", uninterrupted.reason
    folder = tmp_path / "trial"
    # the first run is killed after epoch 2 (the callback stops it, as ASHA or a dying worker would)
    stopped = ProxyEvaluator(config).evaluate("double_attention", checkpoint_dir=folder,
                                              report=lambda epoch, metrics: epoch == 2)
    assert stopped.status == "stopped" and stopped.epochs == 2
    state = torch.load(folder / "checkpoint.pt", weights_only=True)  # loadable without pickle
    assert state["epoch"] == 2
    resumed = ProxyEvaluator(config).evaluate("double_attention", checkpoint_dir=folder)
    assert resumed.resumed_from == 2 and resumed.status == "ok"
    assert numbers(resumed) == numbers(uninterrupted)


def test_repeats_report_the_mean_of_the_single_seed_trials(tmp_path):
    single = [ProxyEvaluator(tiny_config(tmp_path, seed=seed)).evaluate("double_attention", test=True)
              for seed in (3, 4)]
    both = ProxyEvaluator(tiny_config(tmp_path, repeats=2)).evaluate("double_attention", test=True)
    assert both.status == "ok", both.reason
    for key in ("top1", "loss", "test_top1", "test_loss"):
        assert getattr(both, key) == pytest.approx((getattr(single[0], key) + getattr(single[1], key)) / 2)
    for epoch, (a, b) in zip(both.curve, zip(single[0].curve, single[1].curve)):
        assert epoch["top1_per_seed"] == [a["top1"], b["top1"]]
        assert epoch["train_loss"] == pytest.approx((a["train_loss"] + b["train_loss"]) / 2)
    assert (both.params, both.macs) == (single[0].params, single[0].macs)


def test_resume_with_repeats_gives_the_uninterrupted_result(tmp_path):
    config = tiny_config(tmp_path, repeats=2)
    uninterrupted = ProxyEvaluator(config).evaluate("non_local")
    folder = tmp_path / "trial"
    ProxyEvaluator(config).evaluate("non_local", checkpoint_dir=folder, report=lambda epoch, metrics: epoch == 1)
    state = torch.load(folder / "checkpoint.pt", weights_only=True)
    assert len(state["replicas"]) == 1 and "model" in state  # the first model where export reads it
    resumed = ProxyEvaluator(config).evaluate("non_local", checkpoint_dir=folder)
    assert resumed.resumed_from == 1 and numbers(resumed) == numbers(uninterrupted)


def test_checkpoint_of_another_cell_is_refused(tmp_path):
    config = tiny_config(tmp_path, epochs=1)
    ProxyEvaluator(config).evaluate("non_local", checkpoint_dir=tmp_path / "t")
    result = ProxyEvaluator(config).evaluate("squeeze_excitation", checkpoint_dir=tmp_path / "t")
    assert result.status == "failed" and "another cell" in result.reason


def test_nan_loss_ends_as_failed_result(tmp_path, monkeypatch):
    calls = []
    original = ProxyEvaluator._loss

    def poisoned(self, logits, labels):
        calls.append(1)
        loss = original(self, logits, labels)
        return loss * math.nan if len(calls) == 4 else loss

    monkeypatch.setattr(ProxyEvaluator, "_loss", poisoned)
    # no pretraining: the calls counted are this trial's (test_pretrained covers a pretraining that diverges)
    result = ProxyEvaluator(tiny_config(tmp_path, pretrain_epochs=0)).evaluate("non_local")
    assert result.status == "failed" and not result.ok
    assert result.reason == "diverged: training loss is nan at epoch 2, step 1"
    assert result.epochs == 1 and len(result.curve) == 1  # what was learned before the divergence is kept


def test_exception_inside_a_trial_is_a_failed_result(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("worker lost its marbles")

    monkeypatch.setattr(proxy_module, "score", broken)
    result = ProxyEvaluator(tiny_config(tmp_path, pretrain_epochs=0)).evaluate(None)
    assert result.status == "failed" and result.reason == "RuntimeError: worker lost its marbles"
    bad_placement = ProxyEvaluator(tiny_config(tmp_path, at=("conv9:0",))).evaluate("non_local")
    assert bad_placement.status == "failed" and "conv9:0" in bad_placement.reason


def test_report_every_epoch_and_stop_on_request(tmp_path):
    seen = []
    result = ProxyEvaluator(tiny_config(tmp_path)).evaluate(
        load_zoo("squeeze_excitation"), report=lambda epoch, metrics: seen.append((epoch, metrics)) or epoch == 2)
    assert [e for e, _ in seen] == [1, 2] and result.status == "stopped" and result.epochs == 2
    assert set(seen[0][1]) == {"epoch", "train_loss", "loss", "top1", "top5", "lr", "validated_on", "feature_path"}
    assert seen[1][1]["top1"] == result.top1 and seen[0][1]["top5"] is None  # 2 classes: no top-5


def test_none_is_the_backbone_alone_and_cells_add_cost(tmp_path):
    evaluator = ProxyEvaluator(tiny_config(tmp_path, epochs=1, measure_latency=True))
    alone, named_none, with_cell = evaluator.evaluate(None), evaluator.evaluate("none"), evaluator.evaluate("non_local")
    assert numbers(alone) == numbers(named_none) and alone.spec_hash == "none"
    assert with_cell.params > alone.params and with_cell.macs > alone.macs
    assert alone.latency > 0 and with_cell.spec_hash == load_zoo("non_local").hash
    model = evaluator.build_model("non_local", 2, (3, 4, 16, 16))
    assert "conv3.units.0.cell" in dict(model.named_modules())


def test_paper_backbones_are_built_for_the_task_clips(tmp_path):
    """A narrowed ResNet-26 takes the clip shape of the task, like the proxy does, so transfer runs need no
    hand-written input_shape."""
    config = replace(tiny_config(tmp_path), backbone="resnet26", backbone_args={"width_multiplier": 0.125},
                     at=("conv3:1",))
    model = ProxyEvaluator(config).build_model("double_attention", 2, (3, 4, 16, 16))
    assert model.input_shape == (3, 4, 16, 16) and "conv3.units.1.cell" in dict(model.named_modules())
    assert model(torch.zeros(2, 3, 4, 16, 16)).shape == (2, 2)


def test_schedule_warms_up_then_decays():
    factor = proxy_module.lr_schedule("onecycle", 0.25, 8)
    values = [factor(s) for s in range(8)]
    assert values[:2] == [0.5, 1.0] and values[-1] < values[2] and all(0 < v <= 1 for v in values)
    assert proxy_module.lr_schedule("constant", 0.0, 8)(7) == 1.0


def test_config_errors_are_one_line():
    with pytest.raises(AttnasError, match="optimizer must be one of sgd, adamw"):
        ProxyConfig(optimizer="lbfgs")
    with pytest.raises(AttnasError, match="unknown field.*epoch"):
        ProxyConfig.from_dict({"epoch": 3})
    with pytest.raises(AttnasError, match="repeats must be >= 1, got 0"):
        ProxyConfig(repeats=0)
    with pytest.raises(AttnasError, match="pretrain_epochs must be >= 0, got -1"):
        ProxyConfig(pretrain_epochs=-1)
    with pytest.raises(AttnasError, match=r"data.tsak: unknown field \(did you mean .task.\?\)"):
        ProxyConfig.from_dict({"data": {"tsak": "match"}})
    config = ProxyConfig.from_dict({"epochs": 2, "at": "conv2:0", "data": {"task": "match",
                                                                          "sampling": {"frames": 4}}})
    assert config.at == ("conv2:0",) and config.data.sampling.frames == 4 and config.epochs == 2
    with pytest.raises(AttnasError, match="no GPU"):
        proxy_module.resolve_device("cuda") if not torch.cuda.is_available() else (_ for _ in ()).throw(
            AttnasError("no GPU (skipped: a GPU is present)"))


@pytest.mark.slow
def test_default_task_relation_is_beyond_the_default_backbones_temporal_reach():
    """The quick-start design: no unit of the default proxy sees both the first and the last object's frames."""
    from attnas.evaluators.config import QUICKSTART_PROXY
    from attnas.evaluators.data import create_task

    task = create_task("odd_one_out")
    data = task.generate(64, seed=0)
    lit = data.clips.reshape(64, 3, task.frames, -1).max(axis=(1, 3)) > 0  # (N, T): frames with an object
    assert lit[:, :2].all() and lit[:, -2:].all() and not lit[:, 2:7].any()  # first object only in frames 0-1
    first_last, last_first = 1, task.frames - 2  # last frame of the first object, first frame of the last one
    config = ProxyConfig()
    model = ProxyEvaluator(config).build_model(None, task.num_classes, task.clip_shape).eval()
    assert config.backbone_args == QUICKSTART_PROXY and config.data.task == "odd_one_out"
    x = torch.randn(1, *task.clip_shape, requires_grad=True)
    features = model.forward_features(x)["conv3"]  # the last map before global pooling
    for t in range(features.shape[2]):
        (grad,) = torch.autograd.grad(features[:, :, t].sum(), x, retain_graph=True)
        seen = torch.nonzero(grad.abs().sum(dim=(0, 1, 3, 4))).flatten().tolist()
        assert not (first_last in seen and last_first in seen), (t, seen)
        assert len(seen) <= 9


def test_trains_on_a_video_folder(tmp_path):
    from tests.evaluators.test_video_folder import _folder_tree

    from attnas.evaluators.data import FrameSampling

    _folder_tree(tmp_path / "videos")
    data = DataConfig(video_root=str(tmp_path / "videos"), video_layout="folder", cache_dir=str(tmp_path / "cache"),
                      sampling=FrameSampling(frames=4, stride=2, resize=20, crop=16))
    config = tiny_config(tmp_path, data=data, epochs=1)
    result = ProxyEvaluator(config).evaluate("squeeze_excitation", test=True)
    assert result.status == "ok", result.reason
    assert result.epochs == 1 and 0 <= result.top1 <= 1 and result.test_top1 is not None and result.top5 is None
