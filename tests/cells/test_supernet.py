"""The supernet cell: one-hot architecture weights reproduce the cell cells.build makes (with the same weights), and
every derived cell validates and belongs to the space."""
import math

import numpy as np
import pytest
import torch

from attnas.cells import build, create_backbone
from attnas.cells.errors import CellBuildError
from attnas.cells.insert import inserted_cells
from attnas.cells.supernet import (
    PAIR,
    SupernetCell,
    candidates,
    derivation_of,
    insert_supernet,
    supernet_cells,
)
from attnas.search_space import CellSpec, SearchSpace, load_space

# Three slots, attribute choices on every op, two gather dims: multi-node cells of every kind.
RICH = SearchSpace.from_yaml("""
name: rich
max_nodes: 3
widths: [0.5, 1.0]
ops:
  dot_attention: {dim: [spatial, temporal], similarity: [softmax, dot], heads: [1, 2]}
  map_attention: {dim: [temporal, channel], gate: [sigmoid, softmax], pooling: [avg_max], kernel: [3], reduction: [2]}
  gather: {dim: [spatial, spatiotemporal], descriptors: [0.5]}
  distribute: {}
  combine: {mode: [add, mul]}
""")
CHANNELS = 8


def _randomise_norm(cell) -> None:
    with torch.no_grad():
        cell.norm.weight.uniform_(0.5, 1.5)
        cell.norm.bias.uniform_(-1.0, 1.0)
        cell.norm.running_mean.uniform_(-0.5, 0.5)
        cell.norm.running_var.uniform_(0.5, 2.0)


@pytest.fixture(scope="module")
def rich_supernet():
    torch.manual_seed(0)
    net = SupernetCell(RICH, CHANNELS, width=0.5)
    _randomise_norm(net)
    return net.eval()


def _rich_specs():
    rng = np.random.default_rng(3)
    specs = []
    while len(specs) < 12:
        spec = RICH.sample(rng)
        if spec.width == 0.5 and all(len(spec.consumers(n.name)) == 1 for n in spec.nodes if n.op == "gather"):
            specs.append(spec)
    hand = [
        {"nodes": [{"name": "g", "op": "gather", "inputs": {"x": "input"}, "dim": "spatiotemporal",
                    "descriptors": 0.5},
                   {"name": "d", "op": "distribute", "inputs": {"bag": "g", "x": "input"}, "dim": "spatiotemporal"},
                   {"name": "m", "op": "map_attention", "inputs": {"x": "d"}, "dim": "channel", "gate": "softmax",
                    "pooling": "avg_max", "reduction": 2}]},
        {"nodes": [{"name": "a", "op": "dot_attention", "inputs": {"query": "input", "key": "input"},
                    "dim": "temporal", "similarity": "dot", "heads": 2},
                   {"name": "b", "op": "map_attention", "inputs": {"x": "input"}, "dim": "temporal",
                    "gate": "sigmoid", "pooling": "avg_max", "kernel": 3},
                   {"name": "c", "op": "combine", "inputs": {"a": "b", "b": "input"}, "mode": "mul"}]},
        {"nodes": [{"name": "a", "op": "dot_attention", "inputs": {"query": "input", "key": "input"},
                    "dim": "spatial", "similarity": "softmax", "heads": 1},
                   {"name": "b", "op": "dot_attention", "inputs": {"query": "a", "key": "input"},
                    "dim": "temporal", "similarity": "softmax", "heads": 1}]},
    ]
    specs += [CellSpec.from_nodes(h["nodes"], width=0.5) for h in hand]
    return specs


def test_candidates_enumerate_every_attribute_choice():
    listed = candidates(RICH)
    ops = [c.op for c in listed]
    assert ops.count("dot_attention") == 2 * 2 * 2
    assert ops.count("map_attention") == 2 * 1 * 1 * 1 + 2 * 1 * 1  # temporal (with kernel), channel
    assert ops.count(PAIR) == 2 and ops.count("combine") == 2
    assert "gather" not in ops and "distribute" not in ops
    single = SearchSpace.from_yaml("name: s\nmax_nodes: 1\nwidths: [0.25]\nops:\n  gather: {dim: [spatial]}\n"
                                   "  distribute: {}\n  combine: {}\n")
    assert [c.op for c in candidates(single)] == ["combine"]  # a pair needs two nodes


