"""Controllers that propose cells: random search, regularized evolution, Bayesian optimisation, TPE.

numpy/scipy/scikit-learn/optuna only, never torch; they see cells only through `search_space.Space`.
"""
from attnas.controllers.base import Controller, Observation, SpaceExhausted
from attnas.controllers.objective import COMPLETE, FAILED, PRUNED, TRIAL_STATES, Objective, Tradeoff
from attnas.controllers.registry import CONTROLLERS, controller_settings, create_controller, get_controller

__all__ = [
    "Controller", "Observation", "SpaceExhausted", "Objective", "Tradeoff", "COMPLETE", "FAILED", "PRUNED",
    "TRIAL_STATES", "CONTROLLERS", "create_controller", "controller_settings", "get_controller",
]
