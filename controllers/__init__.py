"""Controllers that propose cells: random search, regularized evolution, Bayesian optimisation, TPE.

numpy/scipy/scikit-learn/optuna only, never torch; they see cells only through `search_space.Space`.
"""
from attnas.lazy import lazy_exports

# Resolved on first use, so that reading a history (`attnas status`, `list`) does not import scipy and
# scikit-learn for the Bayesian controller (about 3 s).
_EXPORTS = {
    **dict.fromkeys(["Controller", "Observation", "SpaceExhausted"], "attnas.controllers.base"),
    **dict.fromkeys(["COMPLETE", "FAILED", "PRUNED", "TRIAL_STATES", "Objective", "Tradeoff"],
                    "attnas.controllers.objective"),
    **dict.fromkeys(["CONTROLLERS", "controller_settings", "create_controller", "get_controller"],
                    "attnas.controllers.registry"),
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