@pytest.mark.parametrize("index", range(15))
def test_one_hot_supernet_equals_the_built_cell(rich_supernet, index):
    spec = _rich_specs()[index]
    net = rich_supernet
    net.fix(derivation_of(spec, net.candidates))
    derived = net.derive()
    assert derived.same_cell(spec)
    cell = net.derived_cell().eval()
    reference = build(derived, CHANNELS).eval()
    reference.load_state_dict(cell.state_dict())  # the weights copied out of the supernet, into cells.build's cell
    x = torch.randn(2, CHANNELS, 4, 5, 6, generator=torch.Generator().manual_seed(index))
    with torch.no_grad():
        expected = reference(x)
        got = net(x)
    assert (expected - x).abs().max() > 1e-2  # the cell does something, so a wrong mix would show
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_one_hot_equality_has_multi_node_cells():
    sizes = [len(spec.nodes) for spec in _rich_specs()]
    assert max(sizes) == 3 and sizes.count(1) < len(sizes)


def test_wrong_weights_are_detected(rich_supernet):
    """The equality test can fail: the cell built with another candidate's weights differs."""
    spec = _rich_specs()[-1]
    net = rich_supernet
    net.fix(derivation_of(spec, net.candidates))
    reference = build(net.derive(), CHANNELS).eval()
    state = net.derived_cell().state_dict()
    state["ops.n1.q.weight"] = state["ops.n1.q.weight"] + 0.5
    reference.load_state_dict(state)
    x = torch.randn(2, CHANNELS, 4, 5, 6)
    with torch.no_grad():
        assert (reference(x) - net(x)).abs().max() > 1e-3


@pytest.mark.parametrize("space_name", ["small", "rich", "pairs"])
def test_derived_cells_validate_and_belong_to_the_space(space_name):
    space = {"small": load_space("small"), "rich": RICH, "pairs": SearchSpace.from_yaml(
        "name: pairs\nmax_nodes: 3\nwidths: [0.25]\nops:\n  gather: {dim: [spatial, temporal]}\n  distribute: {}\n"
        "  map_attention: {dim: [channel]}\n")}[space_name]
    torch.manual_seed(0)
    net = SupernetCell(space, 8)
    seen = set()
    for seed in range(40):
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in net.architecture_parameters():
                p.copy_(torch.randn(p.shape, generator=generator) * 3)
        spec = net.derive()
        space.check(spec)
        assert len(spec.nodes) <= space.max_nodes
        seen.add(spec.hash)
    assert len(seen) > 10


def test_derivation_keeps_the_most_probable_pairs_within_max_nodes():
    space = SearchSpace.from_yaml("name: p\nmax_nodes: 3\nwidths: [0.25]\nops:\n  gather: {dim: [spatial]}\n"
                                  "  distribute: {}\n  map_attention: {dim: [channel]}\n")
    net = SupernetCell(space, 8)
    assert [c.op for c in net.candidates] == [PAIR, "map_attention"]
    with torch.no_grad():
        net.depth_logits.copy_(torch.tensor([0.0, 5.0, 0.0]))  # two slots
        net.op_logits[0].copy_(torch.tensor([2.0, 0.0]))
        net.op_logits[1].copy_(torch.tensor([4.0, 0.0]))
    # Both slots prefer the pair, but two pairs are four nodes: the slot with the larger gain (slot 2) keeps it.
    spec = net.derive()
    assert [n.op for n in spec.nodes] == ["map_attention", "gather", "distribute"]
    assert net.derivation()[1].candidate == 0 and net.derivation()[0].candidate == 1


