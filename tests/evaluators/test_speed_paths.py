"""The paths trials take on GPU workers, exercised on CPU: autocast (bf16, fp16 with a gradient scaler), features
held on the device; and the threads a trial runs with."""
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from attnas.evaluators import ProxyEvaluator
from attnas.evaluators.data.synthetic import TaskData
from attnas.evaluators.features import batch_tensors, on_device
from tests.evaluators.test_features import curves_close
from tests.evaluators.test_proxy import numbers, tiny_config


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_trains_close_to_fp32_and_the_cached_path_still_equals_the_uncached(tmp_path, precision):
    config = tiny_config(tmp_path, epochs=2, pretrain_epochs=0, feature_cache=False)
    full = ProxyEvaluator(config).evaluate("non_local")
    reduced = ProxyEvaluator(replace(config, precision=precision)).evaluate("non_local")
    assert full.status == reduced.status == "ok", reduced.reason
    first = [e["train_loss"] for e in full.curve], [e["train_loss"] for e in reduced.curve]
    assert first[0] != first[1]  # autocast did run in reduced precision
    # the first epoch's loss agrees (later, a skipped fp16 step at an overflowing initial scale moves the path)
    assert abs(first[0][0] - first[1][0]) < 0.02 * first[0][0] and all(np.isfinite(first[1])), first
    warm = tiny_config(tmp_path, epochs=2, precision=precision)
    cached = ProxyEvaluator(warm).evaluate("non_local")
    uncached = ProxyEvaluator(replace(warm, feature_cache=False)).evaluate("non_local")
    assert cached.feature_path == "cached"
    curves_close(cached, uncached)


def test_fp16_resume_restores_the_gradient_scaler(tmp_path):
    config = tiny_config(tmp_path, epochs=3, precision="fp16")
    uninterrupted = ProxyEvaluator(config).evaluate("double_attention")
    folder = tmp_path / "trial"
    ProxyEvaluator(config).evaluate("double_attention", checkpoint_dir=folder, report=lambda epoch, _: epoch == 1)
    assert "scaler" in torch.load(folder / "checkpoint.pt", weights_only=True)
    resumed = ProxyEvaluator(config).evaluate("double_attention", checkpoint_dir=folder)
    assert resumed.resumed_from == 1 and numbers(resumed) == numbers(uninterrupted)


def test_features_held_on_the_device_give_the_same_batches():
    features = np.random.default_rng(0).standard_normal((10, 4, 2, 3, 3)).astype(np.float32)
    data = TaskData(features, np.arange(10) % 3, {})
    held = on_device(data, torch.device("cpu"))
    batch = np.array([7, 2, 5])
    for channels_last in (False, True):
        x, y = batch_tensors(data, batch, torch.device("cpu"), pixels=False, channels_last=channels_last)
        hx, hy = batch_tensors(held, batch, torch.device("cpu"), pixels=False, channels_last=channels_last)
        assert torch.equal(x, hx) and torch.equal(y, hy)
        assert x.is_contiguous(memory_format=torch.channels_last_3d) == channels_last


@pytest.mark.parametrize("threads", [1, None])
def test_a_trial_runs_with_the_threads_it_was_given(tmp_path, threads):
    seen = []
    config = tiny_config(tmp_path, epochs=1, threads=threads)
    result = ProxyEvaluator(config).evaluate("non_local", report=lambda *_: seen.append(torch.get_num_threads()))
    assert result.status == "ok"
    assert seen == [threads or len(os.sched_getaffinity(0))]


@pytest.mark.parametrize("given, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_openmp_threads_sleep_at_barriers_unless_the_user_says_otherwise(given, expected):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given:
        env["OMP_WAIT_POLICY"] = given
    code = "import os, attnas.evaluators, torch; print(os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == expected
