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
