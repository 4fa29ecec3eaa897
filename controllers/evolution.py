"""`evolution`: regularized (aging) evolution, Real et al. 2019, run asynchronously."""
from __future__ import annotations

from typing import Any

import numpy as np

from attnas.controllers.base import Controller, whole_number
from attnas.controllers.objective import Objective
from attnas.search_space.errors import AttnasError, SpecError
from attnas.search_space.interface import Space


class EvolutionController(Controller):
    """Regularized evolution: tournament selection from the youngest `population_size` observations.

    Until `population_size` trials are observed or pending, proposals are uniform random samples (the initial
    population). After that every proposal is a child: draw `sample_size` members of the population (the last
    `population_size` observations, in observation order, failed and pruned ones included: they age out like any
    other) without replacement, take the best by the objective's ranking as parent, and mutate it once with
    `space.mutate`. Aging is implicit: the population is always the youngest observations, so the oldest member
    leaves as each new one arrives. It is asynchronous by construction: each finished trial changes the
    population, and proposals never wait for a generation. A child already observed or pending is replaced by
    mutating it once more (a two-edit child), then by a new tournament; after `mutation_attempts` tries the
    proposal falls back to an unseen random sample.

    Defaults (population 10, tournament 7) suit searches of a few hundred trials: on NAS-Bench-201 they reached
    random search's 150-evaluation result in about a third of the evaluations, where larger populations (20, 30)
    and smaller tournaments (3, 5) were slower (benchmarks/RESULTS.md, controllers_nb201).
    """

    name = "evolution"

    def __init__(self, *, space: Space, seed: int = 0, objective: Objective | dict | None = None,
                 population_size: int = 10, sample_size: int = 7, mutation_attempts: int = 50):
        super().__init__(space=space, seed=seed, objective=objective)
        self.population_size = whole_number(population_size, 2, "population_size")
        self.sample_size = whole_number(sample_size, 1, "sample_size")
        if self.sample_size > self.population_size:
            raise AttnasError(f"controller 'evolution': sample_size ({sample_size}) must not exceed "
                              f"population_size ({population_size})")
        self.mutation_attempts = whole_number(mutation_attempts, 1, "mutation_attempts")

    def settings(self) -> dict:
        return {"population_size": self.population_size, "sample_size": self.sample_size,
                "mutation_attempts": self.mutation_attempts}

    def _propose(self, rng: np.random.Generator) -> Any:
        observed = self._observations
        if not observed or len(observed) + len(self._pending) < self.population_size:
            return self.random_unseen(rng)
        population = observed[-self.population_size:]
        keys = [self.objective.rank(o.values, o.state) for o in population]
        size = min(self.sample_size, len(population))
        for _ in range(self.mutation_attempts):
            contestants = rng.choice(len(population), size=size, replace=False)
            parent = population[max(contestants, key=lambda i: keys[i])].cell
            try:
                child = self.space.mutate(parent, rng)
                if not self.is_new(child):
                    child = self.space.mutate(child, rng)
            except SpecError:
                continue
            if self.is_new(child):
                return child
        return self.random_unseen(rng)

