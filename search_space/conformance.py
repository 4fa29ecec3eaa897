"""Checks of the rules search_space/interface.py states, one function per rule, for any `Space`.

`check_space(space)` runs them all; tests/search_space/test_interface.py runs it on attnas's spaces and on the
NAS-Bench-201 adapter, and on deliberately broken spaces to show that each check fails when its rule is broken.
Each check raises `AssertionError` naming the rule; none needs torch.
"""
from __future__ import annotations

import json
from typing import Any, Callable

import numpy as np

from attnas.search_space.errors import SpecError
from attnas.search_space.interface import Space

SAMPLES = 60


def _cells(space: Space, seed: int, count: int = SAMPLES) -> list[Any]:
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(count)]


def check_hash(space: Space) -> None:
    """Rule 1: hashes are non-empty strings, stable between calls (equal cells written differently: rules 2, 5, 6)."""
    for cell in _cells(space, 1):
        digest = space.hash(cell)
        assert isinstance(digest, str) and digest, f"rule 1: hash must be a non-empty string, got {digest!r}"
        assert space.hash(cell) == digest, "rule 1: hash of the same cell changed between calls"


def check_data_round_trip(space: Space) -> None:
    """Rule 2: to_data is JSON-serialisable and from_data gives the same cell back."""
    for cell in _cells(space, 2):
        data = json.loads(json.dumps(space.to_data(cell)))
        back = space.from_data(data)
        assert space.hash(back) == space.hash(cell), "rule 2: from_data(to_data(cell)) is another cell"


def check_seeded_and_contained(space: Space) -> None:
    """Rule 3: sample and mutate depend only on their rng, stay in the space, and mutate changes the cell."""
    first, second = _cells(space, 3, 20), _cells(space, 3, 20)
    assert [space.hash(c) for c in first] == [space.hash(c) for c in second], "rule 3: sample is not seeded by rng"
    for index, cell in enumerate(first):
        assert space.contains(cell), "rule 3: sample returned a cell the space does not contain"
        try:
            child = space.mutate(cell, np.random.default_rng(index))
            again = space.mutate(cell, np.random.default_rng(index))
        except SpecError:
            continue
        assert space.hash(child) == space.hash(again), "rule 3: mutate is not seeded by rng"
        assert space.contains(child), "rule 3: mutate returned a cell the space does not contain"
        assert space.hash(child) != space.hash(cell), "rule 3: mutate returned the same cell"


def check_only_spec_errors(space: Space) -> None:
    """Rule 4: decode_vector and mutate fail with SpecError only (on random vectors, and on wrong lengths)."""
    rng = np.random.default_rng(4)
    cardinalities = list(space.vector_cardinalities())
    vectors = [[int(rng.integers(0, max(1, c))) for c in cardinalities] for _ in range(SAMPLES)]
    vectors += [[0] * (len(cardinalities) + 1), [c for c in cardinalities]]  # too long; every entry out of range
    for vector in vectors:
        try:
            space.decode_vector(vector)
        except SpecError:
            pass
        except Exception as error:  # noqa: BLE001 - the rule is about which exception
            raise AssertionError(f"rule 4: decode_vector({vector}) raised {type(error).__name__}, not SpecError: "
                                 f"{error}") from None
    for index, cell in enumerate(_cells(space, 5)):
        try:
            space.mutate(cell, np.random.default_rng(index))
        except SpecError:
            pass
        except Exception as error:  # noqa: BLE001
            raise AssertionError(f"rule 4: mutate raised {type(error).__name__}, not SpecError: {error}") from None


def check_vector_encoding(space: Space) -> None:
    """Rule 5: encode_vector fits vector_cardinalities, and decode_vector inverts it."""
    cardinalities = list(space.vector_cardinalities())
    for cell in _cells(space, 6):
        vector = [int(v) for v in space.encode_vector(cell)]
        assert len(vector) == len(cardinalities), "rule 5: encode_vector's length differs from the cardinalities"
        assert all(0 <= v < c for v, c in zip(vector, cardinalities)), "rule 5: an entry outside 0..cardinality-1"
        assert space.hash(space.decode_vector(vector)) == space.hash(cell), "rule 5: decode(encode(cell)) differs"


def check_wl_features_follow_hash(space: Space) -> None:
    """Rule 6: cells with equal hashes have equal WL features, however each was written."""
    for cell in _cells(space, 7):
        twins = [space.from_data(space.to_data(cell)), space.decode_vector(space.encode_vector(cell))]
        for twin in twins:
            assert space.hash(twin) == space.hash(cell)
            assert dict(space.wl_features(twin)) == dict(space.wl_features(cell)), (
                "rule 6: cells with equal hashes have different wl_features")


def check_size_counts_hashes(space: Space, *, enumerate_below: int = 200) -> None:
    """Rule 7: size() is None or the number of distinct hashes (all found by sampling when the space is small)."""
    size = space.size()
    if size is None:
        return
    rng = np.random.default_rng(8)
    seen = {space.hash(space.sample(rng)) for _ in range(min(40 * size, 8000) if size <= enumerate_below else 500)}
    assert len(seen) <= size, f"rule 7: sampled {len(seen)} distinct hashes from a space of size {size}"
    if size <= enumerate_below:
        assert len(seen) == size, f"rule 7: size() is {size} but sampling found {len(seen)} distinct hashes"


SPACE_CHECKS: list[Callable[[Space], None]] = [
    check_hash, check_data_round_trip, check_seeded_and_contained, check_only_spec_errors, check_vector_encoding,
    check_wl_features_follow_hash, check_size_counts_hashes,
]


def check_space(space: Space) -> None:
    """Every rule of search_space/interface.py, checked on `space`."""
    for check in SPACE_CHECKS:
        check(space)
