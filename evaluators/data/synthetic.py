"""Synthetic spatiotemporal tasks whose labels depend on relations between distant objects and distant frames.

Every task is generated from a seed with vectorised numpy (10,000 clips in about a second), needs no files, and
returns the generator's ground truth next to the labels so tests can check that the label really is the relation.

Why a small 3-D CNN is not enough: a CNN whose receptive field covers one object at a time computes, after global
average pooling, a sum of per-object features, and its linear classifier then scores sum_i g(object_i). Each label
below is a relation that no such sum can express (same/different of two objects; the odd one among three, where the
pair's class must score both above and below the odd class). A network must bring distant objects or frames together
before pooling: deep stacks of 3x3x3 convolutions do so slowly; attention over positions or frames does so in one
step. The frame is divided into quadrants and objects are placed in different quadrants (and/or different thirds of
the clip), so related objects are always far apart.

Tasks (registry `TASKS`, built with `create_task(name, **fields)`):
- `odd_one_out` (default for quick-start): three objects, two of one glyph class, one of another; label = the odd
  object's class. Each clip is one of three modes: `spatial` (all three visible throughout, in three quadrants: a
  relation across the frame), `temporal` (shown one after another in the three thirds of the clip at the same place:
  a relation across time at one location), `spatiotemporal` (one after another, in different quadrants: a relation
  across both). Colours are random and independent of class, and objects drift, so only shape identifies a class.
  Cells attending over the spatial, temporal or spatiotemporal positions each solve a different share of the clips,
  which spreads the scores of random cells.
- `match`: two objects in diagonally opposite quadrants, visible throughout; label = whether they share a class.
- `reappear`: one object in the first third of the clip, a distractor in the middle third, one object in the last
  third, each in a different quadrant; label = whether the last object has the class of the first.
- `digits`: `odd_one_out` drawn with real handwritten digits (scikit-learn's `load_digits`) as the objects; every
  object is a different handwriting instance, and the three splits use disjoint instances.
"""
from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evaluators.data.render import ObjectTracks, render
from evaluators.data.sprites import SPLITS, get_sprites
from search_space import AttnasError

