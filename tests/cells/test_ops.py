"""Every registered op, every dim, T = 1 and T > 1: shapes, gradients, and values against naive per-group loops."""
import dataclasses
import inspect
import itertools

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from attnas.cells.errors import CellBuildError
from attnas.cells.ops import OPS, Gather, create_op, from_groups, to_groups
from attnas.search_space import OPERATIONS

IN, C = 6, 4          # input channels, inner width
SHAPES = [(2, IN, 1, 4, 3), (2, IN, 3, 4, 3)]   # T = 1 (an image) and T > 1
EXAMPLE_VALUES = {"heads": (1, 2), "kernel": (1, 3), "reduction": (2,), "descriptors": (3,)}


def op_cases():
    """(op name, attributes) for every op and every combination of its vocabulary's attribute values."""
    for name, operation in OPERATIONS.items():
        dims = operation.attributes["dim"].values if "dim" in operation.attributes else (None,)
        for dim in dims:
            attributes = [a for a in operation.applicable(dim) if a.name != "dim"]
            choices = [a.values or EXAMPLE_VALUES[a.name] for a in attributes]
            for values in itertools.product(*choices):
                attrs = dict(zip((a.name for a in attributes), values))
                if dim is not None:
                    attrs["dim"] = dim
                if name == "distribute":   # not a spec attribute: the cell passes its gather's count
                    attrs["descriptors"] = EXAMPLE_VALUES["descriptors"][0]
                yield name, attrs


CASES = list(op_cases())


def make(name, attrs, shape, seed=0):
    """The op module and inputs for it; ports of map type get distinct tensors, a bag comes from a Gather."""
    torch.manual_seed(seed)
    op_class = OPS[name]
    in_channels = {port: IN for port in op_class.ports}
    inputs = []
    for port in op_class.ports:
        if OPERATIONS[name].ports[port] == "bag":
            gather = Gather(IN, C, dim=attrs["dim"], descriptors=attrs["descriptors"])
            in_channels[port] = C
            inputs.append(gather(torch.randn(shape)).detach().requires_grad_())
        else:
            inputs.append(torch.randn(shape, requires_grad=True))
    return create_op(name, in_channels, C, **attrs), inputs


def test_registry_matches_vocabulary():
    assert set(OPS) == set(OPERATIONS)
    for name, op_class in OPS.items():
        assert op_class.ports == tuple(OPERATIONS[name].ports)
        parameters = inspect.signature(op_class.__init__).parameters
        assert list(parameters)[1:3] == ["in_channels", "channels"]
        for attribute in OPERATIONS[name].attributes:
            assert parameters[attribute].kind is inspect.Parameter.KEYWORD_ONLY, (name, attribute)


def test_create_op_rejects_unknown_names_listing_known_ones():
    with pytest.raises(CellBuildError, match="unknown op 'dot_atention'.*dot_attention, map_attention"):
        create_op("dot_atention", IN, C)
    with pytest.raises(CellBuildError, match="Combine has no argument 'mdoe'; its arguments are: in_channels, "
                                             "channels, mode"):
        create_op("combine", IN, C, mdoe="add")   # typos are not swallowed
    assert isinstance(create_op(OPS["combine"], IN, C, mode="mul"), OPS["combine"])


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="dot_attention", channels=6, heads=0), "heads: expected a positive integer, got 0"),
    (dict(name="dot_attention", channels=4, dim="channel"), "dim: expected one of"),
    (dict(name="map_attention", channels=4, kernel=2, dim="spatial"), "kernel: expected a positive odd"),
    (dict(name="map_attention", channels=0), "channels: expected a positive integer, got 0"),
    (dict(name="combine", channels=4, mode="max"), "mode: expected one of 'add', 'mul'"),
])
def test_bad_arguments_raise_clear_errors(kwargs, message):
    name = kwargs.pop("name")
    channels = kwargs.pop("channels")
    with pytest.raises(CellBuildError, match=message):
        create_op(name, IN, channels, **kwargs)


@pytest.mark.parametrize("name, attrs", CASES, ids=[f"{n}-{'-'.join(map(str, a.values()))}" for n, a in CASES])
@pytest.mark.parametrize("shape", SHAPES, ids=["T1", "T3"])
def test_op_shapes_gradients_and_values(name, attrs, shape):
    op, inputs = make(name, attrs, shape)
    out = op(*inputs)
    n, _, t, h, w = shape
    if OPERATIONS[name].output == "map":
        assert out.shape == (n, C, t, h, w)
    else:
        groups = {"spatiotemporal": n, "spatial": n * t, "temporal": n * h * w}[attrs["dim"]]
        assert out.shape == (groups, C, attrs["descriptors"])
    torch.testing.assert_close(out, NAIVE[name](op, inputs, **attrs), atol=1e-5, rtol=1e-4)
    (out * torch.randn_like(out)).sum().backward()
    # Over a single position (temporal dim, T = 1) a softmax is constant, so some inputs rightly get no gradient.
    single_position = attrs.get("dim") == "temporal" and t == 1
    for tensor in inputs:
        assert tensor.grad is not None and torch.isfinite(tensor.grad).all()
        assert single_position or tensor.grad.abs().sum() > 0
    for key, parameter in op.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), key


