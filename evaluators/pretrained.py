"""The warm start every proxy trial shares: the backbone alone, trained once per machine, its weights cached.

Why: trained from random weights for a few epochs, whether a relational cell has got its relation by the end is
largely the luck of the initial draw, and a single seed ranks cells of similar ability by that luck (see "What was
tried" in benchmarks/proxy_signal.py). Starting every trial from one backbone trained alone, with the cell inserted
at identity (zero-scale BatchNorm and a residual, as Wang et al. 2018 insert non-local blocks into a pretrained
network), gives every cell the same features to relate; with `freeze_front` the layers up to the first placement
stay as pretrained (weights and BatchNorm statistics), so the trial's seed moves only the cell, the layers after it
and the data order.

The weights are those of a proxy trial of the backbone alone at `pretrain_seed`, for `pretrain_epochs` epochs, on the
trial's data with its optimiser, schedule and device type. They are written once per machine to
<cache>/backbones/<key>.pt under a file lock (temporary file, then os.replace), read back with weights_only=True,
and kept in memory for the rest of the process.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from attnas.evaluators.checkpoint import trial_identity
from attnas.evaluators.config import ProxyConfig
from attnas.evaluators.data.cache import cache_key, default_cache_dir, file_lock
from attnas.evaluators.data.fingerprint import data_fingerprint

_MEMO: dict[str, dict[str, torch.Tensor]] = {}


def pretraining_config(config: ProxyConfig) -> ProxyConfig:
    """The trial of the backbone alone whose final weights every trial of `config` starts from."""
    # freeze_front is moot without pretraining and validation does not move the weights; fixing them keeps one
    # cache entry for all their values
    return replace(config, epochs=config.pretrain_epochs, seed=config.pretrain_seed, pretrain_epochs=0,
                   freeze_front=False, repeats=1, measure_latency=False,
                   validation_subset=ProxyConfig.validation_subset)


def pretrained_backbone(config: ProxyConfig, device: torch.device, *,
                        train: Callable[[ProxyConfig], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The backbone's state dict (on the CPU) after pretraining as `config` says; if this machine has not yet,
    `train(pretraining_config(config))` trains it (the proxy trainer, handed in so this module does not import it)."""
    pretraining = pretraining_config(config)
    key = cache_key({"trial": trial_identity(pretraining, "none"), "device": device.type,
                     "torch": torch.__version__, **_data_key(config)})
    if key not in _MEMO:
        _MEMO[key] = _cached(pretraining, key, train) if config.data.use_cache else train(pretraining)
    return _MEMO[key]


def _data_key(config: ProxyConfig) -> dict[str, str]:
    """The files the backbone is trained on, for video data (a changed file or class folder, a new backbone)."""
    fingerprint = data_fingerprint(config.data)
    return {"data_files": fingerprint} if fingerprint else {}


def _cached(pretraining: ProxyConfig, key: str,
            train: Callable[[ProxyConfig], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    root = Path(pretraining.data.cache_dir) if pretraining.data.cache_dir else default_cache_dir()
    path = root / "backbones" / f"{key}.pt"
    if not path.exists():
        with file_lock(path.with_suffix(".lock")):
            if not path.exists():  # another trial may have trained it while we waited
                state = train(pretraining)
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                torch.save(state, tmp)
                os.replace(tmp, path)
                return state
    return torch.load(path, map_location="cpu", weights_only=True)


def clear_memo() -> None:
    """Forget the weights loaded in this process (tests use it to observe the on-disk cache)."""
    _MEMO.clear()


def freeze_front(model: nn.Module, config: ProxyConfig, clip_shape: Sequence[int]) -> list[nn.Module]:
    """With pretraining and `config.freeze_front`: fix the weights of every layer that runs before the first
    placement's block ends (in forward order, read off one dry run of a zero clip), and return those layers; the
    caller keeps them in eval mode while training (`train_mode`), so their BatchNorm statistics stay fixed too. The
    cell then learns on the same features in every trial. Otherwise nothing is fixed ([])."""
    from attnas.cells.insert import CellAfter, placements

    if config.pretrain_epochs == 0 or not config.freeze_front:
        return []
    names = placements(model)
    blocks = []
    for name in config.at:
        block = model.get_submodule(names[name])
        blocks.append(block.block if isinstance(block, CellAfter) else block)
    called: list[nn.Module] = []
    front: list[nn.Module] | None = None

    def record(module: nn.Module, args) -> None:
        called.append(module)

    def block_done(module: nn.Module, args, output) -> None:
        nonlocal front
        if front is None:
            front = list(dict.fromkeys(called))

    owners = [m for m in model.modules() if any(True for _ in m.parameters(recurse=False))
              or any(True for _ in m.buffers(recurse=False))]
    hooks = [m.register_forward_pre_hook(record) for m in owners]
    hooks += [block.register_forward_hook(block_done) for block in blocks]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *clip_shape))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    for module in front or []:
        for parameter in module.parameters(recurse=False):
            parameter.requires_grad_(False)
    return front or []


def train_mode(model: nn.Module, frozen: Sequence[nn.Module]) -> None:
    """`model` in training mode, but for the `frozen` front, whose BatchNorm statistics must not move."""
    model.train()
    for module in frozen:
        module.eval()
