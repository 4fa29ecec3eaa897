"""`attnas status RUN`: how far a search got and its best cells, as a table that fits 80 columns, or as JSON or CSV.

The reference cells scored with `attnas references` (the backbone alone, non-local, A^2) are listed among the
cells by name, and a searched cell that is one of them is marked with its name.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from rich.console import Console
from rich.table import Table

from attnas.experiments.dashboard.data import load_references
from attnas.experiments.dashboard.figures import REFERENCE_LABELS
from attnas.experiments.dashboard.notes import si_units
from attnas.experiments.history import FAILED, History, TrialRecord
from attnas.experiments.run_folder import RunFolder
from attnas.experiments.summary import reference_name

FIELDS = ("trial", "hash", "reference", "accuracy", "macs", "params", "latency_ms", "wall_time_s", "ops")
FAILURES_SHOWN = 3
# (header, width) of the table's fixed columns; the cell's ops take the rest of the line
COLUMNS = (("trial", 5), ("hash", 8), ("acc", 6), ("MACs", 5), ("params", 6), ("lat ms", 6), ("wall s", 6))


@dataclass(frozen=True)
class StatusRow:
    """One line of the table: a searched cell (`trial` set) or a reference cell (`trial` None)."""

    trial: int | None
    hash: str | None
    reference: str | None
    accuracy: float | None
    macs: float | None
    params: float | None
    latency_ms: float | None
    wall_time_s: float | None
    ops: str


@dataclass(frozen=True)
class RunStatus:
    """What `attnas status` reports of one run."""

    run: str
    path: str
    storage: str
    counts: dict[str, int]
    top: int
    rows: list[StatusRow]
    failures: list[dict[str, Any]]
    metric: str = "accuracy"  # what the value column holds: the objective's metric, or "reward" with a trade-off
    problems: list[str] = field(default_factory=list)  # damaged records, named (trial, field) and left out

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: "" if v is None else v for k, v in asdict(row).items()})
        return out.getvalue()

    def print_table(self, console: Console) -> None:
        """The counts, then the cells as a table as wide as the console: the last column is cut short (with an
        ellipsis) rather than wrapped."""
        console.print(f"run [bold]{self.run}[/]: {sum(self.counts.values())} trials: "
                      + ", ".join(f"{n} {s}" for s, n in self.counts.items()))
        console.print(f"history: {self.storage}", markup=False, highlight=False, overflow="fold")
        title = f"top {self.top} cells" + (" and the reference cells" if any(r.trial is None for r in self.rows)
                                           else "")
        table = Table(title=title, title_justify="left", box=None, pad_edge=False, header_style="bold")
        for column, width in COLUMNS:
            column = {"acc": "acc" if self.metric == "accuracy" else self.metric[:6]}.get(column, column)
            table.add_column(column, justify="left" if column == "hash" else "right", width=width, no_wrap=True)
        used = sum(width for _, width in COLUMNS) + 2 * len(COLUMNS)  # one space either side of each column
        table.add_column("cell", no_wrap=True, overflow="ellipsis", max_width=max(12, console.width - used))
        for row in self.rows:
            label = REFERENCE_LABELS.get(row.reference, row.reference) if row.reference else None
            if row.trial is None:
                cell = label  # the trial column says "ref"
            else:
                cell = f"= {label}: {row.ops}" if label else row.ops
            table.add_row("ref" if row.trial is None else str(row.trial), (row.hash or "-")[:8],
                          _fixed(row.accuracy, 4), si_units(row.macs, ".3g"), si_units(row.params, ".3g"),
                          _fixed(row.latency_ms, 1), _fixed(row.wall_time_s, 1), cell,
                          style="green" if row.trial is None else None)
        console.print(table)
        for failure in self.failures:
            console.print(f"trial {failure['trial']} failed: {failure['reason']}", style="red", markup=False,
                          overflow="fold")
        for problem in self.problems:
            console.print(f"{problem}; left out of the table", style="yellow", markup=False, overflow="fold")


def run_status(run: RunFolder, history: History, *, top: int) -> RunStatus:
    """The status of `run`: counts by state, its `top` best cells with the reference cells placed among them by
    accuracy, and the last few failures. Read by query, never the whole history: the counts, the complete trials'
    values (to rank them), and whole records only for the cells shown; so the damaged records named are those
    among the trials read (any that would have ranked among the cells shown)."""
    objective = history.objective
    counts = history.counts()
    references = load_references(history)
    by_hash = {r.hash: r.name for r in references if r.hash}
    best, damaged = history.ranked(top)
    rows = with_references([_trial_row(record, by_hash.get(record.hash) or reference_name(record.hash))
                            for record in best], references)
    last_failed = [r.number for r in history.trials([FAILED], keys=(), curves=False)][-FAILURES_SHOWN:]
    failed = history.trials(numbers=last_failed)
    failures = [{"trial": r.number, "reason": r.reason} for r in failed]
    problems = {r.number: r.problem for r in [*damaged, *failed] if r.problem}
    return RunStatus(run=run.name, path=str(run.path), storage=run.storage, counts=counts, top=top, rows=rows,
                     failures=failures, metric=objective.metric if objective.tradeoff is None else "reward",
                     problems=[problems[n] for n in sorted(problems)])



def with_references(rows: list[StatusRow], references) -> list[StatusRow]:
    """The trials' rows, in the objective's order, with each reference cell's row before the first trial it beats."""
    rows = list(rows)
    for reference in sorted(references, key=lambda r: -(r.accuracy or 0.0)):
        at = next((i for i, row in enumerate(rows) if row.trial is not None
                   and (row.accuracy or 0.0) < (reference.accuracy or 0.0)), len(rows))
        rows.insert(at, StatusRow(trial=None, hash=reference.hash, reference=reference.name,
                                  accuracy=reference.accuracy, macs=reference.macs, params=reference.params,
                                  latency_ms=None, wall_time_s=None, ops=""))
    return rows

def _trial_row(record: TrialRecord, reference: str | None) -> StatusRow:
    return StatusRow(trial=record.number, hash=record.hash, reference=reference, accuracy=record.value,
                     macs=record.values.get("macs"), params=record.values.get("params"),
                     latency_ms=record.values.get("latency_ms"), wall_time_s=record.values.get("wall_time_s"),
                     ops=ops_summary(record.cell))


def ops_summary(cell: dict) -> str:
    """`dot/temporal, map/channel`: each node's op (without `_attention`) and its dim (or mode)."""
    nodes: Sequence[dict] = list((cell.get("nodes") or {}).values())
    return ", ".join(f"{n['op'].removesuffix('_attention')}/{n.get('dim', n.get('mode', ''))}".rstrip("/")
                     for n in nodes)


def _fixed(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
