"""The shared warm start: every trial's backbone starts from the backbone alone trained once, cells at identity."""
import math
from dataclasses import replace

import pytest
import torch

from attnas.cells.insert import inserted_cells
from attnas.evaluators import ProxyEvaluator
from attnas.evaluators import pretrained as pretrained_module
from attnas.evaluators import proxy as proxy_module
from tests.evaluators.test_proxy import numbers, tiny_config


def backbone_only(state):
    """The backbone's entries of a model's state dict, under the names they have before a cell is inserted."""
    return {k.replace(".block.", "."): v for k, v in state.items() if ".cell." not in k}


def test_pretrained_weights_are_the_final_weights_of_a_backbone_alone_trial(tmp_path):
    config = tiny_config(tmp_path, pretrain_epochs=2, pretrain_seed=7)
    state = ProxyEvaluator(config).pretrained_backbone()
    alone = ProxyEvaluator(replace(config, pretrain_epochs=0, epochs=2, seed=7))
    result = alone.evaluate(None, checkpoint_dir=tmp_path / "alone")
    assert result.status == "ok", result.reason
    expected = torch.load(tmp_path / "alone" / "checkpoint.pt", weights_only=True)["model"]
    assert state.keys() == expected.keys()
    assert all(torch.equal(state[k], expected[k]) for k in state)
    untrained = ProxyEvaluator(config).build_model(None, 2, (3, 4, 16, 16), seed=7).state_dict()
    assert not torch.equal(state["head.fc.weight"], untrained["head.fc.weight"])  # it trained


def test_every_seed_starts_from_the_same_backbone_with_its_cell_at_identity(tmp_path):
    evaluator = ProxyEvaluator(tiny_config(tmp_path))
    state = evaluator.pretrained_backbone()
    models = [evaluator.build_model("non_local", 2, (3, 4, 16, 16), seed=seed, backbone_state=state)
              for seed in (3, 4)]
    for model in models:
        weights = backbone_only(model.state_dict())
        assert all(torch.equal(weights[k], state[k]) for k in state)
    cells = [next(iter(inserted_cells(model).values())) for model in models]
    assert not torch.equal(cells[0].ops.attend.q.weight, cells[1].ops.attend.q.weight)  # the seed draws the cell
    plain = evaluator.build_model(None, 2, (3, 4, 16, 16), backbone_state=state).eval()
    clip = torch.randn(2, 3, 4, 16, 16)
    with torch.no_grad():
        assert torch.allclose(models[0].eval()(clip), plain(clip), atol=1e-6)  # inserted at identity


def test_trained_once_per_machine_then_read_from_the_cache(tmp_path, monkeypatch):
    config = tiny_config(tmp_path)
    first = ProxyEvaluator(config).pretrained_backbone()
    files = list((tmp_path / "cache" / "backbones").glob("*.pt"))
    assert len(files) == 1
    pretrained_module.clear_memo()

    def no_training(*args, **kwargs):
        raise AssertionError("the backbone was trained again")

    monkeypatch.setattr(proxy_module, "train_backbone_alone", no_training)
    again = ProxyEvaluator(config).pretrained_backbone()
    assert all(torch.equal(first[k], again[k]) for k in first)
    # settings that do not change the backbone alone's training share its weights
    for same in (replace(config, freeze_front=False), replace(config, epochs=7, seed=11, repeats=2)):
        shared = ProxyEvaluator(same).pretrained_backbone()
        assert all(torch.equal(first[k], shared[k]) for k in first)
    other = tiny_config(tmp_path, pretrain_seed=99)
    with pytest.raises(AssertionError, match="trained again"):  # other settings, other weights
        ProxyEvaluator(other).pretrained_backbone()


def test_a_trial_reports_its_pretraining_time_and_differs_from_a_cold_start(tmp_path):
    warm = ProxyEvaluator(tiny_config(tmp_path)).evaluate("double_attention")
    cold = ProxyEvaluator(tiny_config(tmp_path, pretrain_epochs=0)).evaluate("double_attention")
    assert warm.status == cold.status == "ok"
    assert warm.times["pretrain"] > 0 and cold.times["pretrain"] < 0.01
    assert numbers(warm) != numbers(cold)
    # and the warm trial repeats exactly, from the cached weights
    pretrained_module.clear_memo()
    assert numbers(ProxyEvaluator(tiny_config(tmp_path)).evaluate("double_attention")) == numbers(warm)


def test_a_pretraining_that_diverges_fails_the_trial_with_the_reason(tmp_path, monkeypatch):
    original = ProxyEvaluator._loss
    monkeypatch.setattr(ProxyEvaluator, "_loss", lambda self, logits, labels: original(self, logits, labels) * math.nan)
    result = ProxyEvaluator(tiny_config(tmp_path)).evaluate("non_local")
    assert result.status == "failed"
    assert result.reason.startswith("AttnasError: pretraining the backbone alone (1 epoch at seed 1000) failed: "
                                    "diverged: training loss is nan at epoch 1, step 1")
    assert not list((tmp_path / "cache" / "backbones").glob("*.pt"))  # nothing half-made is cached


def test_freeze_front_fixes_exactly_the_layers_before_the_first_placement():
    evaluator = ProxyEvaluator()  # the quick-start proxy: stem conv1, stage conv2 (one unit), the cell, conv3
    model = evaluator.build_model("non_local", 8, (3, 16, 16, 16))
    frozen = pretrained_module.freeze_front(model, evaluator.config, (3, 16, 16, 16))
    fixed = {name for name, p in model.named_parameters() if not p.requires_grad}
    assert fixed == {name for name, _ in model.named_parameters()
                     if name.startswith(("conv1.", "conv2.units.0.block."))}
    assert fixed and all(not p.requires_grad for m in frozen for p in m.parameters(recurse=False))
    assert model.training  # the dry run leaves the mode as it was
    for off in (replace(evaluator.config, freeze_front=False), replace(evaluator.config, pretrain_epochs=0)):
        assert pretrained_module.freeze_front(evaluator.build_model(None, 8, (3, 16, 16, 16)), off,
                                              (3, 16, 16, 16)) == []


@pytest.mark.parametrize("cell", ["double_attention", None])
def test_a_trial_trains_only_what_follows_the_frozen_front(tmp_path, cell):
    config = tiny_config(tmp_path, epochs=2)  # cells at conv3:0: front = conv1, conv2, conv3's first unit
    state = ProxyEvaluator(config).pretrained_backbone()
    result = ProxyEvaluator(config).evaluate(cell, checkpoint_dir=tmp_path / "trial")
    assert result.status == "ok", result.reason
    trained = backbone_only(torch.load(tmp_path / "trial" / "checkpoint.pt", weights_only=True)["model"])
    front = [k for k in state if k.startswith(("conv1.", "conv2.", "conv3.units.0."))]
    after = [k for k in state if k.startswith(("conv4.", "head.")) and state[k].is_floating_point()]
    assert front and after
    assert all(torch.equal(trained[k], state[k]) for k in front)  # weights and BatchNorm statistics
    assert not any(torch.equal(trained[k], state[k]) for k in after if not k.endswith("num_batches_tracked"))
    unfrozen = ProxyEvaluator(replace(config, freeze_front=False)).evaluate(cell, checkpoint_dir=tmp_path / "all")
    trained_all = backbone_only(torch.load(tmp_path / "all" / "checkpoint.pt", weights_only=True)["model"])
    assert unfrozen.status == "ok" and not torch.equal(trained_all["conv1.units.0.conv.weight"],
                                                      state["conv1.units.0.conv.weight"])
