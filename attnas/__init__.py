"""attnas: neural architecture search for spatiotemporal attention cells in video models.

The parts are installed under this namespace: `attnas.search_space`, `attnas.cells`, `attnas.controllers`,
`attnas.evaluators`, `attnas.experiments`.
"""
import os

# Before anything loads torch's OpenMP runtime (it reads this once): threads waiting at a barrier sleep instead of
# spinning, so on a machine where other work holds a core, a trial's descheduled thread costs it its share of the
# cores instead of every barrier spinning a time slice away (measured: benchmarks/trial_speed.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
