"""Search progress on the terminal.

On a terminal: a rich progress bar (trials done of the budget, how many run, complete, pruned and failed, the best
cell so far and a steady estimate of the time left) above a table of the running trials (number, cell hash, node,
epoch of epochs, current metric, elapsed), redrawn in place. Without one (a log file, CI): a line with the plan when
the search starts, a line when the first trial has paid the one-time warm start, and one line per finished trial.
"""
from __future__ import annotations

import shutil
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from ray.tune import Callback
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

from attnas.experiments.history import COMPLETE, FAILED, PRUNED, History
from attnas.experiments.wording import duration

# Checkpoints kept per trial: the last, and the one before it, which a driver killed before the trial's close resumes
# from (the history records the last epoch's checkpoint only with the close). Kept here rather than by Tune's
# CheckpointConfig(num_to_keep), which also forces a save of Tune's whole experiment state every that many
# checkpoints of a trial: about one save per epoch reported, each costing the driver more as trials accumulate.
CHECKPOINTS_KEPT = 2

# A warm start shorter than this (the cached backbone read back from disk) is not worth a line.
WARM_START_WORTH_SAYING_S = 2.0


class SteadyEta:
    """Time left, smoothed over finished trials so that it counts down steadily instead of jumping.

    A trial's duration is taken less any one-time warm start it paid. The first round of trials (as many as run at
    once) also started the workers, so once a later trial has finished they no longer count. The typical duration
    is the mean of the recent ones without the longest and the shortest (from three on); the raw estimate is that
    duration times the trials left over the trials run at once. Between finishes the estimate counts down with the
    clock, and each new raw estimate is blended into the countdown rather than replacing it."""

    def __init__(self, *, parallel: int, window: int = 20):
        self.parallel = max(1, int(parallel))
        self.first_round: list[float] = []
        self.durations: deque[float] = deque(maxlen=window)
        self._estimate: float | None = None
        self._at = 0.0

    @property
    def typical_duration(self) -> float | None:
        """The trimmed mean of the recent durations (None before the first)."""
        recent = self.durations or self.first_round
        if not recent:
            return None
        ordered = sorted(recent)
        trim = max(1, len(ordered) // 4) if len(ordered) >= 3 else 0
        kept = ordered[trim:len(ordered) - trim]
        return sum(kept) / len(kept)

    def trial_finished(self, duration_s: float, *, left: int, now: float) -> None:
        """Take one finished trial's duration into the estimate; `left` trials remain to run after it."""
        duration_s = max(0.0, float(duration_s))
        if len(self.first_round) < self.parallel:
            self.first_round.append(duration_s)
        else:
            self.durations.append(duration_s)
        raw = self.typical_duration * left / self.parallel
        if self._estimate is None:
            self._estimate = raw
        else:
            self._estimate = 0.5 * self.seconds_left(now) + 0.5 * raw
        self._at = now

    def seconds_left(self, now: float) -> float | None:
        """The estimate at `now` (None before the first trial finished)."""
        if self._estimate is None:
            return None
        return max(0.0, self._estimate - (now - self._at))


@dataclass
class RunningTrial:
    """What the table shows of one running trial."""

    number: int | str
    cell_hash: str
    started: float
    node: str = "-"
    epoch: int = 0
    metric: float | None = None


class SearchProgress(Callback):
    """Ray Tune callback that shows a search's progress (see the module docstring); also a context manager that
    owns the live display on a terminal."""

    def __init__(self, *, history: History, searcher: Any, total: int, deadline: float | None,
                 concurrency: int = 1, plan: str | None = None, enabled: bool | None = None,
                 console: Console | None = None, clock: Callable[[], float] = time.time):
        self.history = history
        self.searcher = searcher
        self.total = total
        self.deadline = deadline
        self.plan = plan
        self.console = console or Console(stderr=True)
        self.live_display = self.console.is_terminal if enabled is None else enabled
        self.clock = clock
        self.started = clock()
        self.counts = {COMPLETE: 0, FAILED: 0, PRUNED: 0}
        self.best: tuple[float, str] | None = None
        for record in history.trials([COMPLETE, FAILED, PRUNED]) if history is not None else ():
            self.counts[record.state] += 1
            self._consider(record.state, record.value, record.hash)
        self.eta = SteadyEta(parallel=concurrency)
        self.running: dict[str, RunningTrial] = {}
        self.closed: set[str] = set()
        self.warm_start_said = False
        self._live: Live | None = None
        self._bar = Progress(TextColumn("[bold]attnas search[/]"), BarColumn(bar_width=30), MofNCompleteColumn(),
                             TextColumn("{task.description}"), console=self.console, auto_refresh=False)
        self._task = self._bar.add_task("", total=max(1, total), completed=self.done)
        self._started_trials: dict[str, Any] = {}
        self._checkpoints: dict[str, list[str]] = {}  # each trial's last CHECKPOINTS_KEPT checkpoint folders

    def __getstate__(self) -> dict:
        # Pickled by the Tuner at start; the copy is inert (no console, display, history or searcher).
        return {k: v for k, v in self.__dict__.items()
                if k not in ("console", "_live", "_bar", "history", "searcher", "clock", "_started_trials")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, console=None, _live=None, _bar=None, history=None, searcher=None,
                             clock=time.time, _started_trials={})

    # ------------------------------------------------------------------------------------ context manager
    def __enter__(self) -> "SearchProgress":
        if self.plan:
            self._say(self.plan)
        if self.live_display:
            self._live = Live(self, console=self.console, refresh_per_second=2, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    # -------------------------------------------------------------------------------------- Tune callbacks
    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._started_trials[trial.trial_id] = trial
        self.searcher.error_reader = self._error_of
        number = self.searcher.numbers.get(trial.trial_id, "?")
        self.running.setdefault(trial.trial_id, RunningTrial(number=number, cell_hash=self._hash(trial),
                                                             started=self.clock()))

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if trial.trial_id not in self.running:
            self.on_trial_start(iteration, trials, trial)
        shown = self.running[trial.trial_id]
        shown.node = str(result.get("node") or shown.node)
        shown.epoch = int(result.get("epoch", shown.epoch) or 0)
        value = result.get(self.searcher.metric)
        shown.metric = float(value) if isinstance(value, (int, float)) else shown.metric
        warm = result.get("warm_start_s")
        if isinstance(warm, (int, float)) and warm >= WARM_START_WORTH_SAYING_S and not self.warm_start_said:
            self.warm_start_said = True
            self._say(f"warm start: trial {shown.number} pretrained the backbone alone in {duration(warm)} "
                      f"(once per machine; later trials load it from the cache)")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.searcher.errors[trial.trial_id] = _error_text(trial)
        self._finished(trial)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        shown = self.running.get(trial.trial_id)
        reason = _error_text(trial).strip()
        self.searcher.trial_restarted(trial.trial_id, reason=reason, node=shown.node if shown else None,
                                      epoch=shown.epoch if shown else 0)
        number = self.searcher.numbers.get(trial.trial_id, "?")
        where = f" on node {shown.node}" if shown and shown.node != "-" else ""
        self._say(f"trial {number} lost its worker{where} ({reason[:200]}); Ray restarts it from its last "
                  f"checkpoint (restart {trial.num_failures})")

    def _error_of(self, trial_id: str) -> str | None:
        """The failure message Ray has written for a trial (its error file), read when the searcher records it."""
        trial = self._started_trials.get(trial_id)
        return _error_text(trial) if trial is not None and getattr(trial, "error_file", None) else None

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._finished(trial)

    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Any, **info: Any) -> None:
        number = self.searcher.numbers.get(trial.trial_id)
        if number is None or not getattr(checkpoint, "path", None):
            return
        kept = self._checkpoints.setdefault(trial.trial_id, [])
        kept.append(checkpoint.path)
        for older in kept[:-CHECKPOINTS_KEPT]:  # Tune keeps every checkpoint (driver: num_to_keep=None)
            shutil.rmtree(older, ignore_errors=True)
        del kept[:-CHECKPOINTS_KEPT]
        recorded = self.searcher.checkpoint_attr(checkpoint.path)
        if int((trial.last_result or {}).get("epoch", 0) or 0) >= self.searcher.epochs:
            # the last epoch's checkpoint: no resume starts from it, so it is written with the trial's close
            self.history.hold_attrs(number, checkpoint=recorded)
        else:  # what a resume starts from: written now, in one transaction with the epochs reported before it
            self.history.set_attrs(number, checkpoint=recorded)

    def _finished(self, trial: Any) -> None:
        if trial.trial_id in self.closed:
            return
        self.closed.add(trial.trial_id)
        now = self.clock()
        shown = self.running.pop(trial.trial_id, None)
        result = trial.last_result or {}
        state = FAILED if result.get("failed") or trial.status == "ERROR" else (
            COMPLETE if int(result.get("epoch", 0) or 0) >= self.searcher.epochs else PRUNED)
        self.counts[state] += 1
        value = result.get(self.searcher.metric)
        number = self.searcher.numbers.get(trial.trial_id, "?")
        cell_hash = shown.cell_hash if shown else self._hash(trial)
        self._consider(state, value, cell_hash)
        if shown is not None:
            warm = result.get("warm_start_s")
            paid = float(warm) if isinstance(warm, (int, float)) else 0.0
            self.eta.trial_finished(now - shown.started - paid, left=self.left, now=now)
        if not self.live_display:
            shown_value = f"{value:.4f}" if isinstance(value, (int, float)) and state != FAILED else "-"
            print(f"trial {number} {state} {self.searcher.metric} {shown_value}  [{self.done}/{self.total}, "
                  f"{self._best_text()}, {duration(now - self.started)} elapsed, {self.eta_text(now)} left]",
                  file=sys.stderr, flush=True)

    def _hash(self, trial: Any) -> str:
        cell = self.searcher.cells.get(trial.trial_id)
        return self.searcher.space.hash(cell) if cell is not None else "?"

    def _consider(self, state: str, value: Any, cell_hash: str) -> None:
        if state == COMPLETE and isinstance(value, (int, float)) and (self.best is None or value > self.best[0]):
            self.best = (float(value), cell_hash)

    def _say(self, line: str) -> None:
        if self.live_display and self._live is not None:
            self._live.console.print(line, markup=False, highlight=False)
        elif self.live_display:
            self.console.print(line, markup=False, highlight=False)
        else:
            print(line, file=sys.stderr, flush=True)

    # ----------------------------------------------------------------------------------------- rendering
    @property
    def done(self) -> int:
        return sum(self.counts.values())

    @property
    def left(self) -> int:
        return max(0, self.total - self.done)

    def eta_text(self, now: float) -> str:
        """`~3m20s`, capped by the time budget; `-` until a trial has finished."""
        if not self.left:
            return "0s"
        seconds = self.eta.seconds_left(now)
        if self.deadline is not None:
            until_deadline = max(0.0, self.deadline - now)
            seconds = until_deadline if seconds is None else min(seconds, until_deadline)
        return "-" if seconds is None else f"~{duration(seconds)}"

    def _best_text(self) -> str:
        return f"best {self.best[0]:.4f} ({self.best[1]})" if self.best else "no complete trial yet"

    def __rich__(self) -> Group:
        now = self.clock()
        self._bar.update(self._task, completed=self.done,
                         description=f"elapsed {duration(now - self.started)}  left {self.eta_text(now)}")
        counts = Text(f"{len(self.running)} running, {self.counts[COMPLETE]} complete, {self.counts[PRUNED]} pruned, "
                      f"{self.counts[FAILED]} failed; {self._best_text()}", no_wrap=True, overflow="ellipsis")
        table = Table(box=None, header_style="bold", pad_edge=False, show_edge=False)
        for column, width, justify in (("trial", 6, "right"), ("cell", 16, "left"), ("node", 24, "left"),
                                       ("epoch", 7, "right"), (self.searcher.metric, 9, "right"),
                                       ("elapsed", 8, "right")):
            table.add_column(column, width=width, justify=justify, no_wrap=True, overflow="ellipsis")
        epochs = self.searcher.epochs
        for shown in sorted(self.running.values(), key=lambda r: (str(type(r.number)), r.number)):
            table.add_row(str(shown.number), shown.cell_hash, shown.node, f"{shown.epoch}/{epochs}",
                          "-" if shown.metric is None else f"{shown.metric:.4f}",
                          duration(now - shown.started))
        return Group(self._bar, counts, table)


def _error_text(trial: Any) -> str:
    error_file = getattr(trial, "error_file", None)
    if error_file:
        try:
            lines = [line for line in open(error_file).read().strip().splitlines() if line.strip()]
            return lines[-1][:500] if lines else "the trial raised"
        except OSError:
            pass
    return "the trial's worker raised or died"
