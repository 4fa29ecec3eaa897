"""`attnas evaluate` and `attnas train`: one cell, scored or trained with an experiment's evaluator, no search."""
from __future__ import annotations

import difflib
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from attnas.search_space import CellSpec, load_zoo, zoo_names
from attnas.search_space.errors import AttnasError

NO_CELL = "none"


def resolve_cell(text: str) -> CellSpec | None:
    """A cell from a YAML file, a reference cell's name, or None for `none` (the backbone alone)."""
    if text == NO_CELL:
        return None
    if Path(text).exists():  # any file: the reader refuses what is not a regular file, by name
        return CellSpec.from_yaml(text)
    if text in zoo_names():
        return load_zoo(text)
    known = zoo_names() + [NO_CELL]
    close = difflib.get_close_matches(text.replace("-", "_"), known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise AttnasError(f"{text}: no such cell file or reference cell{hint} (reference cells: {', '.join(known)})")


def _evaluator_settings(config_path: str):
    from attnas.experiments.config import load_experiment, proxy_config

    config = load_experiment(config_path)
    return proxy_config(config.evaluator, where=config.source)


def _epoch_printer(console: Console, label: str):
    def report(epoch: int, metrics: dict) -> bool:
        console.print(f"  {label} epoch {epoch}: validation top1 {metrics['top1']:.4f}  "
                      f"validation loss {metrics['loss']:.4f}")
        return False
    return report


def evaluate_cell(cell: str, *, config_path: str, seeds: int = 1, console: Console | None = None) -> list:
    """Score `cell` with the experiment's evaluator under `seeds` seeds; prints a table and returns the results."""
    from attnas.evaluators.proxy import ProxyEvaluator

    from attnas.evaluators.simulated import is_simulated
    from attnas.experiments.config import evaluator_config, load_experiment

    console = console or Console()
    spec = resolve_cell(cell)
    config = load_experiment(config_path)
    if is_simulated(config.evaluator):
        return _evaluate_simulated(cell, spec, evaluator_config(config.evaluator, where=config.source), seeds,
                                   console)
    settings = _evaluator_settings(config_path)
    results = []
    for offset in range(seeds):
        seeded = replace(settings, seed=settings.seed + offset)
        result = ProxyEvaluator(seeded).evaluate(spec, report=_epoch_printer(console, f"seed {seeded.seed}"))
        if result.status == "failed":
            raise AttnasError(f"{cell}: evaluation failed: {result.reason}")
        results.append(result)
    table = Table(title=f"{cell} ({spec.hash if spec else 'backbone alone'})")
    for column in ("seed", "top1", "top5", "loss", "MACs", "params", "latency ms", "wall s"):
        table.add_column(column, justify="right")
    for result in results:
        table.add_row(str(result.seed), f"{result.top1:.4f}", _optional(result.top5), f"{result.loss:.4f}",
                      f"{result.macs:,}", f"{result.params:,}", _optional(result.latency, 1000.0),
                      f"{result.wall_time:.1f}")
    console.print(table)
    if len(results) > 1:
        top1 = [r.top1 for r in results]
        console.print(f"top1 mean {statistics.mean(top1):.4f} +/- {statistics.stdev(top1):.4f} "
                      f"over {len(top1)} seeds")
    return results


def _evaluate_simulated(cell: str, spec: CellSpec | None, settings, seeds: int, console: Console) -> list[dict]:
    """`attnas evaluate` with the simulated evaluator: its curve and costs for each seed, at once (no sleeping)."""
    from attnas.evaluators.simulated import accuracy_curve, trial_costs

    if spec is None:
        raise AttnasError(f"{cell}: the simulated evaluator scores cells; there is no score for the backbone alone")
    costs = trial_costs(spec, settings)
    results = []
    for offset in range(seeds):
        seeded = replace(settings, seed=settings.seed + offset)
        curve = accuracy_curve(spec, seeded)
        for epoch, accuracy in enumerate(curve, start=1):
            console.print(f"  seed {seeded.seed} epoch {epoch}: simulated accuracy {accuracy:.4f}")
        results.append({"seed": seeded.seed, "accuracy": curve[-1], "curve": curve, **costs})
    table = Table(title=f"{cell} ({spec.hash}), simulated")
    for column in ("seed", "accuracy", "MACs", "params"):
        table.add_column(column, justify="right")
    for result in results:
        table.add_row(str(result["seed"]), f"{result['accuracy']:.4f}",
                      *(f"{result[k]:,.0f}" if k in result else "-" for k in ("macs", "params")))
    console.print(table)
    return results


def train_cell(cell: str, *, config_path: str, epochs: int | None = None, output: str | None = None,
               console: Console | None = None):
    """Train the experiment's model with `cell` for longer, score the held-out test split, save the weights."""
    import torch

    from attnas.evaluators.checkpoint import model_weights
    from attnas.evaluators.proxy import ProxyEvaluator

    console = console or Console()
    if output:
        check_output_file(output, flag="-o")
    spec = resolve_cell(cell)
    settings = _evaluator_settings(config_path)
    settings = replace(settings, epochs=epochs or 3 * settings.epochs)
    with tempfile.TemporaryDirectory(prefix="attnas-train-") as work:
        result = ProxyEvaluator(settings).evaluate(spec, report=_epoch_printer(console, "train"),
                                                   checkpoint_dir=work, test=True)
        if result.status == "failed":
            raise AttnasError(f"{cell}: training failed: {result.reason}")
        if output:
            torch.save(model_weights(work), output)
    console.print(f"{cell}: validation top1 {result.top1:.4f}, test top1 {result.test_top1:.4f} after "
                  f"{result.epochs} epochs ({result.wall_time:.0f} s); {result.params:,} params, "
                  f"{result.macs:,} multiply-adds per clip" + (f"; weights in {output}" if output else ""))
    if output:
        console.print("to load the weights, rebuild the same model: "
                      f"attnas.experiments.standalone.load_trained({cell!r}, config={config_path!r}, "
                      f"weights={output!r})", markup=False, highlight=False)
    return result


def load_trained(cell: str, *, config: str, weights: str):
    """The model `attnas train CELL --config CONFIG -o WEIGHTS` trained: the experiment's backbone with the cell
    inserted where the experiment puts it, with the saved weights loaded (strictly), in eval mode."""
    import torch

    from attnas.evaluators.proxy import ProxyEvaluator

    spec = resolve_cell(cell)
    evaluator = ProxyEvaluator(_evaluator_settings(config))
    splits = evaluator.splits()
    model = evaluator.build_model(spec, splits.num_classes, splits.clip_shape)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as error:
        raise AttnasError(f"{weights}: cannot read the weights ({str(error).splitlines()[0][:200]})") from None
    model.load_state_dict(state)
    return model.eval()


def check_output_file(output: str, *, flag: str) -> None:
    """Before any work: `output` can be written (its folder exists and takes a new file; it is not a folder)."""
    path = Path(output)
    folder = path.parent
    if path.is_dir():
        raise AttnasError(f"{flag} {output}: is a folder; expected a file name")
    if not folder.is_dir():
        raise AttnasError(f"{flag} {output}: folder {folder} does not exist")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise AttnasError(f"{flag} {output}: cannot write in {folder} ({error.strerror})") from None


def _optional(value, scale: float = 1.0) -> str:
    return "-" if value is None else f"{value * scale:.4f}" if scale == 1.0 else f"{value * scale:.1f}"
