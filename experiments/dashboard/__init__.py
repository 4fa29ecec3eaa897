"""attnas's views of a search (docs/design.md, "Search, history, dashboard"): optuna-dashboard served on the run's
history, fed with NAS-specific additions that the driver writes as trials finish: each cell drawn as an SVG
artifact, a markdown note per trial, and attnas's own plotly figures; plus a self-contained HTML report.

    drawing.py     a cell as SVG (nodes with op, dim and attributes; ports on the edges)
    notes.py       the markdown notes (per trial, and the study's)
    data.py        what the figures read from a history (trials as points, the reference cells' scores)
    figures.py     the plotly figures and the numbers behind them
    store.py       the run's artifact store (runs/<name>/artifacts)
    publisher.py   the driver's hook: drawings, notes and throttled figure refreshes while a search runs
    background.py  the publisher's work on a thread of its own, off the driver's search loop
    references.py  `attnas references RUN`: score the reference cells once per run
    server.py      `attnas dashboard RUN`: optuna-dashboard on 127.0.0.1 (another host only when asked)
    report.py      `attnas report RUN -o report.html`
"""
from attnas.lazy import lazy_exports

# Resolved on first use: `attnas status` and `list` read a module or two of this package and must not pay for
# optuna-dashboard's and plotly's imports (about 3 s) that the publisher needs.
_EXPORTS = {
    "DashboardPublisher": "attnas.experiments.dashboard.publisher",
    "best_so_far": "attnas.experiments.dashboard.figures",
    "build_figures": "attnas.experiments.dashboard.figures",
    "cell_svg": "attnas.experiments.dashboard.drawing",
    "op_dim_frequencies": "attnas.experiments.dashboard.figures",
    "pareto_front": "attnas.experiments.dashboard.figures",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
