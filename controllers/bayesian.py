"""`bayesian`: Bayesian optimisation with a Gaussian process over Weisfeiler-Lehman graph features (NAS-BOWL).

The surrogate is scikit-learn's `GaussianProcessRegressor`. Each cell is the bag of WL subtree features its space
gives (`space.wl_features`), vectorised over the features seen in this round and scaled to unit length, so the
dot product of two cells is NAS-BOWL's normalised WL kernel (Ru et al. 2021). The GP kernel is a function of that
similarity: `kernel="rbf"` (default) is ConstantKernel * RBF on the unit vectors, i.e. exp(-(1 - k_WL) / l^2),
an exponentiated WL kernel that can express interactions between features; `kernel="linear"` is
ConstantKernel * DotProduct, the plain normalised WL kernel. With `encoding="wl+vector"` each cell's unit WL vector
is concatenated with a unit-length one-hot code of `space.encode_vector` (which choice each position of the flat
encoding holds), so the kernel also sees where in the cell an operation sits, as TPE does. A WhiteKernel takes the
evaluation noise; all hyperparameters are fitted by marginal likelihood (sklearn's L-BFGS, no restarts, so fits are
deterministic).

Targets: rewards pass through a rank-based Gaussian copula (normal scores of their ranks, Salinas et al. 2020),
so a few collapsed cells cannot dominate the fit. Acquisition: expected improvement over the best feasible
observation (Jones et al. 1998), in those units. With budgets in the
objective, each budgeted cost gets its own GP on log(cost), and EI is multiplied by the probability that every cost
is within budget (constrained EI, Gardner et al. 2014); before any feasible trial, the probability alone is
maximised. Candidates: `mutation_candidates` one- and two-edit mutations of the `parents` best observations plus
`random_candidates` uniform samples, never a cell already observed or pending.

Pending trials (parallel workers): kriging believer. After the hyperparameters are fitted on the observations, the
GP is refitted with the same kernel on observations plus pending cells valued at the GP's own mean, which shrinks
the uncertainty around pending cells without pretending to know their value.

Cost as the history grows: the GP is fitted on at most `max_train` observations: the best half by rank and the
most recent rest. Kernel matrices are then at most `max_train` squared whatever the history length, so a proposal
stays well under a second at thousands of observations (benchmarks/RESULTS.md, controllers_latency). Failed
trials (and trials without a reward) enter the fit at the worst reward seen, so their neighbourhood is avoided.
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from scipy.stats import norm, rankdata
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, DotProduct, Kernel, WhiteKernel
from threadpoolctl import threadpool_limits

from attnas.controllers.base import Controller, Observation, whole_number
from attnas.controllers.objective import COMPLETE, FAILED, Objective
from attnas.search_space.errors import AttnasError, SpecError
from attnas.search_space.interface import Space

KERNELS = ("rbf", "linear")
ENCODINGS = ("wl", "wl+vector")


class BayesianController(Controller):
    """GP-based Bayesian optimisation over WL graph features (see the module docstring for every choice)."""

    name = "bayesian"

    def __init__(self, *, space: Space, seed: int = 0, objective: Objective | dict | None = None,
                 initial_random: int = 10, parents: int = 10, mutation_candidates: int = 100,
                 random_candidates: int = 50, max_train: int = 200, kernel: str = "rbf", encoding: str = "wl",
                 xi: float = 0.0):
        super().__init__(space=space, seed=seed, objective=objective)
        self.initial_random = whole_number(initial_random, 2, "initial_random")
        self.parents = whole_number(parents, 1, "parents")
        self.mutation_candidates = whole_number(mutation_candidates, 0, "mutation_candidates")
        self.random_candidates = whole_number(random_candidates, 0, "random_candidates")
        if self.mutation_candidates + self.random_candidates == 0:
            raise AttnasError("controller 'bayesian': mutation_candidates + random_candidates must be >= 1")
        self.max_train = whole_number(max_train, 4, "max_train")
        if kernel not in KERNELS:
            raise AttnasError(f"controller setting kernel: {kernel!r} is unknown; expected one of "
                              f"{', '.join(KERNELS)}")
        self.kernel = kernel
        if encoding not in ENCODINGS:
            raise AttnasError(f"controller setting encoding: {encoding!r} is unknown; expected one of "
                              f"{', '.join(ENCODINGS)}")
        self.encoding = encoding
        if isinstance(xi, bool) or not isinstance(xi, (int, float)) or not xi >= 0:
            raise AttnasError(f"controller setting xi: expected a number >= 0, got {xi!r}")
        self.xi = float(xi)
        self._features: dict[str, dict[str, int]] = {}

    def settings(self) -> dict:
        return {"initial_random": self.initial_random, "parents": self.parents,
                "mutation_candidates": self.mutation_candidates, "random_candidates": self.random_candidates,
                "max_train": self.max_train, "kernel": self.kernel, "encoding": self.encoding,
                "xi": self.xi}

    def _reset(self) -> None:
        self._features.clear()

    # -------------------------------------------------------------------------------------------- proposing
    def _propose(self, rng: np.random.Generator) -> Any:
        train = self._training_set()
        if len(self._observations) + len(self._pending) < self.initial_random or len(train) < 2:
            return self.random_unseen(rng)
        candidates = self._candidates(rng)
        if not candidates:
            return self.random_unseen(rng)
        scores = self.acquisition(candidates, train=train)
        return candidates[int(np.argmax(scores))]

    def acquisition(self, candidates: list[Any], *, train: list[Observation] | None = None) -> np.ndarray:
        """Constrained expected improvement of each candidate cell, given the observations and pending trials."""
        train = self._training_set() if train is None else train
        pending = list(self._pending.values())
        cells = [o.cell for o in train]
        features = self._matrix(cells + pending + candidates)
        x_train = features[:len(cells)]
        x_pending = features[len(cells):len(cells) + len(pending)]
        x_candidates = features[len(cells) + len(pending):]

        scores = _normal_scores(self._rewards(train))
        mean, std = self._posterior(x_train, scores, x_pending, x_candidates)
        probability = self._feasibility(train, x_train, x_pending, x_candidates)
        incumbents = [score for o, score in zip(train, scores) if o.state == COMPLETE
                      and self.objective.feasible(o.values) and self.objective.reward(o.values) is not None]
        if not incumbents:
            return probability
        return _expected_improvement(mean, std, max(incumbents) + self.xi) * probability

    # ------------------------------------------------------------------------------------------- internals
    def _training_set(self) -> list[Observation]:
        """The observations the GP is fitted on: all of them, or the best and the most recent when too many."""
        usable = self._observations
        if len(usable) <= self.max_train:
            return list(usable)
        best = self.ranked()[: self.max_train // 2]
        chosen = {id(o) for o in best}
        recent = []
        for observation in reversed(usable):
            if len(best) + len(recent) >= self.max_train:
                break
            if id(observation) not in chosen:
                recent.append(observation)
        chosen |= {id(o) for o in recent}
        return [o for o in usable if id(o) in chosen]  # observation order: a deterministic fit

    def _rewards(self, observations: list[Observation]) -> np.ndarray:
        rewards = [self.objective.reward(o.values) if o.state != FAILED else None for o in observations]
        known = [r for r in rewards if r is not None]
        worst = min(known) if known else 0.0
        return np.array([worst if r is None else r for r in rewards], dtype=float)

    def _candidates(self, rng: np.random.Generator) -> list[Any]:
        seen: set[str] = set()
        candidates: list[Any] = []

        def add(cell: Any) -> None:
            digest = self.space.hash(cell)
            if digest not in seen and self.is_new(cell):
                seen.add(digest)
                candidates.append(cell)

        parents = [o.cell for o in self.ranked()[: self.parents]]
        for i in range(self.mutation_candidates):
            child = parents[i % len(parents)]
            try:
                for _ in range(1 + (rng.random() < 0.5)):
                    child = self.space.mutate(child, rng)
            except SpecError:
                continue
            add(child)
        for _ in range(self.random_candidates):
            add(self.space.sample(rng))
        return candidates

    def _matrix(self, cells: list[Any]) -> np.ndarray:
        """Unit-length WL feature vectors, over the features these cells have (sorted, so order never matters)."""
        bags = []
        for cell in cells:
            digest = self.space.hash(cell)
            if digest not in self._features:
                self._features[digest] = dict(self.space.wl_features(cell))
            bags.append(self._features[digest])
        vocabulary = {name: i for i, name in enumerate(sorted(set().union(*bags)))}
        matrix = np.zeros((len(cells), len(vocabulary)))
        for row, bag in enumerate(bags):
            for name, count in bag.items():
                matrix[row, vocabulary[name]] = count
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix /= np.where(norms > 0, norms, 1.0)
        if self.encoding == "wl+vector":
            matrix = np.hstack([matrix, self._one_hot(cells)]) / np.sqrt(2.0)
        # Kernels here depend on rows only through their dot products, so rows can be replaced by coordinates
        # with the same Gram matrix (eigendecomposition of X X^T): at most as many columns as rows instead of one
        # per WL feature, which makes each kernel evaluation of the hyperparameter fit several times cheaper.
        if matrix.shape[1] > matrix.shape[0]:
            eigenvalues, eigenvectors = np.linalg.eigh(matrix @ matrix.T)
            keep = eigenvalues > 1e-10 * max(eigenvalues[-1], 1e-300)
            matrix = eigenvectors[:, keep] * np.sqrt(eigenvalues[keep])
        return matrix

    def _one_hot(self, cells: list[Any]) -> np.ndarray:
        """Unit-length one-hot codes of `space.encode_vector`: which choice each position holds."""
        cardinalities = np.asarray(self.space.vector_cardinalities())
        offsets = np.concatenate([[0], np.cumsum(cardinalities)[:-1]])
        matrix = np.zeros((len(cells), int(cardinalities.sum())))
        for row, cell in enumerate(cells):
            matrix[row, offsets + np.asarray(self.space.encode_vector(cell))] = 1.0
        return matrix / np.sqrt(len(cardinalities))

    def _make_kernel(self) -> Kernel:
        if self.kernel == "rbf":
            shape: Kernel = RBF(length_scale=1.0, length_scale_bounds=(0.05, 20.0))
        else:
            shape = DotProduct(sigma_0=0.1, sigma_0_bounds=(1e-3, 10.0))
        return ConstantKernel(1.0, (1e-2, 1e2)) * shape + WhiteKernel(1e-2, (1e-6, 1.0))

    def _posterior(self, x_train: np.ndarray, y: np.ndarray, x_pending: np.ndarray, x_query: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
        # The matrices are at most max_train wide: one BLAS thread is fastest, and the machine stays shared.
        with warnings.catch_warnings(), threadpool_limits(1, user_api="blas"):
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp = GaussianProcessRegressor(kernel=self._make_kernel(), normalize_y=True, n_restarts_optimizer=0)
            gp.fit(x_train, y)
            if len(x_pending):
                believed = gp.predict(x_pending)
                gp = GaussianProcessRegressor(kernel=gp.kernel_, normalize_y=True, optimizer=None)
                gp.fit(np.vstack([x_train, x_pending]), np.concatenate([y, believed]))
            mean, std = gp.predict(x_query, return_std=True)
        return mean, std

    def _feasibility(self, train: list[Observation], x_train: np.ndarray, x_pending: np.ndarray,
                     x_query: np.ndarray) -> np.ndarray:
        """Probability that each query cell is within every budget, from one GP per budgeted log-cost."""
        probability = np.ones(len(x_query))
        for name, limit in self.objective.budget.items():
            rows = [i for i, o in enumerate(train) if name in o.values and o.values[name] > 0
                    and math.isfinite(o.values[name])]
            if len(rows) < 2:
                continue
            log_cost = np.log([train[i].values[name] for i in rows])
            mean, std = self._posterior(x_train[rows], log_cost, x_pending, x_query)
            probability *= norm.cdf((math.log(limit) - mean) / np.maximum(std, 1e-9))
        return probability


def _normal_scores(values: np.ndarray) -> np.ndarray:
    """Rank-based Gaussian copula transform (Salinas et al. 2020): the GP sees normal quantiles of the ranks, so a
    few collapsed cells (10% accuracy among 90% ones) cannot dominate its fit; the order, hence the incumbent and
    the meaning of improvement, is unchanged."""
    return norm.ppf((rankdata(values) - 0.5) / len(values))


def _expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    std = np.maximum(std, 1e-12)
    z = (mean - best) / std
    return (mean - best) * norm.cdf(z) + std * norm.pdf(z)
