"""The small interface controllers use to talk to a search space.

Controllers never look inside a cell: they sample, mutate, test membership, hash, encode and serialise through
this interface, so any space implementing it (attnas's own `SearchSpace`, or an adapter for a published benchmark
such as NAS-Bench-201) can be searched by every controller unchanged.

Cells are opaque to controllers. The rules a space must follow, because controllers rely on them (each is checked
for attnas's spaces and the NAS-Bench-201 adapter by search_space/conformance.py, whose `check_space(space)` a
foreign space can run too):

1. `hash(cell)` is a string, equal for cells that are the same architecture and different otherwise; controllers
   deduplicate proposals and key their caches by it.
2. `to_data(cell)` is JSON-serialisable and `from_data(to_data(cell))` is the same cell (the same hash): histories
   and state dicts store cells this way and rebuild them on resume.
3. `sample(rng)` and `mutate(cell, rng)` use only `rng`, so a seeded controller is deterministic; both return cells
   the space `contains`, and `mutate` returns a cell with another hash.
4. `mutate` and `decode_vector` raise `SpecError` when they cannot give a valid cell (nothing to mutate, a vector
   describing no cell of the space), and nothing else: controllers catch `SpecError` and only it, then try again.
5. `encode_vector(cell)` has one integer per entry of `vector_cardinalities()`, each in 0..cardinality-1, and
   `decode_vector(encode_vector(cell))` is the same cell.
6. `wl_features(cell)` is equal for cells with equal hashes: the Bayesian controller caches features by hash.
7. `size()` is None or the number of distinct hashes in the space; controllers stop when they have seen that many.
"""
from __future__ import annotations

import abc
from typing import Any, Mapping, Sequence

import numpy as np


class Space(abc.ABC):
    """A space of candidate architectures, as the controllers see it."""

    #: a short name, recorded in the history next to each trial
    name: str = "space"

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator) -> Any:
        """Draw a cell from the space, using only `rng` for randomness."""

    @abc.abstractmethod
    def mutate(self, cell: Any, rng: np.random.Generator) -> Any:
        """Return a different cell of the space one edit away from `cell` (an op, attribute or edge changed, or a
        node added or removed, as the space allows)."""

    @abc.abstractmethod
    def contains(self, cell: Any) -> bool:
        """Whether `cell` is a valid member of this space."""

    @abc.abstractmethod
    def hash(self, cell: Any) -> str:
        """The cell's canonical hash: equal for cells that are the same architecture, however they are written."""

    @abc.abstractmethod
    def vector_cardinalities(self) -> Sequence[int]:
        """The number of categories of each entry of `encode_vector` (entries are integers 0..cardinality-1)."""

    def vector_choices(self) -> Sequence[Sequence[str]]:
        """Each entry's categories by name, for histories and dashboards (default: the category numbers)."""
        return [tuple(str(i) for i in range(c)) for c in self.vector_cardinalities()]

    @abc.abstractmethod
    def encode_vector(self, cell: Any) -> np.ndarray:
        """A fixed-length integer vector describing the cell, for TPE- and GP-style models over flat inputs."""

    @abc.abstractmethod
    def decode_vector(self, vector: Sequence[int]) -> Any:
        """The cell a vector describes; raises `SpecError` when the vector describes no valid cell of the space."""

    @abc.abstractmethod
    def wl_features(self, cell: Any) -> Mapping[str, int]:
        """A bag of Weisfeiler-Lehman subtree features (label -> count), for graph-kernel surrogates."""

    @abc.abstractmethod
    def to_data(self, cell: Any) -> Any:
        """The cell as JSON-serialisable data, for histories and state dicts."""

    @abc.abstractmethod
    def from_data(self, data: Any) -> Any:
        """The inverse of `to_data`."""

    def size(self) -> int | None:
        """The number of distinct cells (distinct hashes), when known exactly; None otherwise."""
        return None
