"""Scoring a cell: data (synthetic spatiotemporal tasks, real video folders) and the proxy trainer."""
from evaluators.config import DataConfig, ProxyConfig
from evaluators.proxy import EvaluationResult, ProxyEvaluator

__all__ = ["DataConfig", "ProxyConfig", "EvaluationResult", "ProxyEvaluator"]
