"""`random`: uniform random search over the cells of a space, without repeats (the baseline every search beats)."""
from __future__ import annotations

from typing import Any

import numpy as np

from attnas.controllers.base import Controller


class RandomController(Controller):
    """Draws each proposal uniformly from the space (`space.sample`), redrawing cells already observed or pending.

    Uniform over the space's sampling distribution restricted to unseen cells; it ignores every observation, so
    it is the reference the other controllers are measured against.
    """

    name = "random"

    def _propose(self, rng: np.random.Generator) -> Any:
        return self.random_unseen(rng)
