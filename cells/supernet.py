"""A supernet cell for a search space: every choice of the space at once, mixed by architecture weights (DARTS,
Liu et al. 2019), and the discrete cell read off those weights (`SupernetCell.derive`).

Layout. The supernet has `max_nodes` slots; slot i (1-based) sees the sources `input`, slot 1, ..., slot i-1.
Each slot holds three softmax distributions, and the cell one more:

- `ops[i]`: over the slot's *candidates*, one per op and full attribute assignment the space allows (all attribute
  choices are enumerated, none is factorised away), except gather/distribute, see below;
- `edges[i][0]`, `edges[i][1]`: over the slot's sources, for the op's first and second map port (a unary op uses
  only the first; `combine`, being commutative, uses the pair of them without order);
- `depth`: over the number of slots the cell uses, 1..max_nodes (slots 1..n).

Sources of different widths (the input has C channels, slots c) cannot be summed, and not every op is linear in its
input (max pooling, softmax), so a slot does not mix its inputs: it evaluates each candidate on each combination of
sources, with weights of its own for every (candidate, sources) pair, and mixes the outputs:
``h_i = sum_k a_k sum_(j0, j1) b0[j0] b1[j1] op_k,j0,j1(h_j0, h_j1)`` (unary candidates: ``b0[j0]`` alone). With
one-hot weights this is exactly the derived cell's node, which is what tests check.

The cell sums its output nodes, the map nodes nothing consumes. The supernet relaxes that with the probability that
slot j is not consumed by any later used slot: ``L[n, j] = prod_(k = j+1..n) (1 - u[k, j])`` with u[k, j] the
probability that slot k reads j (through its first port, or through its second when its op is binary), and sums
``sum_n depth[n] sum_(j <= n) L[n, j] h_j``; then the same 1x1x1 projection, zero-initialised BatchNorm and residual
as `cells.cell.Cell`. One-hot weights make every factor 0 or 1, so the sum is exactly the derived cell's output.

Gather and distribute come as one candidate, ``gather+distribute(dim, descriptors)``: a gather on the first port's
source and a distribute of its bag onto the second port's source (both the same source is the A^2 block). A lone
gather feeds nothing and a lone distribute has no bag, so neither is a candidate alone. A pair derives to two nodes,
so `derive` picks the most probable cell whose node count stays within `max_nodes` (pair candidates are dropped
when max_nodes < 2). Cells in which one gather feeds several distributes are in the space but not in the supernet.

Cost: a slot holds (unary candidates) x (sources) + (binary candidates) x (sources)^2 modules, so the default space
(54 candidates, 4 slots) has about a thousand op modules per cell; benchmarks/differentiable_search.py measures what
that costs per step, and Gumbel sampling (below) runs one of them per slot instead of all.

Sampling instead of mixing: with `gumbel_tau` set, a training forward draws one cell (hard Gumbel-softmax per
distribution, straight-through gradients; GDAS, Dong & Yang 2019) and computes only its candidates, since terms of
weight exactly zero are skipped; evaluation mode always mixes with the softmax.

Width is not relaxed: the supernet is built for one of the space's widths (the inner width sets every layer's
shape), and derived cells carry it.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from attnas.cells.cell import Cell, build, descriptor_count
from attnas.cells.errors import CellBuildError
from attnas.cells.insert import insert_after
from attnas.cells.ops import OPS, create_op
from attnas.search_space import INPUT, MAP, CellSpec, SearchSpace, get_operation

PAIR = "gather+distribute"
# An edge logit that makes a choice impossible: softmax gives it exactly zero weight.
EXCLUDED = float("-inf")
WEIGHTS_FORMAT = 1


@dataclass(frozen=True)
class Candidate:
    """One choice of a slot: an op (or the gather+distribute pair) with every applicable attribute set."""

    op: str
    attrs: tuple[tuple[str, Any], ...]

    @property
    def arity(self) -> int:
        """Map ports the candidate reads: 1 (first port only) or 2."""
        if self.op == PAIR:
            return 2
        return sum(1 for t in get_operation(self.op).ports.values() if t == MAP)

    @property
    def commutative(self) -> bool:
        return self.op != PAIR and get_operation(self.op).commutative

    @property
    def nodes(self) -> int:
        """Nodes it becomes in a derived cell."""
        return 2 if self.op == PAIR else 1

    @property
    def label(self) -> str:
        return self.op + "(" + ",".join(f"{k}={v}" for k, v in self.attrs) + ")"


def candidates(space: SearchSpace) -> list[Candidate]:
    """Every candidate of a slot of `space`, in the order of its ops and their attribute choices."""
    result = []
    for name, choices in space.ops.items():
        if name == "distribute" or (name == "gather" and space.max_nodes < 2):
            continue
        for dim in choices.dims():
            free = choices.free_attributes(dim)
            for values in itertools.product(*(v for _, v in free)):
                attrs = ([("dim", dim)] if dim is not None else []) + list(zip((a for a, _ in free), values))
                result.append(Candidate(op=PAIR if name == "gather" else name, attrs=tuple(attrs)))
    if not result:
        raise CellBuildError(f"supernet: space {space.name!r} has no candidate op for a slot")
    return result


def source_combinations(candidate: Candidate, sources: int) -> list[tuple[int, ...]]:
    """The (first port, second port) source indices a candidate is evaluated on in a slot with `sources` sources
    (0 = input); commutative ops take each unordered pair once."""
    if candidate.arity == 1:
        return [(j,) for j in range(sources)]
    if candidate.commutative:
        return list(itertools.combinations_with_replacement(range(sources), 2))
    return list(itertools.product(range(sources), repeat=2))


class PairOp(nn.Module):
    """gather on the first input, distribute of its bag onto the second: the A^2 block when both are the same."""

    def __init__(self, *, in_channels: tuple[int, int], channels: int, dim: str, descriptors: int) -> None:
        super().__init__()
        self.gather = create_op("gather", in_channels[0], channels, dim=dim, descriptors=descriptors)
        self.distribute = create_op("distribute", {"bag": channels, "x": in_channels[1]}, channels, dim=dim,
                                    descriptors=descriptors)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.distribute(self.gather(x), y)


def _candidate_module(candidate: Candidate, widths: Sequence[int], channels: int) -> nn.Module:
    """The module of `candidate` reading sources of `widths` channels, built as cells.cell.build would."""
    attrs = dict(candidate.attrs)
    if candidate.op == PAIR:
        return PairOp(in_channels=(widths[0], widths[1]), channels=channels, dim=attrs["dim"],
                      descriptors=descriptor_count(attrs["descriptors"], channels))
    ports = [p for p in OPS[candidate.op].ports]
    return create_op(candidate.op, dict(zip(ports, widths)), channels, **attrs)


class SupernetSlot(nn.Module):
    """Slot `index` (1-based): every candidate on every combination of its `index` sources."""

    def __init__(self, *, index: int, candidates: Sequence[Candidate], channels: int, inner_channels: int) -> None:
        super().__init__()
        self.index = index
        self.candidates = tuple(candidates)
        widths = [channels] + [inner_channels] * (index - 1)
        self.combinations = [source_combinations(c, index) for c in self.candidates]
        self.modules_ = nn.ModuleList(
            nn.ModuleList(_candidate_module(c, [widths[j] for j in combo], inner_channels) for combo in combos)
            for c, combos in zip(self.candidates, self.combinations))

    def module(self, candidate: int, combination: tuple[int, ...]) -> nn.Module:
        """The module of candidate `candidate` (index) on sources `combination`."""
        return self.modules_[candidate][self.combinations[candidate].index(combination)]

    def forward(self, values: Sequence[torch.Tensor], op_weights: torch.Tensor,
                edge_weights: torch.Tensor) -> torch.Tensor:
        """The mixed output; `values` are the sources, `edge_weights` is (2, sources)."""
        op_list = op_weights.tolist()
        edge_list = edge_weights.tolist()
        total = None
        for k, candidate in enumerate(self.candidates):
            if op_list[k] == 0.0:  # an excluded (one-hot) choice: skip the work, its weight is exactly zero
                continue
            for combo, module in zip(self.combinations[k], self.modules_[k]):
                weight, listed = _combination_weight(candidate, combo, edge_weights, edge_list)
                if listed == 0.0:
                    continue
                out = module(*(values[j] for j in combo)) * (op_weights[k] * weight)
                total = out if total is None else total + out
        return total


def _combination_weight(candidate: Candidate, combo: tuple[int, ...], edge_weights: torch.Tensor,
                        edge_list: list[list[float]]) -> tuple[torch.Tensor, float]:
    """The probability that the ports read `combo`, as a tensor and as a float (to skip zero terms)."""
    if len(combo) == 1:
        return edge_weights[0, combo[0]], edge_list[0][combo[0]]
    j0, j1 = combo
    if candidate.commutative and j0 != j1:  # either port order gives the same unordered pair
        weight = edge_weights[0, j0] * edge_weights[1, j1] + edge_weights[0, j1] * edge_weights[1, j0]
        listed = edge_list[0][j0] * edge_list[1][j1] + edge_list[0][j1] * edge_list[1][j0]
        return weight, listed
    return edge_weights[0, j0] * edge_weights[1, j1], edge_list[0][j0] * edge_list[1][j1]


@dataclass(frozen=True)
class DerivedNode:
    """Where a node of the derived cell comes from: slot, candidate index, and the sources of its ports."""

    slot: int
    candidate: int
    sources: tuple[int, ...]


class SupernetCell(nn.Module):
    """Every cell of `space` at inner width `width` on maps of `channels` channels; see the module docstring.

    Architecture parameters: `op_logits[i]` (candidates), `edge_logits[i]` (2 x sources), `depth_logits`
    (max_nodes); `architecture_parameters()` lists them and `weight_parameters()` the rest, for the two optimisers.
    """

    def __init__(self, space: SearchSpace, channels: int, *, width: float | None = None) -> None:
        super().__init__()
        width = space.widths[0] if width is None else float(width)
        if width not in space.widths:
            raise CellBuildError(f"supernet: width {width!r} is not one of the space's widths {list(space.widths)}")
        self.space = space
        self.width = width
        self.channels = channels
        self.inner_channels = max(1, round(width * channels))
        self.candidates = tuple(candidates(space))
        n = space.max_nodes
        self.slots = nn.ModuleList(SupernetSlot(index=i, candidates=self.candidates, channels=channels,
                                                inner_channels=self.inner_channels) for i in range(1, n + 1))
        self.op_logits = nn.ParameterList(nn.Parameter(torch.zeros(len(self.candidates))) for _ in range(n))
        self.edge_logits = nn.ParameterList(nn.Parameter(torch.zeros(2, i)) for i in range(1, n + 1))
        self.depth_logits = nn.Parameter(torch.zeros(n))
        # None: softmax-mixed forward (DARTS); a temperature: one sampled cell per training forward (GDAS)
        self.gumbel_tau: float | None = None
        self.project = nn.Conv3d(self.inner_channels, channels, kernel_size=1, bias=False)
        self.norm = nn.BatchNorm3d(channels)
        nn.init.zeros_(self.norm.weight)
        self.register_buffer("binary", torch.tensor([c.arity == 2 for c in self.candidates], dtype=torch.float32),
                             persistent=False)

    # ------------------------------------------------------------------------------------- parameters
    def architecture_parameters(self) -> list[nn.Parameter]:
        return [*self.op_logits, *self.edge_logits, self.depth_logits]

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.architecture_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def probabilities(self) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """Softmaxed (op weights per slot, edge weights per slot (2 x sources), depth weights)."""
        ops = [torch.softmax(logits, dim=0) for logits in self.op_logits]
        edges = [torch.softmax(logits, dim=1) for logits in self.edge_logits]
        return ops, edges, torch.softmax(self.depth_logits, dim=0)

    def sampled(self, tau: float) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """One cell drawn from the architecture distribution (hard Gumbel-softmax at temperature `tau`), as one-hot
        weights whose gradient is the relaxed sample's (straight-through, GDAS; Dong & Yang 2019)."""
        def draw(logits: torch.Tensor, dim: int) -> torch.Tensor:
            return nn.functional.gumbel_softmax(logits, tau=tau, hard=True, dim=dim)

        return ([draw(logits, 0) for logits in self.op_logits], [draw(logits, 1) for logits in self.edge_logits],
                draw(self.depth_logits, 0))

    # ----------------------------------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.gumbel_tau is not None:
            ops, edges, depth = self.sampled(self.gumbel_tau)
        else:
            ops, edges, depth = self.probabilities()
        # slots past the largest slot count with non-zero weight cannot reach the output: not computed
        used = max(n + 1 for n, p in enumerate(depth.tolist()) if p != 0.0)
        values = [x]
        for slot, op_weights, edge_weights in zip(self.slots[:used], ops, edges):
            values.append(slot(values, op_weights, edge_weights))
        total = self.output_mix(values[1:], ops, edges, depth)
        return x + self.norm(self.project(total))

    def output_mix(self, slots: Sequence[torch.Tensor], ops: Sequence[torch.Tensor],
                   edges: Sequence[torch.Tensor], depth: torch.Tensor) -> torch.Tensor:
        """sum_n depth[n] sum_(j <= n) L[n, j] h_j: the expected sum of the leaves (module docstring)."""
        n = len(slots)  # the slots computed; depth weights beyond them are zero
        binary = self.binary
        # reads[k][j]: probability that slot k+1 reads slot j+1 (edge index j+1: index 0 is the input)
        reads = {}
        for k in range(1, n):
            b = (ops[k] * binary).sum()
            first, second = edges[k][0], edges[k][1]
            for j in range(k):
                reads[k, j] = 1 - (1 - first[j + 1]) * (1 - b * second[j + 1])
        depth_list = depth.tolist()
        total = None
        for used in range(1, n + 1):
            if depth_list[used - 1] == 0.0:
                continue
            for j in range(used):
                leaf = depth[used - 1]
                for k in range(j + 1, used):
                    leaf = leaf * (1 - reads[k, j])
                term = slots[j] * leaf
                total = term if total is None else total + term
        return total

    # ------------------------------------------------------------------------------------ derivation
    def derivation(self) -> list[DerivedNode]:
        """The slots, candidates and sources of the most probable cell the space allows (see `derive`)."""
        with torch.no_grad():
            ops, edges, depth = self.probabilities()
            log_ops = [torch.log(p).tolist() for p in ops]
            log_depth = torch.log(depth).tolist()
        pair = [c.op == PAIR for c in self.candidates]
        best: tuple[float, int, list[int]] | None = None
        for used in range(1, self.space.max_nodes + 1):
            choice = _best_choices(log_ops[:used], pair, capacity=self.space.max_nodes - used)
            if choice is None:
                continue
            score = log_depth[used - 1] + choice[0]
            if best is None or score > best[0]:
                best = (score, used, choice[1])
        if best is None:
            raise CellBuildError(f"supernet: no cell of space {self.space.name!r} fits {self.space.max_nodes} nodes")
        _, used, chosen = best
        nodes = []
        for slot in range(used):
            candidate = self.candidates[chosen[slot]]
            first = int(torch.argmax(edges[slot][0]))
            if candidate.arity == 1:
                sources: tuple[int, ...] = (first,)
            else:
                second = int(torch.argmax(edges[slot][1]))
                sources = tuple(sorted((first, second))) if candidate.commutative else (first, second)
            nodes.append(DerivedNode(slot=slot + 1, candidate=chosen[slot], sources=sources))
        return nodes

    def derive(self) -> CellSpec:
        """The discrete cell: per slot the most probable candidate and sources, the number of slots and which
        slots become pairs chosen jointly as the most probable combination that fits max_nodes. It is validated as
        any CellSpec and checked against the space."""
        spec = spec_from_derivation(self.derivation(), self.candidates, self.width)
        self.space.check(spec)
        return spec

    def derived_cell(self) -> Cell:
        """The derived cell built by cells.build, carrying this supernet's weights for the chosen candidates."""
        derivation = self.derivation()
        spec = spec_from_derivation(derivation, self.candidates, self.width)
        cell = build(spec, self.channels)
        names = node_names(derivation, self.candidates)
        for node, (first, second) in zip(derivation, names):
            module = self.slots[node.slot - 1].module(node.candidate, node.sources)
            if isinstance(module, PairOp):
                cell.ops[first].load_state_dict(module.gather.state_dict())
                cell.ops[second].load_state_dict(module.distribute.state_dict())
            else:
                cell.ops[first].load_state_dict(module.state_dict())
        cell.project.load_state_dict(self.project.state_dict())
        cell.norm.load_state_dict(self.norm.state_dict())
        return cell.to(self.project.weight.device)

    def fix(self, derivation: Sequence[DerivedNode]) -> None:
        """Set the architecture weights one-hot on `derivation` (its slot count, candidates and sources)."""
        with torch.no_grad():
            self.depth_logits.fill_(EXCLUDED)
            self.depth_logits[len(derivation) - 1] = 0.0
            for slot in range(self.space.max_nodes):
                self.op_logits[slot].fill_(0.0)
                self.edge_logits[slot].fill_(0.0)
            for node in derivation:
                s = node.slot - 1
                self.op_logits[s].fill_(EXCLUDED)
                self.op_logits[s][node.candidate] = 0.0
                self.edge_logits[s].fill_(EXCLUDED)
                self.edge_logits[s][0, node.sources[0]] = 0.0
                self.edge_logits[s][1, node.sources[-1]] = 0.0

    # ------------------------------------------------------------------------------------------ record
    def architecture_weights(self) -> dict[str, Any]:
        """The softmaxed architecture weights as plain data (the shape the history stores, see `weights_shape`)."""
        with torch.no_grad():
            ops, edges, depth = self.probabilities()
        sources = [INPUT] + [f"slot{i}" for i in range(1, self.space.max_nodes + 1)]
        return {
            "format": WEIGHTS_FORMAT,
            "width": self.width,
            "candidates": [c.label for c in self.candidates],
            "depth": [round(float(p), 6) for p in depth],
            "slots": [{"ops": [round(float(p), 6) for p in op],
                       "sources": sources[:len(edge[0])],
                       "edges": [[round(float(p), 6) for p in row] for row in edge]}
                      for op, edge in zip(ops, edges)],
        }

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, inner_channels={self.inner_channels}, slots={self.space.max_nodes}, "
                f"candidates={len(self.candidates)}")


