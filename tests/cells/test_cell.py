"""build(spec, channels): wiring, identity at initialisation, every sampled cell builds and trains, clear errors."""
import numpy as np
import pytest
import torch

from attnas.cells import OPS, build
from attnas.cells.errors import CellBuildError, CellInputError
from attnas.search_space import CellSpec, load_space, load_zoo, zoo_names

CHANNELS = 16


def sampled_specs(count=50, seed=0):
    space = load_space("default")
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(count)]


SAMPLED = sampled_specs()


@pytest.mark.parametrize("name", zoo_names())
@pytest.mark.parametrize("t", [1, 3])
def test_zoo_cell_is_identity_at_init(name, t):
    cell = build(load_zoo(name), CHANNELS)
    x = torch.randn(2, CHANNELS, t, 5, 4)
    assert torch.equal(cell(x), x)
    cell.eval()
    assert torch.equal(cell(x), x)


def test_sampled_cells_are_identity_at_init_then_build_run_and_train():
    for index, spec in enumerate(SAMPLED):
        cell = build(spec, CHANNELS)
        t = 1 if index % 5 == 0 else 3
        x = torch.randn(2, CHANNELS, t, 4, 5, requires_grad=True)
        y = cell(x)
        assert torch.equal(y, x), spec
        torch.nn.init.normal_(cell.norm.weight)   # now the attention reaches the output
        y = cell(x)
        assert y.shape == x.shape and (y - x).abs().max() > 1e-4, spec
        y.square().sum().backward()
        assert cell.project.weight.grad.abs().sum() > 0, spec
        for key, parameter in cell.named_parameters():
            assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), (spec, key)


@pytest.mark.parametrize("dim", ["spatial", "temporal", "spatiotemporal"])
def test_gather_distribute_cells_on_every_dim(dim):
    # The default space's sampler has not produced a gather in our samples, so these cells are written by hand.
    spec = CellSpec.from_yaml(f"""
width: 0.5
nodes:
  g: {{op: gather, inputs: {{x: input}}, dim: {dim}, descriptors: 0.5}}
  d: {{op: distribute, inputs: {{bag: g, x: input}}, dim: {dim}}}
  h: {{op: gather, inputs: {{x: d}}, dim: {dim}, descriptors: 1.0}}
  e: {{op: distribute, inputs: {{bag: h, x: d}}, dim: {dim}}}
  m: {{op: combine, inputs: {{a: input, b: e}}, mode: mul}}
output: [d, m]
""")
    cell = build(spec, CHANNELS)
    assert cell.ops["g"].theta.out_channels == 4 and cell.ops["h"].theta.out_channels == 8
    for t in (1, 3):
        x = torch.randn(2, CHANNELS, t, 4, 5, requires_grad=True)
        assert torch.equal(cell(x), x)
    torch.nn.init.normal_(cell.norm.weight)
    y = cell(x)
    assert (y - x).abs().max() > 1e-4
    y.square().sum().backward()
    assert cell.ops["h"].phi.weight.grad.abs().sum() > 0


def test_cell_computes_residual_of_summed_outputs():
    spec = CellSpec.from_yaml("""
width: 0.5
nodes:
  a: {op: map_attention, inputs: {x: input}, dim: temporal, gate: softmax, kernel: 3}
  b: {op: dot_attention, inputs: {query: input, key: a}, dim: spatial, similarity: scaled_softmax, heads: 2}
  m: {op: combine, inputs: {a: input, b: b}, mode: mul}
output: [a, m]
""")
    cell = build(spec, CHANNELS).eval()
    assert cell.inner_channels == 8
    with torch.no_grad():
        cell.norm.weight.normal_()
        cell.norm.bias.normal_()
        cell.norm.running_mean.normal_()
    x = torch.randn(2, CHANNELS, 3, 4, 5)
    a = cell.ops["a"](x)
    b = cell.ops["b"](x, a)                 # query from the input, key from node a
    m = cell.ops["m"](x, b)
    expected = x + cell.norm(cell.project(a + m))
    torch.testing.assert_close(cell(x), expected, atol=0, rtol=0)
    assert cell.ops["b"].q.in_channels == CHANNELS and cell.ops["b"].k.in_channels == 8
    assert cell.ops["m"].project_a.in_channels == CHANNELS


