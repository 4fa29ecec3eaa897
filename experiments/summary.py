"""What a search leaves when it ends: counts by state, the best trial under the objective, the time it took."""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache

from attnas.controllers.objective import Objective
from attnas.experiments.history import COMPLETE, FAILED, PRUNED, RUNNING, TrialRecord, best_of, counted, to_rerun
from attnas.experiments.run_folder import RunFolder


@dataclass(frozen=True)
class SearchSummary:
    """What a finished (or stopped) search leaves: counts, the best trial and the time it took."""

    run: RunFolder
    complete: int
    failed: int
    pruned: int
    running: int
    best: TrialRecord | None
    wall_time_s: float
    interrupted: int = 0  # trials the search stopped before they finished: `attnas resume` trains them again


def summarize(run: RunFolder, records: list[TrialRecord], started_at: float,
              objective: Objective | None = None) -> SearchSummary:
    """The `SearchSummary` of a run from its trial records."""
    counts = {s: sum(1 for r in records if r.state == s and counted(r)) for s in (COMPLETE, FAILED, PRUNED)}
    best = best_of(records, 1, objective)
    return SearchSummary(run=run, complete=counts[COMPLETE], failed=counts[FAILED], pruned=counts[PRUNED],
                         running=sum(1 for r in records if r.state == RUNNING), best=best[0] if best else None,
                         wall_time_s=time.time() - started_at,
                         interrupted=sum(1 for r in to_rerun(records) if r.state != RUNNING))


@lru_cache(maxsize=1)
def _reference_hashes() -> dict[str, str]:
    from attnas.search_space import load_zoo, zoo_names

    return {load_zoo(name).hash: name for name in zoo_names()}


def reference_name(cell_hash: str) -> str | None:
    """The name of the shipped reference cell (non_local, double_attention, ...) with this hash, if any: reference
    cells are points of the space, and a search that finds one should say so."""
    return _reference_hashes().get(cell_hash)

