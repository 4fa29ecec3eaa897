"""The registry of controllers by name, and `create_controller`, the one way experiments build them."""
from __future__ import annotations

import difflib
import inspect
from typing import Any

from attnas.controllers.base import Controller, check_settings
from attnas.controllers.bayesian import BayesianController
from attnas.controllers.evolution import EvolutionController
from attnas.controllers.random_search import RandomController
from attnas.controllers.tpe import TPEController
from attnas.search_space.errors import AttnasError

CONTROLLERS: dict[str, type[Controller]] = {
    "random": RandomController,
    "evolution": EvolutionController,
    "bayesian": BayesianController,
    "tpe": TPEController,
}


def get_controller(name: str) -> type[Controller]:
    """The controller class registered as `name`; AttnasError listing the registered names otherwise."""
    if name not in CONTROLLERS:
        hint = difflib.get_close_matches(str(name), CONTROLLERS, n=1)
        raise AttnasError(f"controller {name!r} is unknown" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                          + f"; registered: {', '.join(CONTROLLERS)}")
    return CONTROLLERS[name]


def controller_settings(name: str) -> dict[str, Any]:
    """The settings controller `name` accepts (space, seed, objective included), with their defaults."""
    parameters = inspect.signature(get_controller(name).__init__).parameters
    return {p.name: p.default for p in parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def create_controller(name: str, **settings: Any) -> Controller:
    """Build controller `name` with `settings` (space=..., seed=..., objective=..., and its own keywords).

    An unknown name or setting raises AttnasError naming it and listing the valid ones.
    """
    check_settings(get_controller(name), settings)
    if "space" not in settings:
        raise AttnasError(f"controller {name!r}: missing setting 'space' (a search_space.Space)")
    return get_controller(name)(**settings)