def _best_choices(log_ops: list[list[float]], pair: list[bool], *, capacity: int) -> tuple[float, list[int]] | None:
    """The most probable candidate per slot with at most `capacity` pair candidates: (log probability, indices)."""
    singles, pairs = [], []
    for logs in log_ops:
        single = max(((v, k) for k, v in enumerate(logs) if not pair[k]), default=(-math.inf, -1))
        double = max(((v, k) for k, v in enumerate(logs) if pair[k]), default=(-math.inf, -1))
        singles.append(single)
        pairs.append(double)
    chosen = [s[1] for s in singles]
    score = 0.0
    gains = []
    for slot, (single, double) in enumerate(zip(singles, pairs)):
        if single[1] < 0 and double[1] < 0:
            return None
        if single[1] < 0 or single[0] == -math.inf and double[0] > -math.inf:
            capacity -= 1  # only a pair is possible (or probable) here
            chosen[slot] = double[1]
            score += double[0]
        else:
            score += single[0]
            if double[1] >= 0 and double[0] > single[0]:
                gains.append((double[0] - single[0], slot, double[1]))
    if capacity < 0:
        return None
    for gain, slot, index in sorted(gains, reverse=True)[:capacity]:
        chosen[slot] = index
        score += gain
    return score, chosen


def node_names(derivation: Sequence[DerivedNode], candidates: Sequence[Candidate]) -> list[tuple[str, str]]:
    """The derived node names of each slot: (node, node) for one op, (gather, distribute) for a pair."""
    names = []
    counter = itertools.count(1)
    for node in derivation:
        if candidates[node.candidate].op == PAIR:
            names.append((f"n{next(counter)}", f"n{next(counter)}"))
        else:
            name = f"n{next(counter)}"
            names.append((name, name))
    return names


