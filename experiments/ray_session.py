"""The Ray cluster a search runs on: joining it (or starting Ray locally), keeping Ray's console output quiet, and
checking that some node can run a trial at all (a trial no node can hold would wait forever; while a search runs,
experiments/node_watch.py keeps checking)."""
from __future__ import annotations

import logging
import os
import warnings
from typing import Any

from attnas.experiments.config import Resources
from attnas.search_space.errors import AttnasError


def cluster_nodes() -> list[dict[str, float]]:
    """The resources (CPU, GPU, ...) of every live node of the connected Ray cluster."""
    import ray

    return [dict(node.get("Resources", {})) for node in ray.nodes() if node.get("Alive")]


def local_nodes() -> list[dict[str, float]]:
    """This machine as one node, as a local Ray would see it (for `--dry-run` without a cluster)."""
    import torch

    return [{"CPU": float(os.cpu_count() or 1), "GPU": float(torch.cuda.device_count())}]


def check_resources(resources: Resources, nodes: list[dict[str, float]], *, where: str) -> None:
    """Raise a one-line error when no node offers what one trial asks for: such a trial would wait forever."""
    shortfall = resource_shortfall(resources, nodes)
    if shortfall is not None:
        raise AttnasError(f"{where}: {shortfall}; no trial could ever start")


def resource_shortfall(resources: Resources, nodes: list[dict[str, float]]) -> str | None:
    """None when some node offers what one trial asks for; else what is missing, naming the field
    (`resources.gpus` or `resources.cpus`) and what the cluster's largest node offers."""
    if any(n.get("CPU", 0.0) >= resources.cpus and n.get("GPU", 0.0) >= resources.gpus for n in nodes):
        return None
    largest = max(nodes, key=lambda n: (n.get("GPU", 0.0), n.get("CPU", 0.0)), default={})
    field = "resources.gpus" if all(n.get("GPU", 0.0) < resources.gpus for n in nodes) else "resources.cpus"
    return (f"{field}: a trial asks for {resources.cpus:g} CPUs and {resources.gpus:g} GPUs, but no node of the Ray "
            f"cluster offers that (the largest of its {len(nodes)} live nodes has {largest.get('CPU', 0):g} CPUs "
            f"and {largest.get('GPU', 0):g} GPUs)")


def init_ray(address: str | None) -> None:
    """Join the cluster at `address` (or RAY_ADDRESS), else start a Ray of this search's own on this machine (never
    one started by `ray start` here, which Ray's `init()` alone would join); one-line error if unreachable."""
    import ray

    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                              "logging_level": logging.ERROR, "configure_logging": True}
    address = address or os.environ.get("RAY_ADDRESS")
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(address="local", num_cpus=os.cpu_count(), **kwargs)
    except (ConnectionError, ValueError, RuntimeError) as error:
        where = f"Ray cluster at {address}" if address else "a local Ray instance"
        raise AttnasError(f"cannot connect to {where}: {str(error).splitlines()[0][:200]}") from None


def quiet_ray() -> None:
    """Keep Ray's own console output (banners, tips, per-trial tables) out of the user's way."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    # A trial's error reaches the history and one progress line (a restart too); not Ray's traceback as well.
    os.environ.setdefault("TUNE_PRINT_ALL_TRIAL_ERRORS", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "1000")
    for name in ("ray", "ray.tune", "ray.train", "ray.air"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="ray")


# Ray Tune's experiment state (every trial's config, results and checkpoints, and the searcher's state) is only for
# `Tuner.restore`; attnas resumes from its history, so it is saved this rarely (and once when the search ends).
EXPERIMENT_STATE_PERIOD_S = 600


def lean_tune() -> list:
    """Ray Tune set up for a search whose record is attnas's history: Tune writes no per-trial result.json,
    params.json/.pkl or progress.csv and saves its experiment state every EXPERIMENT_STATE_PERIOD_S seconds, through
    the environment variables Ray documents (a value the user set is kept); the callbacks to hand Tune: its
    TensorBoard logger, for the per-trial learning curves the README points to."""
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", str(EXPERIMENT_STATE_PERIOD_S))
    from ray.tune.logger import TBXLoggerCallback

    try:
        return [TBXLoggerCallback()]
    except ImportError:  # tensorboardX missing: no curves for TensorBoard, as with Tune's own defaults
        return []
