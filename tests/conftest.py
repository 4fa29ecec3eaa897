"""Fixtures shared by every test package."""
from __future__ import annotations

import pytest


@pytest.fixture
def ray_local():
    """A local Ray with two CPUs and no dashboard, shut down afterwards."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
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

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        yield ray
    finally:
        ray.shutdown()


from tests.attnbench_tables import tiny_attnbench_table  # noqa: E402,F401  (a session fixture: built once)
