"""Synthetic tasks: determinism, shapes, label balance, and labels that really are the distant relation."""
import numpy as np
import pytest

from attnas.evaluators.data import DEFAULT_TASK, TASKS, create_task
from attnas.evaluators.data.sprites import Digits, Glyphs, get_sprites
from attnas.evaluators.data.synthetic import MODES, PALETTE
from attnas.search_space import AttnasError

ALL = sorted(TASKS)


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_clips_other_seed_other_clips(name):
    task = create_task(name)
    a, b, c = (task.generate(64, seed=s) for s in (3, 3, 4))
    assert np.array_equal(a.clips, b.clips) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.clips, c.clips)
    for key in a.truth:
        assert np.array_equal(a.truth[key], b.truth[key])


@pytest.mark.parametrize("name", ALL)
def test_shape_dtype_and_label_range(name):
    task = create_task(name, frames=6, size=32)
    data = task.generate(50, seed=0)
    assert data.clips.shape == (50, *task.clip_shape) == (50, 3, 6, 32, 32)
    assert data.clips.dtype == np.uint8 and data.labels.dtype == np.int64
    assert data.labels.min() >= 0 and data.labels.max() < task.num_classes
    assert data.clips.max() > 0


@pytest.mark.parametrize("name", ALL)
def test_labels_are_balanced(name):
    task = create_task(name)
    counts = np.bincount(task.generate(2000, seed=1).labels, minlength=task.num_classes)
    expected = 2000 / task.num_classes
    # binomial sd is at most sqrt(2000 * 0.25) < 23; 5 sd is a loose bound that still catches a skewed generator
    assert np.all(np.abs(counts - expected) < 5 * 23), counts


