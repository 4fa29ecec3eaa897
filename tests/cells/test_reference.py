"""Zoo cells built from their specs against hand-written blocks from the papers (cells/reference.py), same weights.

The BatchNorm scale is set to non-zero random values first: at initialisation both sides are the identity, and the
comparison would pass whatever the attention computed.
"""
import pytest
import torch

from attnas.cells import build
from attnas.cells.reference import CBAMBlock, DoubleAttentionBlock, NonLocalBlock, SqueezeExcitationBlock
from attnas.search_space import load_zoo

CHANNELS = 16


def randomise(module: torch.nn.Module, seed: int) -> None:
    """Random weights everywhere, including BatchNorm scale, shift and running statistics."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in list(module.parameters()) + [b for b in module.buffers() if b.is_floating_point()]:
            tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.5)
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_var.abs_().add_(0.5)


def copy_weights(cell: torch.nn.Module, reference: torch.nn.Module, names: dict[str, str]) -> None:
    """Load the cell's tensors into the reference under the given name mapping (cell prefix -> reference prefix)."""
    state = cell.state_dict()
    mapped = {}
    for key, value in state.items():
        prefix = next(p for p in names if key == p or key.startswith(p + "."))
        mapped[names[prefix] + key[len(prefix):]] = value
    reference.load_state_dict(mapped, strict=True)


TAIL = {"project": "w_z", "norm": "bn"}


def compare(cell, reference, shape, *, train: bool) -> None:
    cell.train(train)
    reference.train(train)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    expected = reference(x)
    got = cell(x)
    assert (expected - x).abs().max() > 1e-2  # the block does something, so equality means something
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("shape", [(2, CHANNELS, 4, 5, 6), (2, CHANNELS, 1, 7, 5)])
def test_non_local_is_wang_embedded_gaussian(shape, train):
    cell = build(load_zoo("non_local"), CHANNELS)
    randomise(cell, 0)
    reference = NonLocalBlock(CHANNELS, cell.inner_channels)
    copy_weights(cell, reference, {"ops.attend.q": "theta", "ops.attend.k": "phi", "ops.attend.v": "g", **TAIL})
    compare(cell, reference, shape, train=train)


@pytest.mark.parametrize("association", ["left", "right"])
@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("shape", [(2, CHANNELS, 4, 5, 6), (2, CHANNELS, 1, 7, 5)])
def test_double_attention_is_a2_eq6(shape, train, association):
    cell = build(load_zoo("double_attention"), CHANNELS)
    randomise(cell, 0)
    descriptors = cell.ops["gather"].theta.out_channels
    assert descriptors == cell.inner_channels == CHANNELS // 4  # the paper's m = n = C / 4
    reference = DoubleAttentionBlock(CHANNELS, cell.inner_channels, descriptors, association=association)
    copy_weights(cell, reference, {"ops.gather.phi": "phi", "ops.gather.theta": "theta",
                                   "ops.distribute.rho": "rho", **TAIL})
    compare(cell, reference, shape, train=train)


def test_left_and_right_association_agree():
    left = DoubleAttentionBlock(CHANNELS, 4, 3, association="left")
    randomise(left, 3)
    right = DoubleAttentionBlock(CHANNELS, 4, 3, association="right")
    right.load_state_dict(left.state_dict())
    left.eval()
    right.eval()
    x = torch.randn(2, CHANNELS, 3, 4, 5)
    assert (left(x) - x).abs().max() > 1e-2
    torch.testing.assert_close(left(x), right(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("train", [False, True])
def test_squeeze_excitation_is_se(train):
    spec = load_zoo("squeeze_excitation")
    cell = build(spec, CHANNELS)
    randomise(cell, 0)
    reduction = spec.node_map["excite"].attr("reduction")
    reference = SqueezeExcitationBlock(CHANNELS, cell.inner_channels, reduction)
    copy_weights(cell, reference, {"ops.excite.v": "v", "ops.excite.mlp.0": "fc1", "ops.excite.mlp.2": "fc2",
                                   **TAIL})
    compare(cell, reference, (2, CHANNELS, 3, 5, 4), train=train)


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("shape", [(2, CHANNELS, 3, 9, 8), (1, CHANNELS, 1, 4, 5)])
def test_cbam_is_channel_then_spatial_gate(shape, train):
    spec = load_zoo("cbam")
    cell = build(spec, CHANNELS)
    randomise(cell, 0)
    reference = CBAMBlock(CHANNELS, cell.inner_channels, spec.node_map["channel"].attr("reduction"),
                          spec.node_map["spatial"].attr("kernel"))
    copy_weights(cell, reference, {
        "ops.channel.v": "channel_v", "ops.channel.mlp.0": "channel_fc1", "ops.channel.mlp.2": "channel_fc2",
        "ops.spatial.v": "spatial_v", "ops.spatial.conv": "spatial_conv", **TAIL})
    compare(cell, reference, shape, train=train)
