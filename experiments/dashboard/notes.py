"""The short markdown note the dashboard shows on each trial: its cell (hash and spec), what it scored and cost, and
where it ran; and the study's note, which says where attnas's figures, drawings and TensorBoard logs are."""
from __future__ import annotations

from typing import Any, Mapping

from attnas.experiments.dashboard.data import TrialPoint
from attnas.search_space import CellSpec


def trial_note(point: TrialPoint, *, reason: str | None = None, drawing_url: str | None = None) -> str:
    """Markdown for one trial: heading with the hash, a table of score and costs, the node, the cell's drawing
    (when its artifact's URL on the dashboard is given), the spec as YAML."""
    spec = CellSpec.from_dict(dict(point.cell)).to_yaml().rstrip() if point.cell else "# no cell recorded"
    accuracy = "-" if point.value is None else f"{point.value:.4f}"
    if point.value is None and point.state == "pruned" and point.curve:
        accuracy = f"{point.curve[-1]:.4f} (stopped early after epoch {len(point.curve)})"
    lines = [
        f"### Cell `{point.hash}` (trial {point.number}, {point.state})",
        "",
        "| accuracy | multiply-adds | parameters | latency | controller | node |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| {accuracy} | {si_units(point.macs)} | {si_units(point.params)} | "
        f"{'-' if point.latency_ms is None else f'{point.latency_ms:.1f} ms'} | {point.controller} | "
        f"{point.node or '-'} |",
        "",
    ]
    if reason:
        lines += [f"**Failed:** {reason.splitlines()[0][:300]}", ""]
    if drawing_url:
        lines += [f"![drawing of cell {point.hash}]({drawing_url})", ""]
    else:
        lines += ["The cell's drawing is under *Artifacts* below.", ""]
    lines += ["```yaml", spec, "```", ""]
    return "\n".join(lines)


def study_note(metadata: Mapping[str, Any], *, run_path: str | None = None) -> str:
    """Markdown for the study: which experiment, and where attnas's views of it live."""
    name = metadata.get("name", "attnas search")
    ray = f"{run_path}/ray" if run_path else "runs/<name>/ray"
    return "\n".join([
        f"## attnas search `{name}` (controller: {metadata.get('controller', '?')})",
        "",
        "- attnas's figures (best so far, accuracy vs multiply-adds with the Pareto front and reference cells, "
        "ops and dims of the top 10%, learning curves) are on this study's main page, refreshed as trials finish.",
        "- Each trial's cell is drawn under the trial's *Artifacts*; its note gives the spec, hash, cost and node.",
        f"- Learning curves for TensorBoard: `tensorboard --logdir {ray}`.",
        "- A shareable file: `attnas report RUN -o report.html`.",
        "",
    ])


def si_units(value: float | None, number_format: str = ".2f") -> str:
    """A count with a k/M/G suffix (`209.70M`; `210M` with number_format ".3g"), or - when unknown."""
    if value is None:
        return "-"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:{number_format}}{unit}"
    return f"{value:.0f}"
