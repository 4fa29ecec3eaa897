"""cells.complexity: MACs and parameters against hand counts, the paper's cells' matmuls included; latency helper."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from attnas.cells.backbones.resnet3d import create_bottleneck_unit
from attnas.cells.cell import build
from attnas.cells.complexity import count_macs, count_params, forward_latency, measure_latency
from attnas.cells.errors import CellBuildError
from attnas.search_space import load_zoo


def test_conv3d_macs_and_params():
    conv = nn.Conv3d(4, 8, kernel_size=(3, 3, 3), padding=1, stride=(1, 2, 2))
    x = torch.zeros(2, 4, 5, 6, 7)  # output 5 x 3 x 4
    counted = count_macs(conv, x)
    assert counted.macs == 2 * (5 * 3 * 4) * 8 * (4 * 27)
    assert counted.flops == 2 * counted.macs
    assert counted.params == 8 * 4 * 27 + 8


def test_linear_macs_and_params():
    counted = count_macs(nn.Linear(10, 7), torch.zeros(3, 10))
    assert counted.macs == 3 * 10 * 7
    assert counted.params == 10 * 7 + 7


def test_bottleneck_unit_macs_and_params():
    # [1x1x1, 4; 3x3x3, 4 stride (1,2,2); 1x1x1, 16] + projection shortcut 1x1x1 stride (1,2,2), on 8 x 4 x 8 x 8.
    unit = create_bottleneck_unit(8, 4, 16, stride=(1, 2, 2))
    counted = count_macs(unit, torch.zeros(1, 8, 4, 8, 8))
    full, strided = 4 * 8 * 8, 4 * 4 * 4
    assert counted.macs == full * 8 * 4 + strided * 4 * 4 * 27 + strided * 4 * 16 + strided * 8 * 16
    conv_weights = 8 * 4 + 4 * 4 * 27 + 4 * 16 + 8 * 16
    assert counted.params == conv_weights + 2 * (4 + 4 + 16 + 16)  # BatchNorm scale and shift, no conv biases


C, T, H, W, N = 16, 3, 4, 4, 2
P, c = T * H * W, C // 4


def test_non_local_cell_macs_include_both_attention_matmuls():
    counted = count_macs(build(load_zoo("non_local"), C), torch.zeros(N, C, T, H, W))
    convs = N * P * (3 * C * c + c * C)  # theta, phi, g, and the output projection
    matmuls = N * 2 * P * P * c  # Q K^T and A V (scaled_dot_product_attention)
    assert counted.macs == convs + matmuls


def test_double_attention_cell_macs_use_left_association():
    counted = count_macs(build(load_zoo("double_attention"), C), torch.zeros(N, C, T, H, W))
    n = c  # descriptors 1.0 x c
    convs = N * P * (C * c + C * n + C * n + c * C)  # phi, theta, rho, output projection
    matmuls = N * 2 * c * n * P  # G = A B^T and Z = G V, never P x P
    assert counted.macs == convs + matmuls


@pytest.mark.parametrize("name", ["non_local", "double_attention"])
def test_cell_params(name):
    # Three 1x1x1 input convs to c channels with bias, the output conv c -> C without bias, BatchNorm(C).
    assert count_params(build(load_zoo(name), C)) == 3 * (C * c + c) + c * C + 2 * C


def test_count_params_trainable_only():
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    model[0].weight.requires_grad_(False)
    assert count_params(model) == 15 + 8
    assert count_params(model, trainable_only=True) == 3 + 8


def test_count_macs_defaults_to_the_model_input_shape_and_keeps_its_state():
    model = nn.Sequential(nn.Conv3d(3, 2, 1), nn.BatchNorm3d(2))
    model.input_shape = (3, 2, 4, 4)
    model.train()
    counted = count_macs(model, batch_size=3)
    assert counted.macs == 3 * 2 * 4 * 4 * 3 * 2
    assert model.training
    assert int(model[1].num_batches_tracked) == 0  # ran in eval mode: statistics untouched
    assert counted.macs_by_module["Global"] == counted.macs


def test_count_macs_needs_an_input_for_foreign_models():
    with pytest.raises(CellBuildError, match="no input_shape attribute; pass example_input"):
        count_macs(nn.Linear(2, 2))


def test_measure_latency_calls_warmup_plus_repeats_and_orders_quartiles():
    calls = []
    latency = measure_latency(lambda: calls.append(1), repeats=7, warmup=2)
    assert len(calls) == 9 and len(latency.samples) == 7
    assert latency.q1 <= latency.median <= latency.q3
    assert min(latency.samples) <= latency.median <= max(latency.samples)
    with pytest.raises(CellBuildError, match="repeats must be >= 1"):
        measure_latency(lambda: None, repeats=0)


def test_forward_latency_runs_in_eval_mode_and_restores_training():
    model = nn.Sequential(nn.Conv3d(3, 2, 1), nn.BatchNorm3d(2))
    modes = []
    model.register_forward_hook(lambda m, a, out: modes.append(m.training))
    model.train()
    latency = forward_latency(model, torch.zeros(1, 3, 2, 4, 4), repeats=3, warmup=1)
    assert len(latency.samples) == 3 and modes == [False] * 4 and model.training
