"""Controllers that propose cells: random search, regularized evolution, Bayesian optimisation, TPE.

numpy/scipy/optuna only, never torch; they see cells only through `search_space.Space`.
"""
