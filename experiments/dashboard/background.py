"""The dashboard publisher's work off the driver's thread: the driver's hooks only queue the trial's number; a
thread of its own draws, writes notes and refreshes the figures, in the order the trials were queued.

The queue is bounded: a driver that outruns the drawing waits for room rather than dropping a trial's drawing or
note. Figure refreshes are merged: a refresh is considered only once the notes queued so far are written, so a burst
of finished trials costs one refresh, not one each. `finish` drains the queue, makes the last refresh and stops the
thread. The dashboard is never a reason for a search to stop: an exception there is logged (and kept in `errors`),
and the thread goes on with the next trial; the trials' records are the history's, written by the driver.
"""
from __future__ import annotations

import logging
import queue
import threading
from typing import Any

logger = logging.getLogger("attnas.dashboard")
_STOP = object()


class BackgroundPublisher:
    """Runs a `DashboardPublisher` (publisher.py) on its own thread; the same driver hooks."""

    def __init__(self, publisher: Any, *, queue_size: int = 1000):
        self.publisher = publisher
        self._tasks: queue.Queue = queue.Queue(maxsize=queue_size)
        self._thread = threading.Thread(target=self._work, name="attnas-dashboard", daemon=True)
        self._thread.start()

    @property
    def errors(self) -> list[str]:
        return self.publisher.errors

    def drawing_attrs(self, cell_hash: str) -> dict[str, Any]:
        return self.publisher.drawing_attrs(cell_hash)

    def trial_started(self, number: int) -> None:
        self._tasks.put(("drawing", number))

    def trial_finished(self, number: int) -> None:
        self._tasks.put(("note", number))

    def finish(self) -> None:
        """Wait for every queued drawing and note, make the last refresh, stop the thread."""
        if self._thread.is_alive():
            self._tasks.put(_STOP)
            self._thread.join()
        else:  # the thread died (a bug beyond the guards below): the last refresh from here
            self._guard("the last refresh of the figures", self.publisher.finish)

    def _work(self) -> None:
        refresh_wanted = False
        while True:
            task = self._tasks.get()
            if task is _STOP:
                break
            kind, number = task
            if kind == "drawing":
                self._guard(f"drawing of trial {number}", lambda: self.publisher.trial_started(number))
            else:
                self._guard(f"note of trial {number}", lambda: self.publisher.write_note(number))
                refresh_wanted = True
            if refresh_wanted and self._tasks.empty():
                self._guard("refresh of the figures", self.publisher.refresh_if_due)
                refresh_wanted = False
        self._guard("the last refresh of the figures", self.publisher.finish)

    def _guard(self, what: str, work: Any) -> None:
        try:
            work()
        except Exception as error:  # never lets the thread die: the next trial still gets its drawing and note
            self.publisher.errors.append(f"{what}: {type(error).__name__}: {error}")
            logger.warning("attnas dashboard: %s failed: %s", what, error, exc_info=True)
