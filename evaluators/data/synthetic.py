"""Synthetic spatiotemporal tasks whose labels depend on relations between distant objects and distant frames.

Every task is generated from a seed with vectorised numpy (10,000 clips in about a second), needs no files, and
returns the generator's ground truth next to the labels so tests can check that the label really is the relation.

Why a small 3-D CNN is not enough: a CNN whose receptive field covers one object at a time computes, after global
average pooling, a sum of per-object features, and its linear classifier then scores sum_i g(object_i). Each label
below is a relation that no such sum can express (same/different of two objects; the odd one among three, where the
pair's class must score both above and below the odd class). A network must bring distant objects or frames together
before pooling: stacks of 3x3x3 convolutions do so only as far as their receptive field reaches; attention over
positions or frames does so in one step. Objects are placed in different quadrants and/or different parts of the
clip, so related objects are always far apart. On 32x32 frames a proxy that downsamples to 4x4 sees the whole frame
in its last stage, so the quick-start task puts its distance in time instead: its objects are 13 frames apart, and
the default proxy (evaluators.config) has a temporal receptive field of 9 frames (tests/evaluators check both).

Tasks (registry `TASKS`, built with `create_task(name, **fields)`):
- `odd_one_out` (default for quick-start): three objects, two of one class, one of another; label = the odd
  object's class (8 classes, so top-5 is defined). Each clip is one of three modes: `spatial` (all three visible
  throughout, in three quadrants: a relation across the frame), `temporal` (shown one after another, at the start,
  middle and end of the clip, at the same place: a relation across time at one location), `spatiotemporal` (one
  after another, in different quadrants: a relation across both). Objects drift by up to a pixel a frame. Quick-start
  defaults: 16 frames of 16x16, each object shown for `window` = 2 frames, spatiotemporal mode only, one colour per
  class (`class_colors`: recognising a class is trivial, so the proxy's short training is spent on the relation).
  With `class_colors=False` colours are random and only the glyph's shape identifies its class. Only cells that can
  relate different places at different times solve the clips, which spreads the scores of random cells; with the
  temporal mode as well, almost every cell of the default space could solve a share of the clips and their ranking
  was mostly seed noise (benchmarks/RESULTS.md, "Proxy signal").
- `match`: two objects in diagonally opposite quadrants; label = whether they share a glyph class (the
  same-different problem CNNs are known to learn slowly; Kim, Ricci & Serre 2018). In `spatial` clips both are
  visible throughout; in `spatiotemporal` clips the first shows in the first third of the clip and the second in the
  last third, so the comparison spans both the frame and the clip.
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

from attnas.evaluators.data.render import ObjectTracks, render
from attnas.evaluators.data.sprites import SPLITS, get_sprites
from attnas.search_space import AttnasError
from attnas.search_space.schema import unknown_key

MODES = ("spatial", "temporal", "spatiotemporal")
# Ten well-separated RGB colours, one per class when a task's `class_colors` is set.
PALETTE = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 1, 1], [1, 0.5, 0],
                    [0.5, 0, 1], [0, 1, 0.5]], dtype=np.float32)
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
    class_colors: bool = False
    window: int = 0

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
        if not 0 <= self.window <= self.frames // 3:
            raise AttnasError(f"task {self.name}: window must be in 0..frames // 3 = {self.frames // 3}, got "
                              f"{self.window}")
        if self.channels not in (1, 3):
            raise AttnasError(f"task {self.name}: channels must be 1 or 3, got {self.channels}")
        if self.class_colors and self.channels != 3:
            raise AttnasError(f"task {self.name}: class_colors needs channels 3, got {self.channels}")

    def _colors(self, rng: np.random.Generator, n: int, classes: np.ndarray | None = None) -> np.ndarray:
        """Object colours: the class's palette colour when `class_colors` (recognition becomes trivial and only
        the relation is left to learn), else random and independent of the class."""
        if self.channels == 1:
            return np.ones((n, 1), dtype=np.float32)
        if self.class_colors and classes is not None:
            return PALETTE[classes]
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
        """(3, T) bool: the frames of the first, middle and last third of the clip, or, with `window` > 0, the first,
        middle and last `window` frames (gaps between them put the objects further apart in time)."""
        t = np.arange(self.frames)
        if self.window:
            starts = np.array([0, (self.frames - self.window) // 2, self.frames - self.window])
            return (t[None, :] >= starts[:, None]) & (t[None, :] < starts[:, None] + self.window)
        return (t * 3 // self.frames)[None, :] == np.arange(3)[:, None]


def _distinct_pair(rng: np.random.Generator, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Two arrays of classes in [0, k) that differ elementwise, uniform over ordered pairs."""
    a = rng.integers(k, size=n)
    b = (a + rng.integers(1, k, size=n)) % k
    return a, b


