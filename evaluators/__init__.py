"""Scoring a cell: data (synthetic spatiotemporal tasks, real video folders) and the proxy trainer."""
from attnas.evaluators.config import DataConfig, ProxyConfig
from attnas.evaluators.proxy import EvaluationResult, ProxyEvaluator

__all__ = ["DataConfig", "ProxyConfig", "EvaluationResult", "ProxyEvaluator"]