def test_architecture_weights_record_shape():
    net = SupernetCell(load_space("small"), 8)
    record = net.architecture_weights()
    assert record["format"] == 1 and record["width"] == 0.25
    assert len(record["depth"]) == 2 and math.isclose(sum(record["depth"]), 1.0, abs_tol=1e-5)
    assert [s["sources"] for s in record["slots"]] == [["input"], ["input", "slot1"]]
    for slot in record["slots"]:
        assert len(slot["ops"]) == len(record["candidates"])
        assert math.isclose(sum(slot["ops"]), 1.0, abs_tol=1e-5)
        assert len(slot["edges"]) == 2 and all(math.isclose(sum(row), 1.0, abs_tol=1e-5) for row in slot["edges"])


def test_gradients_reach_every_architecture_parameter():
    torch.manual_seed(0)
    net = SupernetCell(load_space("small"), 8)
    _randomise_norm(net)
    net(torch.randn(2, 8, 3, 4, 4)).square().sum().backward()
    for name, p in [("op", net.op_logits[1]), ("edge", net.edge_logits[1]), ("depth", net.depth_logits)]:
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_insert_supernet_into_the_proxy_backbone():
    torch.manual_seed(0)
    model = create_backbone("proxy_i3d", num_classes=5, stem_width=8, widths=(8, 16, 16), input_shape=(3, 8, 16, 16))
    cells = insert_supernet(model, load_space("small"), ["conv2:0"])
    assert supernet_cells(model) == cells and cells[0].channels == 8
    assert model(torch.randn(2, 3, 8, 16, 16)).shape == (2, 5)


def test_insert_supernet_places_cells_as_insert_does():
    """One insertion routine (issue 15): the supernet follows its block's memory format and train/eval mode, and sits
    where cells.insert puts a cell, deepest block first."""
    model = create_backbone("proxy_i3d", num_classes=5, stem_width=8, widths=(8, 16, 16),
                            input_shape=(3, 8, 16, 16)).eval()
    cells = insert_supernet(model, load_space("small"), ["conv3", "conv3:0"])
    assert [type(c) for c in inserted_cells(model).values()] == [SupernetCell, SupernetCell]
    assert cells == [model.conv3.block.units[0].cell, model.conv3.cell]
    for cell in cells:
        assert not cell.training
        assert cell.project.weight.is_contiguous(memory_format=torch.channels_last_3d)


def test_supernet_rejects_a_width_outside_the_space():
    with pytest.raises(CellBuildError, match="width 0.5"):
        SupernetCell(load_space("small"), 8, width=0.5)


def test_gumbel_forward_runs_exactly_one_sampled_cell():
    """A sampled forward equals the one-hot forward of the cell drawn (the same noise drawn again)."""
    torch.manual_seed(0)
    net = SupernetCell(RICH, CHANNELS, width=0.5)
    _randomise_norm(net)
    with torch.no_grad():
        for p in net.architecture_parameters():
            p.normal_()
    net.gumbel_tau = 0.5
    x = torch.randn(2, CHANNELS, 4, 5, 6)
    net.eval()  # BatchNorm on running statistics, so both forwards see the same normalisation
    torch.manual_seed(7)
    ops, edges, depth = net.sampled(0.5)
    used = int(torch.argmax(depth)) + 1
    chosen = [int(torch.argmax(o)) for o in ops[:used]]
    net.train()
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm3d):
            module.eval()
    torch.manual_seed(7)
    with torch.no_grad():
        sampled = net(x)
    from attnas.cells.supernet import DerivedNode

    derivation = []
    for slot in range(used):
        candidate = net.candidates[chosen[slot]]
        first, second = int(torch.argmax(edges[slot][0])), int(torch.argmax(edges[slot][1]))
        sources = (first,) if candidate.arity == 1 else (
            tuple(sorted((first, second))) if candidate.commutative else (first, second))
        derivation.append(DerivedNode(slot=slot + 1, candidate=chosen[slot], sources=sources))
    net.fix(derivation)
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(sampled, net(x), atol=1e-5, rtol=1e-5)
