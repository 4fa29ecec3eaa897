"""AttnBench's cells behind the `search_space.Space` interface, for searching the table (search_space/attnbench.py).

Like controllers/nasbench201.py, an adapter every controller searches unchanged; the controller comparison on the
table is benchmarks/controllers_attnbench.py. **Only cells present in the table are in the space**: a partial
table (a build stopped early) gives a smaller space, and `size()` is the number of cells the table holds, so a
controller stops once it has seen them all and never proposes a cell the table cannot score.

- sample: a cell of the table, uniformly (not uniformly over ordered specs as the YAML space samples);
- mutate: the `attnbench` space's mutation (an op, attribute or edge changed, a node added or removed), retried
  until the child is in the table; SpecError when `MUTATION_ATTEMPTS` tries find none (a sparse partial table);
- contains, hash, vectors, WL features, to_data/from_data: the `attnbench` space's, with `contains` and
  `decode_vector` also requiring the cell to be in the table (decode_vector raises SpecError otherwise).
"""
from __future__ import annotations

import os
from functools import cached_property
from typing import Any, Sequence

import numpy as np

from attnas.search_space import CellSpec, SearchSpace, load_space
from attnas.search_space.attnbench import SPACE_NAME, TABLE_NAME, AttnBenchTable, load_table
from attnas.search_space.errors import SpecError
from attnas.search_space.interface import Space

MUTATION_ATTEMPTS = 50


class AttnBenchSpace(Space):
    """The cells of an AttnBench table (default: the shipped one), as a `search_space.Space`."""

    name = "attnbench"

    def __init__(self, table: AttnBenchTable | str | os.PathLike = TABLE_NAME, *, space: SearchSpace | None = None):
        self.table = table if isinstance(table, AttnBenchTable) else load_table(table)
        self.inner = space if space is not None else load_space(self.table.meta.get("space", SPACE_NAME))
        self._hashes = sorted(self.table.records)
        if not self._hashes:
            raise SpecError(f"{self.table.path}: cells: the table holds no cell; expected at least one")

    @cached_property
    def _cells(self) -> dict[str, CellSpec]:
        return {digest: CellSpec.from_dict(dict(self.table.records[digest].cell)) for digest in self._hashes}

    def accuracy(self, cell: CellSpec) -> float:
        """The table's mean validation accuracy of `cell` (TableError if the table lacks it)."""
        return self.table.record(cell.hash).accuracy

    def sample(self, rng: np.random.Generator) -> CellSpec:
        return self._cells[self._hashes[int(rng.integers(len(self._hashes)))]]

    def mutate(self, cell: CellSpec, rng: np.random.Generator) -> CellSpec:
        for _ in range(MUTATION_ATTEMPTS):
            child = self.inner.mutate(cell, rng)
            if child.hash in self.table.records:
                return child
        raise SpecError(f"found no neighbour of cell {cell.hash} in the table in {MUTATION_ATTEMPTS} mutations")

    def contains(self, cell: Any) -> bool:
        return isinstance(cell, CellSpec) and cell.hash in self.table.records and self.inner.contains(cell)

    def hash(self, cell: CellSpec) -> str:
        return cell.hash

    def vector_cardinalities(self) -> list[int]:
        return self.inner.vector_cardinalities()

    def vector_choices(self) -> list[tuple[str, ...]]:
        return self.inner.vector_choices()

    def encode_vector(self, cell: CellSpec) -> np.ndarray:
        return self.inner.encode_vector(cell)

    def decode_vector(self, vector: Sequence[int]) -> CellSpec:
        cell = self.inner.decode_vector(vector)
        if cell.hash not in self.table.records:
            raise SpecError(f"vector describes cell {cell.hash}, which the table {self.table.path} does not hold")
        return cell

    def wl_features(self, cell: CellSpec) -> dict[str, int]:
        return self.inner.wl_features(cell)

    def to_data(self, cell: CellSpec) -> dict:
        return self.inner.to_data(cell)

    def from_data(self, data: Any) -> CellSpec:
        return self.inner.from_data(data)

    def size(self) -> int:
        return len(self._hashes)
