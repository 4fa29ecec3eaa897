"""Scoring a cell: data (synthetic spatiotemporal tasks, real video folders) and the proxy trainer.

Names are resolved on first use, so that importing a light part of this package (the simulated evaluator, the
custom evaluator's loader, the configs) on a Ray worker does not pull in torch through this file."""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"DataConfig": "attnas.evaluators.config", "ProxyConfig": "attnas.evaluators.config",
            "EvaluationResult": "attnas.evaluators.proxy", "ProxyEvaluator": "attnas.evaluators.proxy"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'attnas.evaluators' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
