"""The trial checkpoint: the one module that writes and reads <checkpoint_dir>/checkpoint.pt.

Layout (format 1): `format`, `identity` (what a resuming trial must match, `trial_identity`), `epoch`, the first
model's `model`, `optimizer`, `scheduler` (and with fp16 `scaler`) state dicts at the top level, `replicas` (the same
for the other seeds of a trial with repeats), `torch_rng`, `cuda_rng`, and `curve` (JSON text). Everything is tensors,
numbers and strings, so it is read with torch.load(weights_only=True), never with pickle.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from attnas.evaluators.config import ProxyConfig
from attnas.search_space import AttnasError

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = 1
# settings that change how fast a trial runs, not what it computes: a checkpoint resumes across them
_RESOURCES = ("device", "threads", "measure_latency", "latency_batch", "eval_batch_size", "feature_cache",
              "feature_cache_budget_mb")


class CheckpointError(AttnasError):
    """A checkpoint that cannot be read: missing, of another format, or of another trial."""


def trial_identity(config: ProxyConfig, spec_hash: str | None) -> str:
    """What a checkpoint must match to be resumed by this trial: the cell and every setting except resources."""
    settings = config.to_dict()
    for resource in _RESOURCES:
        settings.pop(resource, None)
    return json.dumps({"spec": spec_hash, "config": settings}, sort_keys=True, default=list)


def checkpoint_path(folder: str | Path) -> Path:
    """Where a trial with `checkpoint_dir=folder` keeps its checkpoint."""
    return Path(folder) / CHECKPOINT_NAME


def save_checkpoint(path: Path, *, identity: str, epoch: int, replicas: list[dict[str, Any]],
                    curve: list[dict[str, Any]]) -> None:
    """Write a checkpoint atomically (temporary file, then os.replace: a worker killed mid-write leaves the previous
    one intact). `replicas` are the state dicts (model, optimizer, scheduler) of the trial's seeds, first first."""
    first, others = replicas[0], replicas[1:]
    # the first model's state sits at the top level, where `model_weights` reads it
    state = {"format": CHECKPOINT_FORMAT, "identity": identity, "epoch": epoch, **first, "replicas": others,
             "torch_rng": torch.get_rng_state(),
             "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
             "curve": json.dumps(curve)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, *, identity: str | None = None,
                    map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint at `path` (weights_only), checked for its format and, when given, the trial `identity`;
    raises CheckpointError naming the file otherwise. `curve` comes back as a list of dicts."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint")
    state = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path}: checkpoint format {found!r}, expected {CHECKPOINT_FORMAT}")
    if identity is not None and state["identity"] != identity:
        raise CheckpointError(f"{path}: checkpoint belongs to another cell or configuration; remove it or use "
                              "another checkpoint_dir")
    state["curve"] = json.loads(state["curve"])
    return state


def model_weights(folder: str | Path) -> dict[str, torch.Tensor]:
    """The (first) model's state dict from the checkpoint of the trial that ran with `checkpoint_dir=folder`."""
    return load_checkpoint(checkpoint_path(folder))["model"]


def replica_states(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-seed state dicts (model, optimizer, scheduler, and the gradient scaler's with fp16) of a loaded
    checkpoint, first seed first."""
    first = {key: state[key] for key in ("model", "optimizer", "scheduler", "scaler") if key in state}
    return [first, *state.get("replicas", [])]