def spec_from_derivation(derivation: Sequence[DerivedNode], candidates: Sequence[Candidate],
                         width: float) -> CellSpec:
    """The CellSpec of a derivation (its output: every map node nothing consumes)."""
    names = node_names(derivation, candidates)
    slot_output = [INPUT] + [second for _, second in names]
    nodes: list[dict[str, Any]] = []
    for node, (first, second) in zip(derivation, names):
        candidate = candidates[node.candidate]
        attrs = dict(candidate.attrs)
        sources = [slot_output[j] for j in node.sources]
        if candidate.op == PAIR:
            nodes.append({"name": first, "op": "gather", "inputs": {"x": sources[0]}, **attrs})
            nodes.append({"name": second, "op": "distribute", "inputs": {"bag": first, "x": sources[1]},
                          "dim": attrs["dim"]})
        else:
            ports = [p for p, t in get_operation(candidate.op).ports.items() if t == MAP]
            nodes.append({"name": first, "op": candidate.op, "inputs": dict(zip(ports, sources)), **attrs})
    return CellSpec.from_nodes(nodes, width=width)


def derivation_of(spec: CellSpec, candidates_: Sequence[Candidate]) -> list[DerivedNode]:
    """The slots, candidates and sources that derive `spec`, one slot per node in the spec's order (a gather
    shares the slot of its distribute). Raises CellBuildError for a cell the supernet cannot hold: a candidate it
    lacks, or a gather feeding more than one distribute."""
    index = {c: k for k, c in enumerate(candidates_)}
    slot_of: dict[str, int] = {INPUT: 0}
    gathers = {n.name: n for n in spec.nodes if n.op == "gather"}
    for name in gathers:
        if len(spec.consumers(name)) != 1:
            raise CellBuildError(f"supernet: gather {name!r} feeds {len(spec.consumers(name))} distributes; a "
                                 "supernet pair holds one gather and one distribute")
    derivation = []
    for node in spec.nodes:
        if node.op == "gather":
            continue
        if node.op == "distribute":
            gather = gathers[node.source("bag")]
            attrs = tuple((k, v) for k, v in gather.attrs)
            candidate = Candidate(op=PAIR, attrs=attrs)
            sources = (slot_of[gather.source("x")], slot_of[node.source("x")])
        else:
            candidate = Candidate(op=node.op, attrs=node.attrs)
            ports = [p for p, t in get_operation(node.op).ports.items() if t == MAP]
            sources = tuple(slot_of[node.source(p)] for p in ports)
            if candidate.commutative:
                sources = tuple(sorted(sources))
        if candidate not in index:
            raise CellBuildError(f"supernet: node {node.name!r} ({candidate.label}) is not a candidate")
        derivation.append(DerivedNode(slot=len(derivation) + 1, candidate=index[candidate], sources=sources))
        slot_of[node.name] = len(derivation)
    return derivation


def insert_supernet(model: nn.Module, space: SearchSpace, at: Sequence[str], *, width: float | None = None,
                    example_input: torch.Tensor | None = None) -> list[SupernetCell]:
    """Put a supernet cell after each block named in `at` (as cells.insert does for a cell); returns the cells."""
    created = insert_after(model, at, lambda channels: SupernetCell(space, channels, width=width),
                           example_input=example_input)
    return list(created.values())


def supernet_cells(model: nn.Module) -> list[SupernetCell]:
    """The supernet cells inside `model`."""
    return [m for m in model.modules() if isinstance(m, SupernetCell)]


def iter_weights_table(weights: Mapping[str, Any]) -> Iterator[tuple[int, str, float]]:
    """(slot, candidate label, probability) rows of an `architecture_weights()` record (for figures)."""
    for slot, entry in enumerate(weights["slots"], start=1):
        for label, p in zip(weights["candidates"], entry["ops"]):
            yield slot, label, p
