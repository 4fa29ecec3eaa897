"""Issue 20, point 1: every cell of a space builds and runs at every channel count a backbone may offer.

The design promises that every sampled or mutated cell builds; a cell's inner width is round(width x C), so this
must hold for any C, not only the even ones the other tests use.
"""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attnas.cells import build
from attnas.cells.supernet import SupernetCell, derivation_of
from attnas.search_space import CellSpec, SearchSpace, load_space, load_zoo, zoo_names

SPACES = {name: load_space(name) for name in ("small", "default")}
CHANNELS = range(1, 65)


def runs(spec, channels: int) -> None:
    """Build `spec` at `channels`, let the attention reach the output, and check a forward and backward pass."""
    cell = build(spec, channels)
    torch.nn.init.constant_(cell.norm.weight, 1.0)
    x = torch.randn(2, channels, 2, 3, 3, requires_grad=True)
    y = cell(x)
    assert y.shape == x.shape and torch.isfinite(y).all(), (spec.to_dict(), channels)
    y.square().sum().backward()
    assert torch.isfinite(x.grad).all() and cell.project.weight.grad is not None, (spec.to_dict(), channels)


@given(name=st.sampled_from(sorted(SPACES)), seed=st.integers(0, 2**32 - 1), channels=st.integers(1, 64))
@settings(max_examples=300, deadline=None)
def test_sampled_and_mutated_cells_build_and_run_at_any_channel_count(name, seed, channels):
    space = SPACES[name]
    rng = np.random.default_rng(seed)
    cell = space.sample(rng)
    runs(cell, channels)
    runs(space.mutate(cell, rng), channels)


def multi_head_cells(count=12, seed=0):
    """Cells of the default space with a two-head dot_attention: the ones that failed at odd inner widths."""
    rng = np.random.default_rng(seed)
    cells = []
    while len(cells) < count:
        cell = SPACES["default"].sample(rng)
        if any(node.op == "dot_attention" and node.attr("heads") == 2 for node in cell.nodes):
            cells.append(cell)
    return cells


@pytest.mark.parametrize("cell", multi_head_cells() + [load_zoo(name) for name in zoo_names()],
                         ids=lambda cell: cell.name or cell.hash)
def test_multi_head_and_zoo_cells_build_and_run_at_every_channel_count_1_to_64(cell):
    for channels in CHANNELS:
        runs(cell, channels)


@pytest.mark.parametrize("channels", [3, 12, 20])
def test_default_space_supernet_builds_at_odd_inner_widths(channels):
    """The supernet holds two-head candidates next to one-head ones, all at one inner width (here odd)."""
    supernet = SupernetCell(SPACES["default"], channels, width=0.25)
    assert supernet.inner_channels % 2 == 1
    x = torch.randn(1, channels, 2, 3, 3)
    assert supernet(x).shape == x.shape


def test_one_hot_supernet_equals_its_derived_two_head_cell_at_an_odd_inner_width():
    space = SearchSpace.from_yaml("""
name: heads
max_nodes: 2
widths: [0.5]
ops:
  dot_attention: {dim: [spatial, temporal], similarity: [softmax, scaled_softmax], heads: [1, 2]}
  combine: {mode: [mul]}
""")
    spec = CellSpec.from_yaml("""
width: 0.5
nodes:
  a: {op: dot_attention, inputs: {query: input, key: input}, dim: spatial, similarity: scaled_softmax, heads: 2}
  b: {op: dot_attention, inputs: {query: a, key: input}, dim: temporal, similarity: softmax, heads: 2}
output: [b]
""")
    torch.manual_seed(0)
    supernet = SupernetCell(space, 6, width=0.5)
    assert supernet.inner_channels == 3
    torch.nn.init.uniform_(supernet.norm.weight, 0.5, 1.5)
    supernet.fix(derivation_of(spec, supernet.candidates))
    assert supernet.derive().same_cell(spec)
    cell = supernet.derived_cell().eval()
    x = torch.randn(2, 6, 3, 4, 5)
    with torch.no_grad():
        expected = cell(x)
        assert (expected - x).abs().max() > 1e-2
        torch.testing.assert_close(supernet.eval()(x), expected, atol=1e-5, rtol=1e-5)


ODD_CELL = """
# Two heads at an odd inner width (0.5 x 6 channels = 3) and node names nn.ModuleDict uses: issue 20.
width: 0.5
nodes:
  keys: {op: dot_attention, inputs: {query: input, key: input}, dim: temporal, similarity: scaled_softmax, heads: 2}
  forward: {op: map_attention, inputs: {x: keys}, dim: spatial, gate: sigmoid, pooling: avg, kernel: 3}
output: [forward]
"""


@pytest.mark.slow
def test_cli_evaluates_a_two_head_cell_with_clashing_names_at_an_odd_inner_width(tmp_path, capsys):
    """The user's path: `attnas evaluate cell.yaml --config experiment.yaml` on a proxy whose placement has 6
    channels. Before issue 20 the trial failed (heads=2 does not divide 3) and `keys` could not be built."""
    from attnas.experiments.cli import main
    from tests.experiments.tiny import write_tiny

    cell_path = tmp_path / "odd.yaml"
    cell_path.write_text(ODD_CELL)
    config = write_tiny(tmp_path, evaluator={
        "data": {"train_size": 32, "validation_size": 16, "test_size": 16, "cache_dir": str(tmp_path / "cache")},
        "epochs": 1, "batch_size": 16, "eval_batch_size": 16, "pretrain_epochs": 0, "measure_latency": False,
        "backbone_args": {"stem_width": 6, "widths": [6, 8, 8]}, "at": ["conv2:0"]})
    assert main(["evaluate", str(cell_path), "--config", config]) == 0
    out = capsys.readouterr().out
    assert CellSpec.from_yaml(ODD_CELL).hash in out and "top1" in out
