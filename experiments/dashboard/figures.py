"""attnas's own plotly figures of a search: best so far against trials and against wall time (one line per
controller), accuracy against multiply-adds with the Pareto front and the reference cells, how often each op and
dim occurs in the top 10% of cells against the whole history, and the learning curves of the best cells.

The numbers behind each figure come from small pure functions (`best_so_far`, `pareto_front`,
`op_dim_frequencies`) that the tests check by hand; `build_figures` turns a history into the figures, keyed by the
stable id under which the dashboard stores each one.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from attnas.experiments.dashboard.data import Reference, TrialPoint
from attnas.experiments.history import COMPLETE, FAILED, PRUNED

TOP_FRACTION = 0.10
CURVES_SHOWN = 10
MIN_TOP_CELLS = 3  # the ops figure draws its bars once the top 10% holds this many cells
REFERENCE_LABELS = {"none": "backbone alone", "non_local": "non-local", "double_attention": "A^2 (double attention)"}
FIGURE_TITLES = {
    "attnas-best-by-trial": "Best accuracy so far, by trial",
    "attnas-best-by-time": "Best accuracy so far, by wall time",
    "attnas-accuracy-vs-macs": "Accuracy against multiply-adds (Pareto front, reference cells)",
    "attnas-ops-top10": "Ops and dims in the top 10% of cells vs the whole history",
    "attnas-learning-curves": "Learning curves of the best cells",
}
# Legends go under the plot: the dashboard shows each figure in a fixed 450 px box, where a legend on top covers the
# title. The learning curves, with a dozen entries, keep plotly's legend on the right instead.
_LAYOUT = dict(template="plotly_white", height=430, margin=dict(l=60, r=20, t=50, b=40),
               legend=dict(orientation="h", yanchor="top", y=-0.22, x=0))


# ------------------------------------------------------------------------------------------ the numbers
def best_so_far(values: Iterable[float | None]) -> list[float | None]:
    """The running maximum of `values`, skipping None (trials that did not complete); None before the first."""
    best: float | None = None
    out: list[float | None] = []
    for value in values:
        if value is not None and (best is None or value > best):
            best = value
        out.append(best)
    return out


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points (cost, accuracy) no other point beats (cost no higher and accuracy no lower, one of
    them strictly), sorted by cost. Of exact duplicates the first is kept."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1], i))
    front, best = [], -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def op_dim_frequencies(cells: Sequence[Mapping[str, Any]], values: Sequence[float],
                       top_fraction: float = TOP_FRACTION) -> dict[str, dict[str, tuple[float, float]]]:
    """For each op and each dim: (share of the top cells that use it, share of all cells that use it).

    A cell "uses" an op (a dim) when at least one of its nodes has it. The top cells are the ceil(top_fraction * n)
    best by value (at least one); ties keep history order."""
    if len(cells) != len(values):
        raise ValueError("cells and values must have the same length")
    if not cells:
        return {"op": {}, "dim": {}}
    ranked = sorted(range(len(cells)), key=lambda i: -values[i])
    top = set(ranked[:max(1, math.ceil(top_fraction * len(cells)))])
    counts: dict[str, dict[str, list[int]]] = {"op": {}, "dim": {}}
    for index, cell in enumerate(cells):
        nodes = list((cell.get("nodes") or {}).values())
        used = {"op": {n["op"] for n in nodes}, "dim": {n["dim"] for n in nodes if "dim" in n}}
        for kind, names in used.items():
            for name in names:
                tally = counts[kind].setdefault(name, [0, 0])
                tally[0] += index in top
                tally[1] += 1
    return {kind: {name: (t / len(top), a / len(cells)) for name, (t, a) in sorted(table.items())}
            for kind, table in counts.items()}


# ------------------------------------------------------------------------------------------ the figures
def build_figures(points: Sequence[TrialPoint], references: Sequence[Reference] = ()) -> dict[str, go.Figure]:
    """Every attnas figure of a history, keyed by its graph-object id (stable, so a refresh overwrites it)."""
    return {
        "attnas-best-by-trial": best_by_trial_figure(points, references),
        "attnas-best-by-time": best_by_time_figure(points, references),
        "attnas-accuracy-vs-macs": accuracy_macs_figure(points, references),
        "attnas-ops-top10": frequencies_figure(points),
        "attnas-learning-curves": curves_figure(points, references),
    }


def best_by_trial_figure(points: Sequence[TrialPoint], references: Sequence[Reference] = ()) -> go.Figure:
    """Best accuracy so far against trial number, one step line per controller; reference cells as lines."""
    figure = go.Figure()
    for controller, mine in _by_controller(points):
        finished = [p for p in mine if p.state in (COMPLETE, PRUNED, FAILED)]
        figure.add_trace(go.Scatter(x=[p.number for p in finished], y=best_so_far(p.value for p in finished),
                                    mode="lines+markers", line_shape="hv", name=controller, marker_size=4))
    _reference_lines(figure, references)
    return _finish(figure, "attnas-best-by-trial", x="trial number", y="best accuracy so far")


def best_by_time_figure(points: Sequence[TrialPoint], references: Sequence[Reference] = ()) -> go.Figure:
    """Best accuracy so far against when each trial finished, one step line per controller."""
    figure = go.Figure()
    span = max((p.finished_s for p in points if p.finished_s is not None), default=0.0)
    unit, scale = ("hours", 3600.0) if span >= 3 * 3600 else ("minutes", 60.0)
    for controller, mine in _by_controller(points):
        finished = sorted((p for p in mine if p.finished_s is not None), key=lambda p: (p.finished_s, p.number))
        figure.add_trace(go.Scatter(x=[p.finished_s / scale for p in finished],
                                    y=best_so_far(p.value for p in finished), mode="lines+markers",
                                    line_shape="hv", name=controller, marker_size=4))
    _reference_lines(figure, references)
    return _finish(figure, "attnas-best-by-time", x=f"wall time since the first trial started ({unit})",
                   y="best accuracy so far")


def accuracy_macs_figure(points: Sequence[TrialPoint], references: Sequence[Reference] = ()) -> go.Figure:
    """Complete cells by multiply-adds and accuracy, their Pareto front, and the reference cells as stars."""
    complete = [p for p in points if p.state == COMPLETE and p.value is not None and p.macs]
    figure = go.Figure()
    shown = [r for r in references if r.macs]
    if shown:  # drawn first, so a cell at the same place (the Pareto front's, say) stays visible on top of a star
        least, most = min(r.macs for r in shown), max(r.macs for r in shown)
        figure.add_trace(go.Scatter(
            x=[r.macs for r in shown], y=[r.accuracy for r in shown], mode="markers+text", name="reference cells",
            text=[REFERENCE_LABELS.get(r.name, r.name) for r in shown], cliponaxis=False,
            # labels lean inwards at the ends of the axis, so none runs off the plot
            textposition=["top right" if r.macs == least and least != most else
                          "top left" if r.macs == most and least != most else "top center" for r in shown],
            marker=dict(symbol="star", size=15, color="#2ca02c", line=dict(width=1, color="black")),
            hovertemplate="%{text}<br>MACs %{x:.3s}<br>accuracy %{y:.4f}<extra></extra>"))
    figure.add_trace(go.Scatter(
        x=[p.macs for p in complete], y=[p.value for p in complete], mode="markers", name="cells",
        marker=dict(size=6, opacity=0.55, color="#1f77b4"), customdata=[p.number for p in complete],
        hovertemplate="trial %{customdata}<br>MACs %{x:.3s}<br>accuracy %{y:.4f}<extra></extra>"))
    front = [complete[i] for i in pareto_front([(p.macs, p.value) for p in complete])]
    figure.add_trace(go.Scatter(
        x=[p.macs for p in front], y=[p.value for p in front], mode="lines+markers", line_shape="hv",
        name="Pareto front", marker=dict(size=9, color="#d62728"), customdata=[p.number for p in front],
        hovertemplate="trial %{customdata} (Pareto)<br>MACs %{x:.3s}<br>accuracy %{y:.4f}<extra></extra>"))
    figure.update_xaxes(type="log")
    figure.update_yaxes(range=_padded_range([p.value for p in complete] + [r.accuracy for r in shown]))
    return _finish(figure, "attnas-accuracy-vs-macs", x="multiply-adds per clip (log)", y="accuracy")


def frequencies_figure(points: Sequence[TrialPoint]) -> go.Figure:
    """Share of cells using each op and each dim: the top 10% against every complete cell."""
    complete = [p for p in points if p.state == COMPLETE and p.value is not None]
    table = op_dim_frequencies([p.cell for p in complete], [p.value for p in complete])
    top_count = max(1, math.ceil(TOP_FRACTION * len(complete))) if complete else 0
    figure = make_subplots(rows=1, cols=2, subplot_titles=("op", "dim"), horizontal_spacing=0.08)
    if top_count < MIN_TOP_CELLS:  # a "top 10%" of one or two cells says nothing about the ops that help
        needed = math.floor((MIN_TOP_CELLS - 1) / TOP_FRACTION) + 1
        figure.add_annotation(text=f"Too few complete cells yet: {_cells(len(complete))}, so the top 10% would be "
                                   f"{_cells(top_count)}.<br>This figure appears from {needed} complete cells on.",
                              xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False, font_size=14)
        figure.update_xaxes(visible=False)
        figure.update_yaxes(visible=False)
        figure.update_annotations(selector=dict(text="op"), visible=False)
        figure.update_annotations(selector=dict(text="dim"), visible=False)
        return _finish(figure, "attnas-ops-top10", x=None, y="")
    for column, kind in enumerate(("op", "dim"), start=1):
        names = list(table[kind])
        for index, (label, colour) in enumerate(((f"top 10% ({_cells(top_count)})", "#d62728"),
                                                 (f"all ({_cells(len(complete))})", "#7f7f7f"))):
            figure.add_trace(go.Bar(x=names, y=[table[kind][n][index] for n in names], name=label,
                                    marker_color=colour, showlegend=column == 1, legendgroup=label,
                                    hovertemplate="%{x}: %{y:.0%} of cells<extra>" + label + "</extra>"),
                             row=1, col=column)
    figure.update_yaxes(tickformat=".0%", range=[0, 1.05])
    return _finish(figure, "attnas-ops-top10", x=None, y="share of cells using it", barmode="group")


def curves_figure(points: Sequence[TrialPoint], references: Sequence[Reference] = ()) -> go.Figure:
    """Validation accuracy per epoch of the best complete cells, and of the reference cells (dashed)."""
    complete = sorted((p for p in points if p.state == COMPLETE and p.value is not None and p.curve),
                      key=lambda p: (-p.value, p.number))[:CURVES_SHOWN]
    figure = go.Figure()
    for rank, point in enumerate(complete, start=1):
        figure.add_trace(go.Scatter(x=list(range(1, len(point.curve) + 1)), y=list(point.curve),
                                    mode="lines+markers", name=f"#{rank} trial {point.number} ({point.hash[:8]})"))
    for reference in references:
        if reference.curve:
            figure.add_trace(go.Scatter(x=list(range(1, len(reference.curve) + 1)), y=list(reference.curve),
                                        mode="lines", line=dict(dash="dash", width=3),
                                        name=REFERENCE_LABELS.get(reference.name, reference.name)))
    _finish(figure, "attnas-learning-curves", x="epoch", y="validation accuracy")
    return figure.update_layout(legend=dict(orientation="v", yanchor="top", y=1.0, x=1.02, font_size=10),
                                margin=dict(r=10))


def _cells(count: int) -> str:
    return f"{count} cell" + ("" if count == 1 else "s")


def _padded_range(values: Sequence[float]) -> list[float] | None:
    """A y range with room above the highest point for a reference cell's label (None: plotly's own)."""
    if not values:
        return None
    low, high = min(values), max(values)
    span = (high - low) or max(abs(high), 0.1)
    return [low - 0.08 * span, high + 0.18 * span]


def _by_controller(points: Sequence[TrialPoint]) -> list[tuple[str, list[TrialPoint]]]:
    groups: dict[str, list[TrialPoint]] = {}
    for point in points:
        groups.setdefault(point.controller, []).append(point)
    return sorted(groups.items())


def _reference_lines(figure: go.Figure, references: Sequence[Reference]) -> None:
    for reference in references:
        figure.add_hline(y=reference.accuracy, line_dash="dot", line_color="#2ca02c",
                         annotation_text=REFERENCE_LABELS.get(reference.name, reference.name),
                         annotation_position="bottom right")


def _finish(figure: go.Figure, figure_id: str, *, x: str | None, y: str, **layout: Any) -> go.Figure:
    figure.update_layout(title=FIGURE_TITLES[figure_id], **{**_LAYOUT, **layout})
    figure.update_layout(margin_b=95)  # room for the legend under the axis title
    if x:
        figure.update_xaxes(title_text=x)
    figure.layout.yaxis.title.text = y  # the first (or only) panel's y axis
    return figure
