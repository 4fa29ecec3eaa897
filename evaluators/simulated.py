"""A simulated evaluator: trials that score a cell by a fixed formula instead of training, for scale tests and
benchmarks of the search machinery (driver, searcher, history, publisher, Ray) on machines without the hardware.

    evaluator:
      kind: simulated
      epochs: 3            # epochs each trial reports; ASHA's max_t
      epoch_seconds: 0     # seconds each epoch sleeps: 0 for instant trials, 60 for a time-scaled GPU trial
      seed: 0              # which fixed random function of the cell is the score
      noise: 0.01          # amplitude of the deterministic per-epoch noise on the curve (not on the final value)
      costs: true          # multiply-adds and parameters from the real cost model (false: none reported)
      table: null          # or `attnbench` / an absolute path: replay a tabular benchmark instead (below)

With `table`, a trial replays the AttnBench table (search_space/attnbench.py; `attnbench` is the table shipped in
the package, else an absolute path to a table file) instead of the formula: it reports the cell's stored validation
curve, epoch by epoch (the mean over the table's seeds; `seed` and `noise` are unused), then its stored multiply-adds
and parameters (no torch), test accuracy (`test_accuracy`) and trial time (`table_trial_seconds`). `epochs` must
equal the table's epochs. A cell the table lacks fails its trial with one line naming the table file, its `cells`
and the cell's hash; a missing or partial table is reported when the experiment is read (`describe()`).

A simulated trial runs in the same Ray trainable as a real one (experiments/trainable.py): it reports every epoch
with a checkpoint, resumes from its checkpoint after a lost worker, and is recorded in the history as any trial.

The score. Each of the cell's Weisfeiler-Lehman subtree features (`search_space.encoding.wl_features`, the features
the bayesian controller models) gets a fixed weight in [-1, 1] drawn from a hash of (seed, feature); the weighted
sum over the feature bag, divided by the root of the feature count, goes through a logistic function onto
[LOW, HIGH] = [0.3, 0.9]. Cells sharing subgraphs therefore score alike, as real cells do, and a graph surrogate can
learn the function. A term of at most 1e-3 from the cell's hash keeps two distinct cells from tying. The curve rises
as 1 - exp(-3 e / epochs) (rescaled to reach the final accuracy at the last epoch), plus noise uniform in
[-noise, noise] from a hash of (cell hash, seed, epoch) on every epoch but the last. Everything is built from
blake2b hashes, so the same cell and seed give the same numbers in any process, on any machine.

The costs are those a real trial of the built-in proxy evaluator with its default settings reports for the cell
(cells.complexity on the default backbone with the cell inserted, on the default task's clip): counting them needs
torch, so they are kept per cell in a small SQLite file in the machine's cache folder (evaluators.data.cache), and
a worker imports torch only for a cell it has not seen. `costs: false` never imports torch (for hundreds of
simulated trials at once, where a torch import per worker process would not fit in memory).
"""
from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from attnas.search_space.attnbench import TableError, load_table
from attnas.search_space.encoding import wl_features
from attnas.search_space.errors import AttnasError
from attnas.search_space.schema import non_negative, positive
from attnas.search_space.spec import CellSpec

LOW, HIGH = 0.3, 0.9  # the range of final accuracies: a plausible spread for a proxy task
CURVE_RATE = 3.0  # how fast the curve approaches the final accuracy (1 - exp(-3) = 95 % of the rise by the end)
TIE_BREAK = 1e-3
EPOCH_FILE = "simulated_epoch.txt"
COSTS_FILE = "simulated-costs.sqlite"


def _amplitude_check(value: float) -> str | None:
    return None if 0 <= value <= 0.5 else "expected a number in [0, 0.5]"


def _table_check(value: str) -> str | None:
    """The table must be `attnbench` or an absolute path, and load (read once per process, then cached)."""
    if value != "attnbench" and not Path(value).is_absolute():
        return "expected `attnbench` (the shipped table) or an absolute path to an AttnBench table file"
    try:
        load_table(value)
    except TableError as error:
        return f"cannot replay it: {error}"
    return None


@dataclass(frozen=True)
class SimulatedEvaluatorConfig:
    """The experiment's `evaluator:` section with `kind: simulated` (see the module docstring)."""

    kind: Literal["simulated"]
    epochs: int = field(default=3, metadata={"check": positive})
    epoch_seconds: float = field(default=0.0, metadata={"check": non_negative})
    seed: int = field(default=0, metadata={"check": non_negative})
    noise: float = field(default=0.01, metadata={"check": _amplitude_check})
    costs: bool = True
    table: str | None = field(default=None, metadata={"check": _table_check})

    def __post_init__(self) -> None:
        table = load_table(self.table) if self.table is not None else None
        if table is not None and self.epochs != table.epochs:
            raise AttnasError(f"evaluator.epochs: table {table.path} holds {table.epochs}-epoch curves; expected "
                              f"epochs: {table.epochs}, got {self.epochs}")


def is_simulated(evaluator: dict[str, Any] | None) -> bool:
    """Whether an experiment's `evaluator:` section selects the simulated evaluator."""
    return isinstance(evaluator, dict) and evaluator.get("kind") == "simulated"