def test_state_dict_keys_are_readable():
    keys = set(build(load_zoo("double_attention"), CHANNELS).state_dict())
    assert {"ops.gather.phi.weight", "ops.gather.theta.weight", "ops.distribute.rho.weight", "project.weight",
            "norm.weight", "norm.running_mean"} <= keys
    assert "project.bias" not in keys
    cell = build(load_zoo("double_attention"), 64)
    assert cell.ops["gather"].theta.out_channels == 16 and cell.ops["distribute"].rho.out_channels == 16


def test_descriptor_and_inner_width_rounding():
    spec = CellSpec.from_yaml("""
width: 0.25
nodes:
  g: {op: gather, inputs: {x: input}, dim: spatial, descriptors: 0.5}
  d: {op: distribute, inputs: {bag: g, x: input}, dim: spatial}
output: [d]
""")
    cell = build(spec, 6)                   # c = round(1.5) = 2, n = max(1, round(1.0)) = 1
    assert cell.inner_channels == 2
    assert cell.ops["g"].theta.out_channels == 1 == cell.ops["d"].rho.out_channels
    assert build(spec, 1).inner_channels == 1


@pytest.mark.parametrize("channels", [0, -3, 2.0, True, "16"])
def test_channels_must_be_a_positive_int(channels):
    with pytest.raises(CellBuildError, match="channels: expected a positive integer"):
        build(load_zoo("non_local"), channels)


def test_heads_that_do_not_divide_the_inner_width_still_build():
    """Issue 20: heads=2 at an odd inner width used to fail to build; heads are now ceil(c / heads) wide."""
    spec = CellSpec.from_yaml("""
width: 0.25
nodes:
  n: {op: dot_attention, inputs: {query: input, key: input}, dim: spatial, heads: 2}
output: [n]
""")
    for channels, inner in [(8, 2), (12, 3), (4, 1)]:
        cell = build(spec, channels)
        assert cell.inner_channels == inner and cell.op("n").q.out_channels == inner
        torch.nn.init.normal_(cell.norm.weight)
        x = torch.randn(2, channels, 3, 4, 5)
        y = cell(x)
        assert y.shape == x.shape and torch.isfinite(y).all() and (y - x).abs().max() > 1e-4


@pytest.mark.parametrize("name", ["keys", "items", "values", "forward", "training", "update", "pop", "to", "cuda",
                                  "state_dict", "_modules", "__init__"])
def test_node_named_after_a_module_attribute_builds_runs_and_keeps_its_name(name):
    """Issue 20: any name a spec accepts builds, including names nn.ModuleDict uses as attributes."""
    spec = CellSpec.from_yaml(f"""
width: 0.5
nodes:
  {name}: {{op: map_attention, inputs: {{x: input}}, dim: temporal, gate: softmax, kernel: 3}}
  other: {{op: combine, inputs: {{a: input, b: {name}}}, mode: mul}}
output: [{name}, other]
""")
    cell = build(spec, CHANNELS).eval()
    assert cell.nodes == (name, "other")
    assert isinstance(cell.op(name), OPS["map_attention"]) and isinstance(cell.op("other"), OPS["combine"])
    assert f"ops.node:{name}.v.weight" in cell.state_dict() and "ops.other.project_a.weight" in cell.state_dict()
    with torch.no_grad():
        cell.norm.weight.normal_()
    x = torch.randn(2, CHANNELS, 3, 4, 5)
    a = cell.op(name)(x)
    torch.testing.assert_close(cell(x), x + cell.norm(cell.project(a + cell.op("other")(x, a))), atol=0, rtol=0)
    again = build(spec, CHANNELS)
    again.load_state_dict(cell.state_dict(), strict=True)


def test_forward_rejects_wrong_channels_and_non_5d_input():
    cell = build(load_zoo("non_local"), CHANNELS)
    with pytest.raises(CellInputError, match="expected 16 channels, got 8"):
        cell(torch.randn(1, 8, 2, 3, 3))
    with pytest.raises(CellInputError, match=r"expected a 5-D \(N, C, T, H, W\) tensor, got shape \(1, 16, 3, 3\)"):
        cell(torch.randn(1, CHANNELS, 3, 3))


def test_build_rejects_non_specs():
    with pytest.raises(CellBuildError, match="expected a CellSpec"):
        build(load_zoo("non_local").to_dict(), CHANNELS)
