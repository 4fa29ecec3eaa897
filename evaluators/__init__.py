"""Scoring a cell: data (synthetic spatiotemporal tasks, real video folders) and the proxy trainer.

Names are resolved on first use, so that importing a light part of this package (the simulated evaluator, the
custom evaluator's loader, the configs) on a Ray worker does not pull in torch through this file."""
from __future__ import annotations

from attnas.lazy import lazy_exports

_EXPORTS = {"DataConfig": "attnas.evaluators.config", "ProxyConfig": "attnas.evaluators.config",
            "EvaluationResult": "attnas.evaluators.proxy", "ProxyEvaluator": "attnas.evaluators.proxy"}
__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