def _unit(*parts: Any) -> float:
    """A number in [0, 1) fixed by `parts`, the same in every process (blake2b, unlike Python's salted hash())."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2 ** 64


def final_accuracy(cell: CellSpec, seed: int = 0) -> float:
    """The accuracy the simulated evaluator gives `cell` at its last epoch under `seed`."""
    features = wl_features(cell)
    total = sum(features.values())
    score = sum(count * (2 * _unit("weight", seed, name) - 1) for name, count in features.items())
    score /= math.sqrt(total)
    logistic = 1 / (1 + math.exp(-score))
    return LOW + (HIGH - LOW - TIE_BREAK) * logistic + TIE_BREAK * _unit("cell", seed, cell.hash)


def accuracy_curve(cell: CellSpec, config: SimulatedEvaluatorConfig) -> list[float]:
    """The accuracy reported after each epoch 1..epochs; the last is `final_accuracy`, exactly (with a table: the
    cell's stored curve, TableError when the table lacks the cell)."""
    if config.table is not None:
        return load_table(config.table).record(cell.hash).curve
    final = final_accuracy(cell, config.seed)
    curve = []
    for epoch in range(1, config.epochs + 1):
        rise = (1 - math.exp(-CURVE_RATE * epoch / config.epochs)) / (1 - math.exp(-CURVE_RATE))
        value = final * rise
        if epoch < config.epochs:
            value += config.noise * (2 * _unit("noise", cell.hash, config.seed, epoch) - 1)
        curve.append(min(1.0, max(0.0, value)))
    return curve


# ------------------------------------------------------------------------------------------------------------ costs
def _cost_model() -> tuple[Any, tuple[int, ...], int]:
    """The default proxy evaluator's settings, and the clip shape and classes of its default task (no data made)."""
    from attnas.evaluators.config import ProxyConfig
    from attnas.evaluators.data.synthetic import create_task

    proxy = ProxyConfig()
    task = create_task(proxy.data.task, **proxy.data.fields)
    return proxy, tuple(task.clip_shape), int(task.num_classes)


def _cost_key(cell: CellSpec) -> str:
    """The cache key of a cell's costs: its hash and everything about the model they are counted on."""
    proxy, clip_shape, classes = _cost_model()
    model = json.dumps([proxy.backbone, proxy.backbone_args, list(proxy.at), clip_shape, classes], sort_keys=True,
                       default=list)
    return f"{cell.hash}:{hashlib.blake2b(model.encode(), digest_size=8).hexdigest()}"


def cost_model(cell: CellSpec):
    """(model, clip shape): the default proxy model with `cell` inserted, which the costs are counted on (and which
    `attnas export` builds the cell for, since it is where a simulated trial puts it)."""
    from attnas.evaluators.proxy import ProxyEvaluator

    proxy, clip_shape, classes = _cost_model()
    return ProxyEvaluator(proxy).build_model(cell, classes, clip_shape), clip_shape


def count_costs(cell: CellSpec) -> dict[str, float]:
    """Multiply-adds and parameters of the default proxy model with `cell` inserted, as a real trial counts them."""
    import torch

    from attnas.cells.complexity import count_macs

    model, clip_shape = cost_model(cell)
    complexity = count_macs(model, torch.zeros(1, *clip_shape))
    return {"macs": float(complexity.macs), "params": float(complexity.params)}


def cell_costs(cell: CellSpec, cache_dir: Path | None = None) -> dict[str, float]:
    """`count_costs(cell)`, read from the machine's cache when a trial counted them before (written otherwise)."""
    from attnas.evaluators.data.cache import default_cache_dir

    folder = Path(cache_dir) if cache_dir else default_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    key = _cost_key(cell)
    # Many trials at once share the file: SQLite's own locking, with a generous wait, keeps their writes apart.
    with sqlite3.connect(folder / COSTS_FILE, timeout=60) as db:
        db.execute("CREATE TABLE IF NOT EXISTS costs (key TEXT PRIMARY KEY, macs REAL, params REAL)")
        row = db.execute("SELECT macs, params FROM costs WHERE key = ?", (key,)).fetchone()
    if row is not None:
        return {"macs": row[0], "params": row[1]}
    costs = count_costs(cell)
    with sqlite3.connect(folder / COSTS_FILE, timeout=60) as db:
        db.execute("INSERT OR REPLACE INTO costs VALUES (?, ?, ?)", (key, costs["macs"], costs["params"]))
    return costs


def trial_costs(cell: CellSpec, config: SimulatedEvaluatorConfig) -> dict[str, float]:
    """The costs a simulated trial reports: the table's with a table (and its test accuracy and trial time), the
    cost model's with `costs`, else none."""
    if config.table is not None:
        record = load_table(config.table).record(cell.hash)
        values = {"macs": record.macs, "params": record.params, "test_accuracy": record.test_accuracy,
                  "table_trial_seconds": record.trial_seconds}
        return {name: float(value) for name, value in values.items() if value is not None}
    return cell_costs(cell) if config.costs else {}


# ------------------------------------------------------------------------------------------------------------ a trial
def run_simulated(config: SimulatedEvaluatorConfig, cell: CellSpec, checkpoint_dir: Path,
                  report: Callable[[int, dict[str, float]], Any]) -> dict[str, float]:
    """One simulated trial: for each epoch not yet done (the checkpoint folder remembers the last one), sleep
    `epoch_seconds`, note the epoch in the checkpoint folder and `report(epoch, {"accuracy": ...})`; returns the
    final metrics (accuracy, and macs and params unless `costs` is false) and `resumed_from`, the epochs found done."""
    marker = Path(checkpoint_dir) / EPOCH_FILE
    done = int(marker.read_text()) if marker.is_file() else 0
    curve = accuracy_curve(cell, config)
    for epoch in range(done + 1, config.epochs):
        time.sleep(config.epoch_seconds)
        marker.write_text(str(epoch))
        report(epoch, {"accuracy": curve[epoch - 1]})
    if done < config.epochs:
        time.sleep(config.epoch_seconds)
        marker.write_text(str(config.epochs))
    return {"accuracy": curve[-1], "resumed_from": float(done), **trial_costs(cell, config)}
