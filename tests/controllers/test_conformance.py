"""Every registered controller passes every check of the shared suite (controllers/testing.py), on two spaces."""
from __future__ import annotations

import pytest

from attnas.controllers import CONTROLLERS, create_controller
from attnas.controllers.nasbench201 import NASBench201Space
from attnas.controllers.testing import CHECKS, check_exhaustion
from attnas.search_space import load_space

SPACES = {"small": load_space("small"), "nasbench201": NASBench201Space()}


# Model-based controllers fit a model per proposal: their runs of the suite take seconds, not milliseconds.
NAMES = [pytest.param(name, marks=pytest.mark.slow) if name in ("bayesian", "tpe") else name for name in CONTROLLERS]


# The suite checks bookkeeping (validity, deduplication, determinism, persistence), which does not depend on how
# many candidates the GP scores: a smaller candidate pool and training cap keep its many proposals fast.
FAST_SETTINGS = {"bayesian": {"mutation_candidates": 30, "random_candidates": 20, "max_train": 60}}


def factory(name: str):
    def make(space, seed, objective=None):
        return create_controller(name, space=space, seed=seed, objective=objective, **FAST_SETTINGS.get(name, {}))
    return make


@pytest.mark.parametrize("check", [c for c in CHECKS if c is not check_exhaustion], ids=lambda c: c.__name__)
@pytest.mark.parametrize("space", list(SPACES))
@pytest.mark.parametrize("name", NAMES)
def test_conformance(name, space, check):
    check(factory(name), SPACES[space])


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CONTROLLERS))
def test_exhausts_small_space(name):
    check_exhaustion(factory(name), SPACES["small"])