@pytest.mark.parametrize("channels, heads", [(1, 2), (3, 2), (5, 2), (5, 3), (5, 4), (6, 4), (7, 8), (2, 2)])
@pytest.mark.parametrize("similarity", ["softmax", "scaled_softmax", "dot"])
@pytest.mark.parametrize("dim", ["spatial", "temporal", "spatiotemporal"])
def test_dot_attention_splits_any_inner_width_into_heads(channels, heads, similarity, dim):
    """Issue 20: heads need not divide the inner width; heads are ceil(c / heads) wide, the last ones narrower."""
    torch.manual_seed(0)
    op = create_op("dot_attention", IN, channels, dim=dim, similarity=similarity, heads=heads)
    assert op.q.out_channels == op.k.out_channels == op.v.out_channels == channels
    query, key = torch.randn(2, IN, 3, 4, 3, requires_grad=True), torch.randn(2, IN, 3, 4, 3, requires_grad=True)
    out = op(query, key)
    assert out.shape == (2, channels, 3, 4, 3)
    torch.testing.assert_close(out, naive_dot_attention(op, [query, key], dim=dim, similarity=similarity,
                                                        heads=heads), atol=1e-5, rtol=1e-4)
    out.square().sum().backward()
    assert query.grad.abs().sum() > 0 and key.grad.abs().sum() > 0


@pytest.mark.parametrize("op, attribute, kwargs", [
    ("combine", "mode", {}), ("dot_attention", "similarity", {}), ("dot_attention", "dim", {}),
    ("map_attention", "gate", {}), ("map_attention", "pooling", {}), ("map_attention", "dim", {"kernel": 3}),
    ("gather", "dim", {"descriptors": 2}), ("distribute", "dim", {"descriptors": 2}),
])
def test_op_modules_read_their_choices_from_the_vocabulary(monkeypatch, op, attribute, kwargs):
    """One vocabulary (issue 15): narrowing an attribute's values in search_space.vocabulary narrows what the op
    module accepts, so the modules hold no copy of their own."""
    operation = OPERATIONS[op]
    values = operation.attributes[attribute].values
    kept, dropped = values[0], values[-1]
    narrowed = dataclasses.replace(operation.attributes[attribute], values=(kept,))
    monkeypatch.setitem(OPERATIONS, op, dataclasses.replace(
        operation, attributes={**operation.attributes, attribute: narrowed}))
    in_channels = {port: (C if OPERATIONS[op].ports[port] == "bag" else IN) for port in OPS[op].ports}
    create_op(op, in_channels, C, **kwargs, **{attribute: kept})
    with pytest.raises(CellBuildError, match=rf"{attribute}: expected one of {kept!r}, got {dropped!r}$"):
        create_op(op, in_channels, C, **kwargs, **{attribute: dropped})


# ------------------------------------------------------------------------- naive references: explicit group loops
def groups_of(x, dim):
    """The groups of positions along dim as a list of (C, P) matrices, in to_groups order, by explicit indexing."""
    n, c, t, h, w = x.shape
    if dim == "spatiotemporal":
        return [x[i].reshape(c, -1) for i in range(n)]
    if dim == "spatial":
        return [x[i, :, f].reshape(c, -1) for i in range(n) for f in range(t)]
    return [x[i, :, :, r, s] for i in range(n) for r in range(h) for s in range(w)]


def ungroup(groups, dim, shape):
    n, _, t, h, w = shape
    c = groups[0].shape[0]
    out = torch.zeros(n, c, t, h, w)
    index = iter(groups)
    if dim == "spatiotemporal":
        for i in range(n):
            out[i] = next(index).reshape(c, t, h, w)
    elif dim == "spatial":
        for i in range(n):
            for f in range(t):
                out[i, :, f] = next(index).reshape(c, h, w)
    else:
        for i in range(n):
            for r in range(h):
                for s in range(w):
                    out[i, :, :, r, s] = next(index)
    return out


def naive_dot_attention(op, inputs, *, dim, similarity, heads):
    """Heads as torch.chunk splits the channels: ceil(c / heads) each, the last narrower (or missing when c is
    small), all scaled by the first head's width."""
    query, key = inputs
    results = []
    for q, k, v in zip(groups_of(op.q(query), dim), groups_of(op.k(key), dim), groups_of(op.v(key), dim)):
        heads_out = []
        for qh, kh, vh in zip(q.chunk(heads), k.chunk(heads), v.chunk(heads)):
            logits = qh.T @ kh                                   # (P, P)
            if similarity == "dot":
                attention = logits / logits.shape[1]
            else:
                scale = 1.0 if similarity == "softmax" else q.chunk(heads)[0].shape[0] ** -0.5
                attention = torch.softmax(logits * scale, dim=1)
            heads_out.append((attention @ vh.T).T)
        results.append(torch.cat(heads_out))
    return ungroup(results, dim, query.shape)


