"""`attnas report RUN -o report.html`: attnas's figures and the top cells (with their drawings and specs) in one
self-contained HTML file, plotly.js inlined, that opens from disk with no server and no network."""
from __future__ import annotations

import base64
import os
from datetime import datetime, timezone
from html import escape
from pathlib import Path

from plotly.offline import get_plotlyjs

from attnas.experiments.dashboard.data import TrialPoint, load_points, load_references
from attnas.experiments.dashboard.drawing import cell_svg
from attnas.experiments.dashboard.figures import build_figures
from attnas.experiments.dashboard.notes import si_units
from attnas.experiments.dashboard.server import open_history
from attnas.experiments.history import COMPLETE, FAILED, PRUNED, RUNNING
from attnas.search_space import CellSpec
from attnas.search_space.errors import AttnasError

TOP_CELLS = 10
_STYLE = """
body { font-family: DejaVu Sans, Arial, sans-serif; margin: 24px; color: #222; }
h1 { margin-bottom: 4px; } .summary { color: #555; margin-bottom: 18px; }
.figure { border: 1px solid #ddd; border-radius: 6px; margin: 12px 0; padding: 4px; }
table.cells { border-collapse: collapse; width: 100%; } table.cells td, table.cells th { border-top: 1px solid #ddd;
  padding: 8px; vertical-align: top; text-align: left; } pre { background: #f6f6f6; padding: 8px; font-size: 12px; }
img.cell { max-width: 520px; }
"""


def build_report(run_dir: str | os.PathLike, output: str | os.PathLike, *, top: int = TOP_CELLS) -> Path:
    """Write the report of the run at `run_dir` to `output`; returns the path written."""
    run, history = open_history(run_dir)
    points = load_points(history.study)
    references = load_references(history)
    figures = build_figures(points, references)
    counts = {s: sum(1 for p in points if p.state == s) for s in (COMPLETE, PRUNED, FAILED, RUNNING)}
    best = sorted((p for p in points if p.state == COMPLETE and p.value is not None and p.cell),
                  key=lambda p: (-p.value, p.number))[:top]
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>attnas report: {escape(run.name)}</title>", f"<style>{_STYLE}</style>",
        f'<script type="text/javascript">{get_plotlyjs()}</script>', "</head><body>",
        f"<h1>attnas search <code>{escape(run.name)}</code></h1>",
        f'<div class="summary">{len(points)} trials: ' + ", ".join(f"{n} {s}" for s, n in counts.items())
        + (f"; best accuracy {best[0].value:.4f} (cell <code>{escape(best[0].hash)}</code>, trial "
           f"{best[0].number})" if best else "; no complete trial yet")
        + ("; reference cells: " + ", ".join(f"{escape(r.name)} {r.accuracy:.4f}" for r in references)
           if references else "; reference cells not scored (run <code>attnas references RUN</code>)")
        + f". Written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.</div>",
    ]
    for figure_id, figure in figures.items():
        parts.append(f'<div class="figure" data-figure="{figure_id}">')
        parts.append(figure.to_html(full_html=False, include_plotlyjs=False, div_id=figure_id,
                                    config={"displaylogo": False, "responsive": True}))
        parts.append("</div>")
    parts.append(f"<h2>Top {len(best)} cells</h2>")
    parts.append('<table class="cells"><tr><th>rank</th><th>cell</th><th>drawing</th><th>spec</th></tr>')
    for rank, point in enumerate(best, start=1):
        parts.append(_cell_row(rank, point))
    parts.append("</table></body></html>")
    path = Path(output)
    try:
        path.write_text("\n".join(parts), encoding="utf-8")
    except OSError as error:
        raise AttnasError(f"{output}: cannot write the report ({error.strerror or error})") from None
    return path


def _cell_row(rank: int, point: TrialPoint) -> str:
    svg = cell_svg(point.cell, title=f"#{rank}: trial {point.number}, cell {point.hash}")
    data = base64.b64encode(svg.encode()).decode()
    spec = CellSpec.from_dict(dict(point.cell)).to_yaml()
    facts = (f"trial {point.number}<br><code>{escape(point.hash)}</code><br>accuracy {point.value:.4f}<br>"
             f"MACs {si_units(point.macs)}<br>params {si_units(point.params)}<br>controller {escape(point.controller)}")
    return (f'<tr class="cell-row"><td>{rank}</td><td>{facts}</td><td><img class="cell" '
            f'alt="cell {escape(point.hash)}" src="data:image/svg+xml;base64,{data}"></td>'
            f'<td><pre>{escape(spec)}</pre></td></tr>')


