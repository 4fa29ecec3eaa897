"""Resumable pools of benchmark jobs: each job runs once, in a spawned single-threaded worker, and its result is
appended as one JSON line to a store, so an interrupted benchmark continues where it stopped.

A job is a JSON-able dict with a unique "key" (`job_key` of everything that determines its result); the job function
returns a JSON-able dict. `proxy_trial` is the job most benchmarks need: one proxy trial of a cell at a seed.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path


def job_key(*parts) -> str:
    """A short stable key for the settings `parts` (anything JSON can write, with str() for the rest)."""
    return hashlib.blake2b(json.dumps(parts, sort_keys=True, default=str).encode(), digest_size=8).hexdigest()


def run_jobs(function: Callable[[dict], dict], jobs: list[dict], *, workers: int, store: Path,
             describe: Callable[[dict], str] | None = None) -> dict[str, dict]:
    """The result of every job, keyed by job key: read from `store` when there, else run in `workers` processes
    (in job order, results as they finish) and appended to `store`."""
    done: dict[str, dict] = {}
    if store.exists():
        for line in store.read_text().splitlines():
            if line.strip():
                entry = json.loads(line)
                done[entry["key"]] = entry
    todo = [job for job in jobs if job["key"] not in done]
    if todo:
        print(f"  {len(jobs)} jobs, {len(jobs) - len(todo)} already in {store.name}, {len(todo)} to run on "
              f"{workers} workers", flush=True)
        store.parent.mkdir(parents=True, exist_ok=True)
        started = time.time()
        pool = multiprocessing.get_context("spawn").Pool(workers)
        try:
            with store.open("a") as out:
                for count, entry in enumerate(pool.imap_unordered(function, todo), 1):
                    done[entry["key"]] = entry
                    out.write(json.dumps(entry) + "\n")
                    out.flush()
                    text = describe(entry) if describe else entry["key"]
                    print(f"  [{time.time() - started:5.0f}s {count}/{len(todo)}] {text}", flush=True)
        except BaseException:
            pool.terminate()
            raise
        finally:  # on success the workers exit on their own, rather than be killed mid-reply
            pool.close()
            pool.join()
    return {job["key"]: done[job["key"]] for job in jobs}


def proxy_trial(job: dict) -> dict:
    """One proxy trial, single-threaded: job["proxy"] (a `ProxyConfig` dict), job["cell"] (a cell dict, a zoo name,
    or None for the backbone alone), job["seed"], and job.get("test") to score the held-out test split too. Returns
    the `EvaluationResult` dict (no traceback) with the job's key and label."""
    import torch

    from attnas.evaluators import ProxyConfig, ProxyEvaluator
    from attnas.search_space import CellSpec

    torch.set_num_threads(1)
    config = replace(ProxyConfig.from_dict(job["proxy"]), seed=job["seed"], threads=1)
    cell = job["cell"]
    spec = CellSpec.from_dict(cell) if isinstance(cell, dict) else cell
    result = ProxyEvaluator(config).evaluate(spec, test=bool(job.get("test", False))).to_dict()
    result.pop("traceback", None)
    return {**result, "key": job["key"], "label": job.get("label", "")}