def test_window_shows_each_object_for_that_many_frames_at_start_middle_and_end():
    task = create_task("odd_one_out", frames=12, window=2)
    assert task._thirds().astype(int).tolist() == [[1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                                                   [0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0],
                                                   [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]]
    with pytest.raises(AttnasError, match="window"):
        create_task("odd_one_out", frames=12, window=5)


def test_splits_differ():
    task = create_task(DEFAULT_TASK)
    train, test = task.generate(32, seed=0, split="train"), task.generate(32, seed=0, split="test")
    assert not np.array_equal(train.clips, test.clips)


def test_odd_one_out_label_is_the_class_that_occurs_once():
    data = create_task("odd_one_out", modes=MODES).generate(600, seed=2)
    classes = data.truth["classes"]
    for row, label, odd in zip(classes, data.labels, data.truth["odd_index"]):
        values, counts = np.unique(row, return_counts=True)
        assert sorted(counts) == [1, 2] and values[counts == 1][0] == label == row[odd]
    # all three modes occur, and the pair's class is equally often any class: no class is a shortcut
    assert set(np.unique(data.truth["mode"])) == {0, 1, 2}


def _object_pixels(clip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, which quadrants hold lit pixels: (T, 4) bool."""
    lit = clip.max(axis=0) > 0  # (T, H, W)
    half = lit.shape[-1] // 2
    quads = [lit[:, :half, :half], lit[:, :half, half:], lit[:, half:, :half], lit[:, half:, half:]]
    return np.stack([q.any(axis=(1, 2)) for q in quads], axis=1)


def test_odd_one_out_objects_are_where_and_when_the_mode_says():
    task = create_task("odd_one_out", frames=9, size=32, window=0, modes=MODES)
    data = task.generate(300, seed=5)
    for clip, mode, quadrants in zip(data.clips, data.truth["mode"], data.truth["quadrants"]):
        occupied = _object_pixels(clip)
        if MODES[mode] == "spatial":  # three distinct quadrants, lit in every frame
            assert occupied.sum(axis=1).tolist() == [3] * 9
            assert set(np.flatnonzero(occupied[0])) == set(quadrants)
        else:  # one object per third of the clip
            assert occupied.sum(axis=1).tolist() == [1] * 9
            places = [int(np.flatnonzero(occupied[t])[0]) for t in (0, 4, 8)]
            assert places == (quadrants.tolist() if MODES[mode] == "spatiotemporal" else [quadrants[0]] * 3)
            if MODES[mode] == "spatiotemporal":
                assert len(set(places)) == 3  # related objects never share a quadrant


def test_match_objects_are_diagonally_opposite_and_label_is_same_class():
    data = create_task("match", frames=9).generate(500, seed=0)
    classes = data.truth["classes"]
    assert np.array_equal(data.labels, (classes[:, 0] == classes[:, 1]).astype(np.int64))
    assert set(np.unique(data.truth["mode"])) == {MODES.index("spatial"), MODES.index("spatiotemporal")}
    for clip, q, mode in zip(data.clips[:100], data.truth["quadrant"], data.truth["mode"]):
        occupied = _object_pixels(clip)
        if MODES[mode] == "spatial":
            assert all(set(np.flatnonzero(frame)) == {q, 3 - q} for frame in occupied)
        else:  # first object in the first third only, second in the last third only
            assert [set(np.flatnonzero(occupied[t])) for t in (0, 4, 8)] == [{q}, set(), {3 - q}]


def test_reappear_label_compares_first_and_last_third_only():
    data = create_task("reappear").generate(2000, seed=0)
    first, distractor, last = data.truth["classes"].T
    assert np.array_equal(data.labels, (first == last).astype(np.int64))
    # the distractor carries no information about the label
    assert abs(np.mean(distractor[data.labels == 1] == first[data.labels == 1]) - 1 / 8) < 0.06


def test_colour_is_independent_of_class_unless_asked():
    task = create_task("match", modes=["spatial"])
    data = task.generate(1000, seed=0)
    lit = data.clips.reshape(1000, 3, -1).max(axis=2)  # brightest value per channel, pure colour of the objects
    same = data.labels == 1
    # random colours: the per-channel brightness does not tell same from different
    assert abs(lit[same].mean() - lit[~same].mean()) < 6
    coloured = create_task("match", class_colors=True, modes=["spatial"]).generate(200, seed=0)
    same = coloured.labels == 1
    brightest = coloured.clips[same].reshape(same.sum(), 3, -1).max(axis=2)
    expected = (PALETTE[coloured.truth["classes"][same, 0]] * 255).astype(np.uint8)
    assert np.array_equal(brightest, expected)


def test_digits_use_disjoint_instances_per_split():
    digits = Digits()
    pools = [set(np.concatenate(digits.pools[s])) for s in ("train", "validation", "test")]
    assert not (pools[0] & pools[1]) and not (pools[0] & pools[2]) and not (pools[1] & pools[2])
    assert sum(len(p) for p in pools) == len(digits.images) == 1797
    data = create_task("digits").generate(200, seed=0, split="test")
    assert data.labels.max() < 10 and data.clips.shape[2:] == (16, 32, 32)


def test_glyphs_are_distinct():
    images = Glyphs().images.reshape(10, -1)
    distances = (images[:, None] != images[None]).sum(-1) + np.eye(10, dtype=int) * 100
    assert distances.min() >= 4


def test_unknown_names_and_fields_raise_listing_the_valid_ones():
    with pytest.raises(AttnasError, match="unknown task 'nope'.*odd_one_out"):
        create_task("nope")
    with pytest.raises(AttnasError, match=r"task match: fields.colour: unknown field; expected one of: channels"):
        create_task("match", colour=True)
    with pytest.raises(AttnasError, match=r"fields.nois: unknown field \(did you mean 'noise'\?\)"):
        create_task("match", nois=0.1)
    with pytest.raises(AttnasError, match="unknown sprite source"):
        get_sprites("emoji")
    with pytest.raises(AttnasError, match="split"):
        create_task("match").generate(4, seed=0, split="dev")
    with pytest.raises(AttnasError, match="size"):
        create_task("odd_one_out", size=8)
    with pytest.raises(AttnasError, match="modes"):
        create_task("odd_one_out", modes=["sideways"])
