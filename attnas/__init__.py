"""attnas: neural architecture search for spatiotemporal attention cells in video models.

The Python API (the same steps as the `attnas` command):

    import attnas
    run = attnas.search("experiments/configs/quickstart.yaml", name="quickstart")   # or a dict
    run.best_cell, run.trials_dataframe(), run.path
    attnas.load_run("quickstart").export("best_cell.py")
    module = attnas.build_cell(run.best_cell, channels=64)

Mistakes in what a user hands in raise `attnas.AttnasError` subclasses (`ConfigError`, `SpecError`, ...), one line
each. The parts are installed under this namespace: `attnas.search_space`, `attnas.cells`, `attnas.controllers`,
`attnas.evaluators`, `attnas.experiments`. Names are resolved on first use, so `import attnas` stays light and
`attnas.search_space` never pulls in torch through this package.
"""
from __future__ import annotations

import os

from attnas.lazy import lazy_exports

# Before anything loads torch's OpenMP runtime (it reads this once): threads waiting at a barrier sleep instead of
# spinning, so on a machine where other work holds a core, a trial's descheduled thread costs it its share of the
# cores instead of every barrier spinning a time slice away (measured: benchmarks/trial_speed.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "search": "attnas.api", "load_run": "attnas.api", "export": "attnas.api", "Run": "attnas.api",
    "build_cell": "attnas.api", "insert": "attnas.api",
    "CellSpec": "attnas.search_space", "load_space": "attnas.search_space", "load_zoo": "attnas.search_space",
    "TrialContext": "attnas.evaluators.custom",
    "AttnasError": "attnas.errors", "SpecError": "attnas.errors", "ConfigError": "attnas.errors",
    "CellBuildError": "attnas.errors", "CellInputError": "attnas.errors", "RunNotFoundError": "attnas.errors",
    "RunExistsError": "attnas.errors", "EvaluatorImportError": "attnas.errors", "SpaceExhausted": "attnas.errors",
}
__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
