"""Search progress on the terminal: a live rich panel on a TTY, one line per finished trial otherwise."""
from __future__ import annotations

import sys
import time
from typing import Any

from ray.tune import Callback
from rich.console import Console
from rich.live import Live
from rich.table import Table

from attnas.experiments.history import COMPLETE, FAILED, PRUNED, History


class SearchProgress(Callback):
    """Shows trials done / running / failed, the best cell so far with its hash, elapsed and estimated time left."""

    def __init__(self, *, history: History, searcher: Any, total: int, deadline: float | None,
                 enabled: bool | None = None, console: Console | None = None):
        self.history = history
        self.searcher = searcher
        self.total = total
        self.deadline = deadline
        self.console = console or Console(stderr=True)
        self.live_display = self.console.is_terminal if enabled is None else enabled
        self.started = time.time()
        self.counts = {COMPLETE: 0, FAILED: 0, PRUNED: 0}
        self.best: tuple[float, str] | None = None
        for record in history.trials([COMPLETE, FAILED, PRUNED]):
            self.counts[record.state] += 1
            self._consider(record.state, record.value, record.hash)
        self.resumed_done = sum(self.counts.values())
        self._live: Live | None = None

    def __getstate__(self) -> dict:
        # Pickled by the Tuner at start; the copy is inert (no console, history or searcher).
        return {k: v for k, v in self.__dict__.items() if k not in ("console", "_live", "history", "searcher")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, console=None, _live=None, history=None, searcher=None)

    # ------------------------------------------------------------------------------------ context manager
    def __enter__(self) -> "SearchProgress":
        if self.live_display:
            self._live = Live(self, console=self.console, refresh_per_second=2, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    # -------------------------------------------------------------------------------------- Tune callbacks
    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.searcher.errors[trial.trial_id] = _error_text(trial)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._finished(trial)

    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Any, **info: Any) -> None:
        number = self.searcher.numbers.get(trial.trial_id)
        if number is not None and getattr(checkpoint, "path", None):
            self.history.set_attrs(number, checkpoint=self.searcher.checkpoint_attr(checkpoint.path))

    def _finished(self, trial: Any) -> None:
        result = trial.last_result or {}
        state = FAILED if result.get("failed") or trial.status == "ERROR" else (
            COMPLETE if int(result.get("epoch", 0) or 0) >= self.searcher.epochs else PRUNED)
        self.counts[state] += 1
        value = result.get(self.searcher.metric)
        number = self.searcher.numbers.get(trial.trial_id, "?")
        cell_hash = self.history_hash(trial)
        self._consider(state, value, cell_hash)
        if not self.live_display:
            shown = f"{value:.4f}" if isinstance(value, (int, float)) and state != FAILED else "-"
            best = f"best {self.best[0]:.4f} ({self.best[1]})" if self.best else "no complete trial yet"
            print(f"trial {number} {state} {self.searcher.metric} {shown}  [{self.done}/{self.total}, {best}, "
                  f"{_duration(time.time() - self.started)} elapsed]", file=sys.stderr, flush=True)

    def history_hash(self, trial: Any) -> str:
        cell = self.searcher.cells.get(trial.trial_id)
        return self.searcher.space.hash(cell) if cell is not None else "?"

    def _consider(self, state: str, value: Any, cell_hash: str) -> None:
        if state == COMPLETE and isinstance(value, (int, float)) and (self.best is None or value > self.best[0]):
            self.best = (float(value), cell_hash)

    # ----------------------------------------------------------------------------------------- rendering
    @property
    def done(self) -> int:
        return sum(self.counts.values())

    def __rich__(self) -> Table:
        elapsed = time.time() - self.started
        running = max(0, len(self.searcher.numbers) - len(self.searcher.finished))
        finished_now = self.done - self.resumed_done
        left = max(0, self.total - self.done)
        if finished_now and left:
            eta = elapsed / finished_now * left
            if self.deadline is not None:
                eta = min(eta, max(0.0, self.deadline - time.time()))
            eta_text = _duration(eta)
        else:
            eta_text = "-" if left else "0s"
        table = Table.grid(padding=(0, 2))
        table.add_row("[bold]attnas search[/]", f"{self.done}/{self.total} trials", f"running {running}",
                      f"complete {self.counts[COMPLETE]}", f"pruned {self.counts[PRUNED]}",
                      f"failed {self.counts[FAILED]}")
        best = f"{self.best[0]:.4f}  cell {self.best[1]}" if self.best else "-"
        table.add_row("best so far", best, f"elapsed {_duration(elapsed)}", f"left ~{eta_text}")
        return table


def _error_text(trial: Any) -> str:
    error_file = getattr(trial, "error_file", None)
    if error_file:
        try:
            lines = [line for line in open(error_file).read().strip().splitlines() if line.strip()]
            return lines[-1][:500] if lines else "the trial raised"
        except OSError:
            pass
    return "the trial's worker raised or died"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
