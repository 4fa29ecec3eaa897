"""A cell's Optuna parameters: one categorical per entry of the space's encoding, its choices named (`0.op:
dot_attention`, `0.dot_attention.dim: temporal`), so optuna-dashboard's importance, parallel-coordinate and slice
plots and its best-trial card speak the space's language rather than integer codes."""
from __future__ import annotations

from typing import Any, Sequence

from optuna.distributions import CategoricalDistribution


def categorical_params(names: Sequence[str], encoding: Sequence[int], cardinalities: Sequence[int],
                       choices: Sequence[Sequence[str]] = ()
                       ) -> tuple[dict[str, Any], dict[str, CategoricalDistribution]]:
    """(params, distributions) of one trial: entry i takes `choices[i][encoding[i]]`, or the category number when
    the space names no choices."""
    labels = list(choices) or [list(range(int(c))) for c in cardinalities]
    distributions = {name: CategoricalDistribution(list(options)) for name, options in zip(names, labels)}
    params = {name: options[int(index)] for name, index, options in zip(names, encoding, labels)}
    return params, distributions