@dataclass(frozen=True)
class OddOneOut(SyntheticTask):
    """Three objects, two of one class: label = the odd object's class (see the module docstring). The defaults are
    the quick-start task: 16 frames of 16x16, objects shown for 2 frames at the start, middle and end of the clip
    (13 frames between the first and the last, each in a different quadrant), one colour per class."""

    frames: int = 16
    size: int = 16
    class_colors: bool = True
    window: int = 2
    classes: int = 8
    sprites: str = "glyphs"
    modes: tuple[str, ...] = ("spatiotemporal",)

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
            objects.append(ObjectTracks(source.draw(classes[:, i], rng, split), self._colors(rng, n, classes[:, i]),
                                        y, x, visible))
        clips = render(objects, frames=self.frames, height=self.size, width=self.size, channels=self.channels,
                       noise=self.noise, rng=rng)
        truth = {"classes": classes, "odd_index": odd_index, "mode": mode, "quadrants": quadrants}
        return TaskData(clips, odd.astype(np.int64), truth)


@dataclass(frozen=True)
class Match(SyntheticTask):
    """Two objects in diagonally opposite quadrants: label 1 if they share a glyph class, else 0. `modes`: spatial
    (both visible throughout) and/or spatiotemporal (the first in the first third of the clip, the second in the last
    third)."""

    classes: int = 8
    modes: tuple[str, ...] = ("spatial", "spatiotemporal")

    name = "match"
    num_classes = 2

    def __post_init__(self) -> None:
        if not 2 <= self.classes <= get_sprites("glyphs").num_classes:
            raise AttnasError(f"task {self.name}: classes must be in 2..10, got {self.classes}")
        allowed = ("spatial", "spatiotemporal")
        if not self.modes or any(m not in allowed for m in self.modes):
            raise AttnasError(f"task {self.name}: modes must be a non-empty subset of {', '.join(allowed)}, "
                              f"got {list(self.modes)}")
        self._check_geometry(get_sprites("glyphs").size)

    def _generate(self, n: int, rng: np.random.Generator, split: str) -> TaskData:
        source = get_sprites("glyphs")
        labels = (rng.random(n) < 0.5).astype(np.int64)
        first, other = _distinct_pair(rng, n, self.classes)
        second = np.where(labels == 1, first, other)
        q0 = rng.integers(4, size=n)
        mode = np.array([MODES.index(m) for m in self.modes])[rng.integers(len(self.modes), size=n)]
        thirds = self._thirds()
        objects = []
        for i, (classes, quadrant) in enumerate(((first, q0), (second, 3 - q0))):  # 3 - q: the opposite quadrant
            y, x = self._drift(rng, n, quadrant, source.size)
            visible = np.where((mode == MODES.index("spatial"))[:, None], True, thirds[2 * i][None, :])
            objects.append(ObjectTracks(source.draw(classes, rng, split), self._colors(rng, n, classes), y, x,
                                        visible))
        clips = render(objects, frames=self.frames, height=self.size, width=self.size, channels=self.channels,
                       noise=self.noise, rng=rng)
        return TaskData(clips, labels, {"classes": np.stack([first, second], axis=1), "quadrant": q0,
                                        "mode": mode})


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
            objects.append(ObjectTracks(source.draw(classes, rng, split), self._colors(rng, n, classes), y, x,
                                        np.broadcast_to(thirds[i], (n, self.frames))))
        clips = render(objects, frames=self.frames, height=self.size, width=self.size, channels=self.channels,
                       noise=self.noise, rng=rng)
        return TaskData(clips, labels, {"classes": np.stack([first, distractor, last], axis=1),
                                        "quadrants": quadrants})


def _digits(**fields: Any) -> OddOneOut:
    # digits are 8x8: a 32x32 frame leaves them room to move inside their quadrant; the class is the handwriting,
    # never the colour
    defaults = {"classes": 10, "sprites": "digits", "size": 32, "class_colors": False, "modes": MODES}
    return OddOneOut(**{**defaults, **fields})


TASKS = {"odd_one_out": OddOneOut, "match": Match, "reappear": Reappear, "digits": _digits}
DEFAULT_TASK = "odd_one_out"


def create_task(name: str = DEFAULT_TASK, **fields: Any) -> SyntheticTask:
    """A synthetic task by registry name with its fields overridden; raises on unknown names or fields."""
    if name not in TASKS:
        raise AttnasError(f"unknown task {name!r}; expected one of {', '.join(sorted(TASKS))}")
    factory = TASKS[name]
    cls = OddOneOut if factory is _digits else factory
    known = sorted(f.name for f in dataclasses.fields(cls))
    for key in fields:
        if key not in known:
            raise AttnasError(f"task {name}: {unknown_key(key, known, f'fields.{key}')}")
    if "modes" in fields:
        fields["modes"] = tuple(fields["modes"])
    return factory(**fields)
