"""The resumable job pool the benchmarks share: each job runs once, results survive an interrupted run."""
from __future__ import annotations

import json

from benchmarks.job_pool import job_key, run_jobs


def square(job: dict) -> dict:
    return {"key": job["key"], "value": job["x"] ** 2}


def test_jobs_run_once_and_are_read_back_from_the_store(tmp_path):
    store = tmp_path / "jobs.jsonl"
    jobs = [{"key": job_key("square", x), "x": x} for x in range(4)]
    first = run_jobs(square, jobs[:2], workers=1, store=store)
    assert [first[j["key"]]["value"] for j in jobs[:2]] == [0, 1]
    # a stored result is trusted: edit it and it is what comes back, not a re-run
    lines = [json.loads(line) for line in store.read_text().splitlines()]
    lines[0]["value"] = -1
    store.write_text("".join(json.dumps(line) + "\n" for line in lines))
    second = run_jobs(square, jobs, workers=2, store=store)
    assert [second[j["key"]]["value"] for j in jobs] == [-1, 1, 4, 9]
    assert len(store.read_text().splitlines()) == 4


def test_keys_depend_on_every_part_and_nothing_else():
    assert job_key("a", {"x": 1, "y": 2}) == job_key("a", {"y": 2, "x": 1})
    assert job_key("a", 1) != job_key("a", 2) != job_key("b", 2)
