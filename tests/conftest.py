"""Fixtures shared by every test package."""
from __future__ import annotations

import os
import shutil
import tempfile

import pytest

TMPFS = "/dev/shm"
TMPFS_ROOM = 4 * 2**30  # a whole run leaves about 0.4 GB in its temporary folders; pytest keeps the last three runs


def pytest_configure(config):
    """pytest's temporary folders (tmp_path, tmp_path_factory) on tmpfs when the machine has one with room: the
    end-to-end tests commit to SQLite histories all the time (3.6 ms a commit on this disk, 0.18 ms on tmpfs), and
    disk speed is not what they test. pytest makes them under `tempfile.gettempdir()`, so this process's default
    temporary folder moves (subprocesses, Ray's session folder and the run folders a test names keep theirs). An
    explicit --basetemp, TMPDIR or PYTEST_DEBUG_TEMPROOT wins; without /dev/shm everything stays where it was."""
    if config.option.basetemp or os.environ.get("TMPDIR") or os.environ.get("PYTEST_DEBUG_TEMPROOT"):
        return
    if os.path.isdir(TMPFS) and os.access(TMPFS, os.W_OK) and shutil.disk_usage(TMPFS).free >= TMPFS_ROOM:
        tempfile.tempdir = TMPFS


@pytest.fixture
def ray_local():
    """A local Ray with two CPUs and no dashboard, shut down afterwards."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def ray_module():
    """One local Ray (two CPUs, no dashboard) shared by a module's tests that search in this process, shut down
    after the module: starting Ray takes seconds, and a search joins a running Ray rather than starting its own.
    Only for modules where no test needs its own Ray (a cluster, or a search that must start Ray itself)."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        yield ray
    finally:
        ray.shutdown()


from tests.attnbench_tables import tiny_attnbench_table  # noqa: E402,F401  (a session fixture: built once)
