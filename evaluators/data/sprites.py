"""Sprite sources for synthetic tasks: what an object of class k looks like.

`glyphs`: ten hand-drawn 5x5 binary shapes, identical in every clip (the class is the shape).
`digits`: real handwritten digits shipped with scikit-learn (`load_digits`, 1797 8x8 images, no download); every
object is a different instance of its digit, and train/validation/test draw from disjoint instances, so matching two
objects means recognising the same digit written differently.
"""
from __future__ import annotations

import abc
from functools import lru_cache

import numpy as np

from attnas.search_space import AttnasError

SPLITS = ("train", "validation", "test")

_GLYPHS = """
#...# .###. ..#.. ##### #.... ..#.. ##### #...# .#.#. ###..
.#.#. #...# ..#.. #...# #.... .#.#. ..#.. #...# #.#.# #..#.
..#.. #...# ##### #...# #.... #...# ..#.. ##### .#.#. ###..
.#.#. #...# ..#.. #...# #.... .#.#. ..#.. #...# #.#.# #..#.
#...# .###. ..#.. ##### ##### ..#.. ..#.. #...# .#.#. ###..
"""


class SpriteSource(abc.ABC):
    """Images of object classes. `draw(classes, rng, split)` returns float sprites (N, h, w) in [0, 1]."""

    num_classes: int
    size: int

    @abc.abstractmethod
    def draw(self, classes: np.ndarray, rng: np.random.Generator, split: str) -> np.ndarray:
        """One sprite per entry of the integer array `classes`, drawn with `rng` from the pool of `split`."""


class Glyphs(SpriteSource):
    """Ten fixed 5x5 binary shapes (X, ring, plus, box, L, diamond, T, H, checker, B)."""

    size = 5

    def __init__(self) -> None:
        rows = [line.split() for line in _GLYPHS.strip().splitlines()]
        self.images = np.array([[[ch == "#" for ch in rows[r][g]] for r in range(5)] for g in range(len(rows[0]))],
                               dtype=np.float32)
        self.num_classes = len(self.images)

    def draw(self, classes: np.ndarray, rng: np.random.Generator, split: str) -> np.ndarray:
        return self.images[classes]


class Digits(SpriteSource):
    """Handwritten 8x8 digits from `sklearn.datasets.load_digits`; split pools are disjoint (60/20/20 by index)."""

    size = 8
    num_classes = 10

    def __init__(self) -> None:
        images, targets = _load_digits()
        fold = np.arange(len(targets)) % 5
        pools = {"train": fold < 3, "validation": fold == 3, "test": fold == 4}
        self.images = images
        # per split and class, the indices of its instances
        self.pools = {split: [np.flatnonzero(mask & (targets == k)) for k in range(10)]
                      for split, mask in pools.items()}

    def draw(self, classes: np.ndarray, rng: np.random.Generator, split: str) -> np.ndarray:
        if split not in self.pools:
            raise AttnasError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        out = np.empty((*classes.shape, 8, 8), dtype=np.float32)
        for k in range(10):
            mask = classes == k
            pool = self.pools[split][k]
            out[mask] = self.images[pool[rng.integers(len(pool), size=int(mask.sum()))]]
        return out


@lru_cache(maxsize=1)
def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return (data.images / 16.0).astype(np.float32), data.target.astype(np.int64)


SPRITES = {"glyphs": Glyphs, "digits": Digits}


def get_sprites(name: str) -> SpriteSource:
    """A sprite source by name; raises listing the known names."""
    if name not in SPRITES:
        raise AttnasError(f"unknown sprite source {name!r}; expected one of {', '.join(sorted(SPRITES))}")
    return SPRITES[name]()
