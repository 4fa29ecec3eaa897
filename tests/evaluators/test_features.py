"""The frozen-front feature cache: same results as the uncached path, built once, and each fallback named."""
from dataclasses import replace

import numpy as np
import pytest

from attnas.evaluators import ProxyEvaluator
from attnas.evaluators import features as features_module
from tests.evaluators.test_proxy import tiny_config


def curves_close(a, b, tolerance=1e-4):
    assert len(a.curve) == len(b.curve)
    for left, right in zip(a.curve, b.curve):
        assert left.keys() == right.keys()
        for key in left:
            if isinstance(left[key], float):
                assert abs(left[key] - right[key]) <= tolerance, (key, left, right)
            else:
                assert left[key] == right[key], (key, left, right)


@pytest.mark.parametrize("cell, at", [("non_local", ("conv3:0",)), ("double_attention", ("conv2:0", "conv3")),
                                      (None, ("conv2",))])
def test_cached_trial_equals_the_uncached_trial(tmp_path, cell, at):
    config = tiny_config(tmp_path, at=at, epochs=2)
    cached = ProxyEvaluator(config).evaluate(cell, test=True)
    uncached = ProxyEvaluator(replace(config, feature_cache=False)).evaluate(cell, test=True)
    assert cached.status == uncached.status == "ok", (cached.reason, uncached.reason)
    assert cached.feature_path == "cached"
    assert uncached.feature_path == "clips: feature_cache is off"
    curves_close(cached, uncached)
    assert abs(cached.test_top1 - uncached.test_top1) <= 1e-4
    assert cached.curve[0]["train_loss"] != cached.curve[1]["train_loss"]  # it trained


def test_features_are_computed_once_per_machine(tmp_path, monkeypatch):
    config = tiny_config(tmp_path)
    first = ProxyEvaluator(config).evaluate("non_local")
    entries = [p for p in (tmp_path / "cache" / "features").iterdir() if (p / "meta.json").exists()]
    assert len(entries) == 2  # train and validation

    def no_front(*args, **kwargs):
        raise AssertionError("the front ran again")

    monkeypatch.setattr(features_module, "_write_features", no_front)
    again = ProxyEvaluator(replace(config, seed=5)).evaluate("squeeze_excitation")
    assert first.status == again.status == "ok" and again.feature_path == "cached"
    stored = np.load(entries[0] / "features.npy", mmap_mode="r")
    assert stored.dtype == np.float32 and stored.ndim == 5


@pytest.mark.parametrize("overrides, reason", [
    ({"freeze_front": False}, "clips: the front is not frozen"),
    ({"pretrain_epochs": 0}, "clips: the front is not frozen"),
    ({"augment": "flip"}, "clips: augmentation is on (flip)"),
    ({"feature_cache_budget_mb": 0.01}, "clips: the features need 0 MB, over the disk budget of 0 MB"),
])
def test_each_fallback_runs_on_clips_and_says_why(tmp_path, overrides, reason):
    result = ProxyEvaluator(tiny_config(tmp_path, epochs=1, **overrides)).evaluate("non_local")
    assert result.status == "ok", result.reason
    assert result.feature_path.startswith(reason), result.feature_path
    assert not (tmp_path / "cache" / "features").exists() or not any((tmp_path / "cache" / "features").iterdir())


def test_augmentation_changes_training_and_repeats_exactly(tmp_path):
    plain = ProxyEvaluator(tiny_config(tmp_path, epochs=1, feature_cache=False)).evaluate("non_local")
    flipped = [ProxyEvaluator(tiny_config(tmp_path, epochs=1, augment="flip")).evaluate("non_local")
               for _ in range(2)]
    assert flipped[0].curve == flipped[1].curve
    assert flipped[0].curve[0]["train_loss"] != plain.curve[0]["train_loss"]


def test_intermediate_epochs_score_a_fixed_subset_and_the_last_the_whole_split(tmp_path):
    full = ProxyEvaluator(tiny_config(tmp_path, validation_subset=0)).evaluate("non_local")
    subset = ProxyEvaluator(tiny_config(tmp_path, validation_subset=10)).evaluate("non_local")
    assert [e["validated_on"] for e in full.curve] == [24, 24, 24]
    assert [e["validated_on"] for e in subset.curve] == [10, 10, 24]
    # validation does not touch training: same losses, and the reward is the whole split's
    assert [e["train_loss"] for e in subset.curve] == [e["train_loss"] for e in full.curve]
    assert subset.top1 == full.top1 and subset.curve[-1] == {**full.curve[-1]}
    assert any(s["loss"] != f["loss"] for s, f in zip(subset.curve[:2], full.curve[:2]))


def test_other_weights_or_other_clips_get_their_own_features(tmp_path):
    def entries():
        return {p.name for p in (tmp_path / "cache" / "features").iterdir() if (p / "meta.json").exists()}

    config = tiny_config(tmp_path, epochs=1)
    ProxyEvaluator(config).evaluate("non_local")
    first = entries()
    ProxyEvaluator(replace(config, pretrain_seed=5)).evaluate("non_local")  # another pretrained front
    second = entries()
    ProxyEvaluator(replace(config, data=replace(config.data, seed=9))).evaluate("non_local")  # other clips
    third = entries()
    assert len(first) == 2 and len(second) == 4 and len(third) == 6