def naive_map_attention(op, inputs, *, dim, gate, pooling, kernel=None, reduction=None):
    (x,) = inputs
    v = op.v(x)
    if dim == "channel":
        pooled = {"avg": [x.mean((2, 3, 4))], "max": [x.amax((2, 3, 4))],
                  "avg_max": [x.mean((2, 3, 4)), x.amax((2, 3, 4))]}[pooling]
        logits = sum(op.mlp(p) for p in pooled)
        weights = torch.sigmoid(logits) if gate == "sigmoid" else torch.softmax(logits, 1) * logits.shape[1]
        return v * weights[:, :, None, None, None]
    pooled = {"avg": [x.mean(1, keepdim=True)], "max": [x.amax(1, keepdim=True)],
              "avg_max": [x.mean(1, keepdim=True), x.amax(1, keepdim=True)]}[pooling]
    logits = op.conv(torch.cat(pooled, 1))
    if gate == "sigmoid":
        return v * torch.sigmoid(logits)
    weights = [torch.softmax(g, dim=1) * g.shape[1] for g in groups_of(logits, dim)]
    return v * ungroup(weights, dim, logits.shape)


def naive_gather(op, inputs, *, dim, descriptors):
    (x,) = inputs
    return torch.stack([a @ torch.softmax(b, dim=1).T
                        for a, b in zip(groups_of(op.phi(x), dim), groups_of(op.theta(x), dim))])


def naive_distribute(op, inputs, *, dim, descriptors):
    bag, x = inputs
    z = [g @ torch.softmax(r, dim=0) for g, r in zip(bag, groups_of(op.rho(x), dim))]
    return ungroup(z, dim, x.shape)


def naive_combine(op, inputs, *, mode):
    a, b = (op.project_a(inputs[0]), op.project_b(inputs[1]))
    return a * b if mode == "mul" else a + b


NAIVE = {"dot_attention": naive_dot_attention, "map_attention": naive_map_attention, "gather": naive_gather,
         "distribute": naive_distribute, "combine": naive_combine}


@pytest.mark.parametrize("dim", ["spatial", "temporal", "spatiotemporal"])
def test_grouping_round_trip_and_layout(dim):
    x = torch.randn(2, 3, 4, 5, 6)
    grouped = to_groups(x, dim)
    torch.testing.assert_close(grouped, torch.stack(groups_of(x, dim)), atol=0, rtol=0)
    torch.testing.assert_close(from_groups(grouped, dim, x.shape), x, atol=0, rtol=0)


def test_combine_projects_only_ports_of_another_width():
    op = create_op("combine", {"a": IN, "b": C}, C, mode="add")
    assert isinstance(op.project_b, torch.nn.Identity) and isinstance(op.project_a, torch.nn.Conv3d)
    assert sorted(op.state_dict()) == ["project_a.bias", "project_a.weight"]


def test_dot_attention_separates_groups():
    """Spatial attention must not mix frames, temporal attention must not mix pixels: perturb one frame/pixel."""
    for dim, index in [("spatial", (slice(None), slice(None), 0)), ("temporal", (Ellipsis, 0, 0))]:
        op = create_op("dot_attention", IN, C, dim=dim, similarity="softmax", heads=1)
        x = torch.randn(1, IN, 3, 4, 4)
        y = x.clone()
        y[index] += 1.0
        changed = (op(x, x) - op(y, y)).abs().amax(1)[0] > 1e-6      # (T, H, W)
        expected = torch.zeros(3, 4, 4, dtype=torch.bool)
        expected[index[2:] if dim == "spatial" else (slice(None), 0, 0)] = True
        assert torch.equal(changed, expected), dim


class ShapeRecorder(TorchDispatchMode):
    """Records the size of every tensor an aten op returns, forward and backward."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in torch.utils._pytree.tree_leaves(out):
            if isinstance(tensor, torch.Tensor):
                self.largest = max(self.largest, tensor.numel())
        return out


@pytest.mark.parametrize("name, attrs", [c for c in CASES if c[1].get("dim") == "spatiotemporal"],
                         ids=lambda case: str(case))
def test_no_op_holds_a_positions_by_positions_matrix(name, attrs):
    """Left association for gather/distribute, Q (K^T V) for dot, flash attention for softmax: nothing of P x P."""
    shape = (1, IN, 4, 8, 8)                  # P = 256: a P x P matrix has 65,536 entries, a map 1,536
    op, inputs = make(name, attrs, shape)
    recorder = ShapeRecorder()
    with recorder:
        op(*inputs).square().sum().backward()
    positions = 4 * 8 * 8
    assert recorder.largest < positions * positions / 4, recorder.largest


def test_flop_counter_sees_the_attention_matmuls():
    """scaled_dot_product_attention runs torch's CPU flash kernel, which FlopCounterMode learns from cells.ops."""
    op = create_op("dot_attention", IN, C, dim="spatiotemporal", similarity="softmax", heads=2)
    x = torch.randn(1, IN, 2, 4, 4)
    positions = 32
    with FlopCounterMode(display=False) as counter:
        op(x, x)
    projections = 3 * 2 * IN * C * positions
    attention = 2 * 2 * positions * positions * C          # Q K^T and A V, both heads together
    assert counter.get_total_flops() == projections + attention
