"""The on-disk dataset cache: built once, then read back memory-mapped; keyed by everything that shapes the data."""
import numpy as np

from attnas.evaluators.config import DataConfig
from attnas.evaluators.data import ArrayCache, cached_task_data, create_task
from attnas.evaluators.data import synthetic
from attnas.evaluators.datasets import clear_memo, load_splits


def test_second_request_reads_the_cache_without_generating(tmp_path, monkeypatch):
    calls = []
    original = synthetic.OddOneOut._generate

    def counting(self, n, rng, split):
        calls.append((n, split))
        return original(self, n, rng, split)

    monkeypatch.setattr(synthetic.OddOneOut, "_generate", counting)
    task = create_task("odd_one_out")
    first = cached_task_data(task, split="train", n=40, seed=1, cache=ArrayCache(tmp_path))
    # a fresh cache object (as in another trial's process) on the same folder
    other = ArrayCache(tmp_path)
    second = cached_task_data(task, split="train", n=40, seed=1, cache=other)
    assert calls == [(40, "train")] and other.builds == 0
    assert isinstance(second.clips, np.memmap)
    assert np.array_equal(first.clips, second.clips) and np.array_equal(first.labels, second.labels)
    assert np.array_equal(first.truth["classes"], second.truth["classes"])
    assert np.array_equal(second.clips, task.generate(40, seed=1).clips)


def test_key_covers_task_fields_seed_split_and_size(tmp_path):
    cache = ArrayCache(tmp_path)
    task = create_task("match")
    for kwargs in [dict(split="train", n=8, seed=0), dict(split="train", n=8, seed=1),
                   dict(split="validation", n=8, seed=0), dict(split="train", n=9, seed=0)]:
        cached_task_data(task, cache=cache, **kwargs)
    cached_task_data(create_task("match", frames=6), split="train", n=8, seed=0, cache=cache)
    assert cache.builds == 5
    cached_task_data(task, split="train", n=8, seed=1, cache=cache)
    assert cache.builds == 5


def test_incomplete_entry_is_rebuilt(tmp_path):
    cache = ArrayCache(tmp_path)
    description = {"x": 1}
    folder = cache.path(description)
    folder.mkdir(parents=True)
    (folder / "a.npy").write_bytes(b"half-written")  # no meta.json: a writer died
    arrays = cache.get_or_build(description, lambda: {"a": np.arange(3)})
    assert arrays["a"].tolist() == [0, 1, 2] and cache.builds == 1


def test_load_splits_shares_one_build_per_machine(tmp_path):
    config = DataConfig(task="match", train_size=16, validation_size=8, test_size=8, cache_dir=str(tmp_path))
    clear_memo()
    splits = load_splits(config)
    assert load_splits(config) is splits  # same process: the same arrays
    clear_memo()
    again = load_splits(config)  # a new process would see this: the cache, not a rebuild
    assert again is not splits and np.array_equal(again.train.clips, splits.train.clips)
    assert len(list((tmp_path / "datasets").glob("*/meta.json"))) == 3
    assert splits.num_classes == 2 and splits.clip_shape == (3, 8, 32, 32)
    clear_memo()


def test_concurrent_requests_build_once(tmp_path):
    import threading
    import time

    cache = ArrayCache(tmp_path)
    calls = []

    def slow_build():
        calls.append(1)
        time.sleep(0.3)  # long enough for the other request to arrive while this one builds
        return {"a": np.arange(5)}

    outputs = []
    threads = [threading.Thread(target=lambda: outputs.append(cache.get_or_build({"k": 1}, slow_build)))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and [o["a"].tolist() for o in outputs] == [[0, 1, 2, 3, 4]] * 3