MODES = ("spatial", "temporal", "spatiotemporal")
# Version of the generators' output: bump whenever a change alters the clips a seed produces, so caches rebuild.
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class TaskData:
    """Clips (N, C, T, H, W) uint8, labels (N,) int64, and the generator's ground truth (arrays of length N)."""

    clips: np.ndarray
    labels: np.ndarray
    truth: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class SyntheticTask(abc.ABC):
    """A clip-classification task generated from a seed. Fields are the clip geometry; subclasses add their own."""

    frames: int = 8
    size: int = 32
    channels: int = 3
    noise: float = 0.0

    name = "synthetic"

    @property
    @abc.abstractmethod
    def num_classes(self) -> int:
        """Number of labels."""

    @abc.abstractmethod
    def _generate(self, n: int, rng: np.random.Generator, split: str) -> TaskData:
        """N clips drawn with `rng` (the split selects sprite pools where the sprite source has them)."""

    def generate(self, n: int, *, seed: int, split: str = "train") -> TaskData:
        """N clips and labels, a pure function of (task fields, n, seed, split)."""
        if split not in SPLITS:
            raise AttnasError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        if n < 1:
            raise AttnasError(f"task {self.name}: number of clips must be >= 1, got {n}")
        return self._generate(n, np.random.default_rng([seed, SPLITS.index(split), GENERATOR_VERSION]), split)

    @property
    def clip_shape(self) -> tuple[int, int, int, int]:
        """(C, T, H, W) of one clip."""
        return (self.channels, self.frames, self.size, self.size)

    def key(self) -> dict[str, Any]:
        """Everything that determines the generated data, for cache keys."""
        return {"task": self.name, "version": GENERATOR_VERSION, **dataclasses.asdict(self)}

    # --------------------------------------------------------------------------------------------- shared helpers
    def _check_geometry(self, sprite: int) -> None:
        if self.size < 2 * sprite or self.size % 2:
            raise AttnasError(f"task {self.name}: size must be even and >= {2 * sprite} (two sprites across), "
                              f"got {self.size}")
        if self.frames < 3:
            raise AttnasError(f"task {self.name}: frames must be >= 3 (one third per object), got {self.frames}")
        if self.channels not in (1, 3):
            raise AttnasError(f"task {self.name}: channels must be 1 or 3, got {self.channels}")

    def _colors(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.channels == 1:
            return np.ones((n, 1), dtype=np.float32)
        # saturated random colours: every object stays bright in at least one channel
        color = rng.uniform(0.25, 1.0, size=(n, 3)).astype(np.float32)
        color[np.arange(n), rng.integers(3, size=n)] = 1.0
        return color

    def _drift(self, rng: np.random.Generator, n: int, quadrant: np.ndarray, sprite: int) -> tuple[np.ndarray, ...]:
        """Per-frame top-left corners (N, T) of objects drifting at up to one pixel a frame inside `quadrant`."""
        half = self.size // 2
        free = half - sprite  # positions a sprite can take along one axis inside its quadrant
        step = min(1.0, free / max(1, self.frames - 1))
        t = np.arange(self.frames)
        coords = []
        for axis in range(2):
            velocity = rng.integers(-1, 2, size=n)
            travel = np.rint(velocity[:, None] * t[None, :] * step).astype(np.int64)
            low = -travel.min(axis=1)
            high = free - travel.max(axis=1)
            start = low + (rng.random(n) * (high - low + 1)).astype(np.int64)
            offset = (quadrant // 2 if axis == 0 else quadrant % 2) * half
            coords.append(offset[:, None] + start[:, None] + travel)
        return coords[0], coords[1]

    def _thirds(self) -> np.ndarray:
        """(3, T) bool: which frames belong to the first, middle and last third of the clip."""
        third = np.arange(self.frames) * 3 // self.frames
        return third[None, :] == np.arange(3)[:, None]


def _distinct_pair(rng: np.random.Generator, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Two arrays of classes in [0, k) that differ elementwise, uniform over ordered pairs."""
    a = rng.integers(k, size=n)
    b = (a + rng.integers(1, k, size=n)) % k
    return a, b


@dataclass(frozen=True)
class OddOneOut(SyntheticTask):
    """Three objects, two of one class: label = the odd object's class (see the module docstring)."""

    classes: int = 8
    sprites: str = "glyphs"
    modes: tuple[str, ...] = MODES

    name = "odd_one_out"

    @property
    def num_classes(self) -> int:
        return self.classes

    def __post_init__(self) -> None:
        source = get_sprites(self.sprites)
        if not 2 <= self.classes <= source.num_classes:
            raise AttnasError(f"task {self.name}: classes must be in 2..{source.num_classes} for sprites "
                              f"{self.sprites!r}, got {self.classes}")
        unknown = [m for m in self.modes if m not in MODES]
        if unknown or not self.modes:
            raise AttnasError(f"task {self.name}: modes must be a non-empty subset of {', '.join(MODES)}, "
                              f"got {list(self.modes)}")
        self._check_geometry(source.size)

    def _generate(self, n: int, rng: np.random.Generator, split: str) -> TaskData:
        source = get_sprites(self.sprites)
        pair, odd = _distinct_pair(rng, n, self.classes)
        odd_index = rng.integers(3, size=n)
        classes = np.repeat(pair[:, None], 3, axis=1)
        classes[np.arange(n), odd_index] = odd
        mode = np.array([MODES.index(m) for m in self.modes])[rng.integers(len(self.modes), size=n)]
        # three distinct quadrants per clip; temporal clips put all three in the first one
        quadrants = np.argsort(rng.random((n, 4)), axis=1)[:, :3]
        same_place = mode == MODES.index("temporal")
        quadrants[same_place] = quadrants[same_place, :1]
        thirds = self._thirds()
        objects = []
        for i in range(3):
            y, x = self._drift(rng, n, quadrants[:, i], source.size)
            visible = np.where((mode == MODES.index("spatial"))[:, None], True, thirds[i][None, :])
            objects.append(ObjectTracks(source.draw(classes[:, i], rng, split), self._colors(rng, n), y, x, visible))
        clips = render(objects, frames=self.frames, height=self.size, width=self.size, channels=self.channels,
                       noise=self.noise, rng=rng)
        truth = {"classes": classes, "odd_index": odd_index, "mode": mode, "quadrants": quadrants}
        return TaskData(clips, odd.astype(np.int64), truth)


@dataclass(frozen=True)
class Match(SyntheticTask):
    """Two objects in diagonally opposite quadrants: label 1 if they share a glyph class, else 0."""

    classes: int = 8

    name = "match"
    num_classes = 2

    def __post_init__(self) -> None:
        if not 2 <= self.classes <= get_sprites("glyphs").num_classes:
            raise AttnasError(f"task {self.name}: classes must be in 2..10, got {self.classes}")
        self._check_geometry(get_sprites("glyphs").size)

    def _generate(self, n: int, rng: np.random.Generator, split: str) -> TaskData:
        source = get_sprites("glyphs")
        labels = (rng.random(n) < 0.5).astype(np.int64)
        first, other = _distinct_pair(rng, n, self.classes)
        second = np.where(labels == 1, first, other)
        q0 = rng.integers(4, size=n)
        objects = []
        for classes, quadrant in ((first, q0), (second, 3 - q0)):  # 3 - q is the diagonally opposite quadrant
            y, x = self._drift(rng, n, quadrant, source.size)
            objects.append(ObjectTracks(source.draw(classes, rng, split), self._colors(rng, n), y, x,
                                        np.ones((n, self.frames), dtype=bool)))
        clips = render(objects, frames=self.frames, height=self.size, width=self.size, channels=self.channels,
                       noise=self.noise, rng=rng)
        return TaskData(clips, labels, {"classes": np.stack([first, second], axis=1), "quadrant": q0})


@dataclass(frozen=True)
class Reappear(SyntheticTask):
    """First third: an object; middle third: a distractor; last third: an object. Label 1 if last matches first."""

    classes: int = 8

    name = "reappear"
    num_classes = 2

    def __post_init__(self) -> None:
        if not 2 <= self.classes <= get_sprites("glyphs").num_classes:
            raise AttnasError(f"task {self.name}: classes must be in 2..10, got {self.classes}")
        self._check_geometry(get_sprites("glyphs").size)

    def _generate(self, n: int, rng: np.random.Generator, split: str) -> TaskData:
        source = get_sprites("glyphs")
        labels = (rng.random(n) < 0.5).astype(np.int64)
        first, other = _distinct_pair(rng, n, self.classes)
        last = np.where(labels == 1, first, other)
        distractor = rng.integers(self.classes, size=n)
        quadrants = np.argsort(rng.random((n, 4)), axis=1)[:, :3]
        thirds = self._thirds()
        objects = []
        for i, classes in enumerate((first, distractor, last)):
            y, x = self._drift(rng, n, quadrants[:, i], source.size)
            objects.append(ObjectTracks(source.draw(classes, rng, split), self._colors(rng, n), y, x,
                                        np.broadcast_to(thirds[i], (n, self.frames))))
        clips = render(objects, frames=self.frames, height=self.size, width=self.size, channels=self.channels,
                       noise=self.noise, rng=rng)
        return TaskData(clips, labels, {"classes": np.stack([first, distractor, last], axis=1),
                                        "quadrants": quadrants})


def _digits(**fields: Any) -> OddOneOut:
    return OddOneOut(**{"classes": 10, "sprites": "digits", **fields})


TASKS = {"odd_one_out": OddOneOut, "match": Match, "reappear": Reappear, "digits": _digits}
DEFAULT_TASK = "odd_one_out"


def create_task(name: str = DEFAULT_TASK, **fields: Any) -> SyntheticTask:
    """A synthetic task by registry name with its fields overridden; raises on unknown names or fields."""
    if name not in TASKS:
        raise AttnasError(f"unknown task {name!r}; expected one of {', '.join(sorted(TASKS))}")
    factory = TASKS[name]
    cls = OddOneOut if factory is _digits else factory
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise AttnasError(f"task {name}: unknown field(s) {', '.join(unknown)}; expected some of "
                          f"{', '.join(sorted(known))}")
    if "modes" in fields:
        fields["modes"] = tuple(fields["modes"])
    return factory(**fields)
