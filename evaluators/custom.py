"""Scoring cells with the user's own training code: an evaluator named in the experiment as `module:attr`.

    evaluator:
      custom: my_package.scoring:evaluate   # importable on every Ray worker (installed, or on the driver's sys.path)
      epochs: 5                             # epochs the evaluator reports; ASHA's max_t
      seed: 0
      settings: {lr: 0.01}                  # anything; handed over as `context.settings`

`attr` is either a function `evaluate(cell, context) -> dict`, or a class whose instances are such callables
(built once per trial as `cls(**settings)`). It runs inside a Ray trial like the built-in proxy evaluator:
- `cell` is the `CellSpec` to score (`attnas.build_cell(cell, channels)` makes it a module, `attnas.insert` puts it
  into a model);
- after every epoch it calls `context.report(epoch, accuracy=..., **more)` with epoch = 1, 2, ..., `epochs`; the
  return value is True when the trial should stop (ASHA may also end the trial at that call). `accuracy` is the
  reward, higher is better;
- it may keep files in `context.checkpoint_dir`: they are saved with each report, and a trial restarted on another
  worker finds them there again (`context.resumed` is then True);
- it returns the final metrics: `accuracy` (required unless the last report had it) and any of `macs`, `params`,
  `latency_ms`, `top5`, `loss`. An exception fails the trial with its first line as the reason; the search goes on.
`context.device` is "cuda" when Ray gave the trial a GPU, else "cpu"; `context.threads` its CPUs.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from attnas.search_space.errors import AttnasError

REPORTABLE = ("accuracy", "top5", "loss", "macs", "params", "latency_ms")


class EvaluatorImportError(AttnasError):
    """The `module:attr` an experiment names cannot be imported or is not callable."""


def _entry_check(value: str) -> str | None:
    module, _, attr = value.partition(":")
    if not module or not attr:
        return "expected 'module:attribute', e.g. 'my_package.scoring:evaluate'"
    return None


@dataclass(frozen=True)
class CustomEvaluatorConfig:
    """The experiment's `evaluator:` section when it names a user's evaluator (see the module docstring)."""

    custom: str = field(metadata={"check": _entry_check})
    epochs: int = field(default=1, metadata={"check": lambda v: None if v >= 1 else "expected >= 1"})
    seed: int = 0
    settings: dict[str, Any] = field(default_factory=dict)


def is_custom(evaluator: dict[str, Any] | None) -> bool:
    """Whether an experiment's `evaluator:` section names a user's evaluator rather than the proxy trainer."""
    return isinstance(evaluator, dict) and "custom" in evaluator


def load_evaluator(entry: str) -> Callable[..., Any]:
    """The object `module:attr` names; EvaluatorImportError (one line) when it is missing or not callable."""
    module_name, _, attr = entry.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise EvaluatorImportError(f"evaluator.custom: cannot import module {module_name!r} ({error}); it must be "
                                   "importable where the search runs and on every Ray worker") from None
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise EvaluatorImportError(f"evaluator.custom: module {module_name!r} has no attribute {attr!r}")
        target = getattr(target, part)
    if not callable(target):
        raise EvaluatorImportError(f"evaluator.custom: {entry!r} is not callable; expected a function "
                                   "evaluate(cell, context) or a class")
    return target


@dataclass
class TrialContext:
    """What a custom evaluator gets besides the cell: settings, epochs, where to report and keep checkpoints."""

    settings: dict[str, Any]
    epochs: int
    seed: int
    device: str
    threads: int
    checkpoint_dir: Path
    resumed: bool
    reporter: Callable[[int, dict[str, float]], bool]
    reported: dict[str, float] = field(default_factory=dict)

    def report(self, epoch: int, **metrics: float) -> bool:
        """Report one epoch's metrics (`accuracy` at least); True when the trial should stop."""
        if "accuracy" not in metrics:
            raise AttnasError(f"evaluator.custom: report(epoch={epoch}) needs accuracy=...")
        values = {k: float(v) for k, v in metrics.items() if v is not None}
        self.reported = {**self.reported, **values, "epoch": int(epoch)}
        return bool(self.reporter(int(epoch), values))


def run_custom(config: CustomEvaluatorConfig, cell: Any, context: TrialContext) -> dict[str, float]:
    """Run the user's evaluator on `cell`; its final metrics merged over the last report, numbers only."""
    target = load_evaluator(config.custom)
    evaluate = target(**config.settings) if isinstance(target, type) else target
    returned = evaluate(cell, context)
    if returned is None:
        returned = {}
    if not isinstance(returned, dict):
        raise AttnasError(f"evaluator.custom: {config.custom} returned {type(returned).__name__}; expected a dict "
                          "of metrics such as {'accuracy': 0.8}")
    final = {k: v for k, v in context.reported.items() if k in REPORTABLE}
    final.update({k: float(v) for k, v in returned.items() if k in REPORTABLE and v is not None})
    if "accuracy" not in final:
        raise AttnasError(f"evaluator.custom: {config.custom} reported no accuracy")
    return final
