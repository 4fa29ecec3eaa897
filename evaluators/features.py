"""The frozen-front feature cache: what a trial feeds its model, clips or the frozen front's output for them.

With pretraining and `freeze_front`, the layers up to the first placement are the same pretrained, frozen layers in
every trial (weights and BatchNorm statistics), and without random augmentation each clip's output of those layers
is the same in every trial and epoch. It is computed once per machine and stored (float32 .npy, memory-mapped)
under <cache>/features/<key>, the key naming everything that determines it: the clips themselves (a hash of the
arrays), the backbone with its pretrained weights (a hash of the tensors) and the placement. Trials then train the
cell and the layers after it from those features: the same arithmetic on the same numbers as the uncached path, minus
the front. `feature_path` says which path a trial took and why, as its `feature_path` attribute:

- "cached": the front ran once for the machine, trials read its output;
- "clips: <reason>": the whole model runs on clips, because the front is not frozen, augmentation is on, the
  cache (or data.use_cache) is turned off, the backbone cannot be entered at the placement, or the features would
  not fit the disk budget (`feature_cache_budget_mb`).
"""
from __future__ import annotations

import contextlib
import hashlib
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from attnas.evaluators.config import ProxyConfig
from attnas.evaluators.data.cache import ArrayCache, default_cache_dir
from attnas.evaluators.data.synthetic import TaskData
from attnas.evaluators.datasets import Splits

CACHED = "cached"
# Kinetics-style normalisation of uint8 pixels; any fixed affine map works, this keeps inputs near zero mean.
PIXEL_MEAN, PIXEL_STD = 0.45 * 255, 0.225 * 255
_FRONT_BATCH = 256


@dataclass
class TrialInputs:
    """How a trial feeds its model: `splits` holds clips (run through the whole model) or, with `start` set, the
    output of the module at dotted path `start` for each clip (run through what follows it, `forward`)."""

    splits: Splits
    path: str
    start: str | None = None
    channels_last: bool = False
    flip: bool = False

    @property
    def cached(self) -> bool:
        return self.start is not None

    def tensors(self, data: TaskData, batch: np.ndarray, device: torch.device, *,
                flip: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch (model input, labels) on `device`; `flip` marks clips to mirror left-right (augmentation)."""
        return batch_tensors(data, batch, device, pixels=self.start is None, channels_last=self.channels_last,
                             flip=flip)

    def forward(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The model's logits for a batch from `tensors`."""
        return model(x) if self.start is None else forward_from(model, self.start, x)


def batch_tensors(data: TaskData, batch: np.ndarray, device: torch.device, *, pixels: bool = True,
                  channels_last: bool = False, flip: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows `batch` of `data` and their labels on `device`: uint8 clips normalised to floats (`pixels`; `flip`
    marks clips to mirror left-right), or cached features as they are (in channels_last_3d if the model runs so)."""
    # sorted indices read a memory-mapped array front to back; the order inside a batch does not matter
    index = np.sort(batch)
    if isinstance(data.clips, torch.Tensor):  # held on the device already (`on_device`)
        where = torch.from_numpy(index).to(data.clips.device)
        rows, labels = data.clips[where], data.labels[where]
    else:
        rows = torch.from_numpy(np.ascontiguousarray(data.clips[index]))
        labels = torch.from_numpy(np.asarray(data.labels[index], dtype=np.int64))
        if device.type == "cuda":  # pinned memory lets the copies overlap the previous step's kernels
            rows, labels = rows.pin_memory(), labels.pin_memory()
        rows, labels = rows.to(device, non_blocking=True), labels.to(device, non_blocking=True)
    if pixels:
        rows = (rows.float() - PIXEL_MEAN) / PIXEL_STD
        if flip is not None and flip[index].any():
            mirrored = torch.from_numpy(np.asarray(flip[index])).to(device)
            rows = torch.where(mirrored[:, None, None, None, None], rows.flip(-1), rows)
    elif channels_last:
        rows = rows.contiguous(memory_format=torch.channels_last_3d)
    return rows, labels


def clip_inputs(splits: Splits, config: ProxyConfig, reason: str) -> TrialInputs:
    """The uncached path: clips through the whole model (`reason` says why)."""
    return TrialInputs(splits=splits, path=f"clips: {reason}", flip=config.augment == "flip")


def trial_inputs(config: ProxyConfig, model: nn.Module, frozen: Sequence[nn.Module], splits: Splits,
                 device: torch.device, *, test: bool,
                 amp: contextlib.AbstractContextManager | None = None) -> TrialInputs:
    """The cached path where it applies (building the cache on first use, under the trial's autocast `amp`, as the
    uncached path runs the front), else the clip path with its reason. On a GPU, features that fit in a quarter of
    its free memory are held there."""
    if not config.feature_cache:
        return clip_inputs(splits, config, "feature_cache is off")
    if not config.data.use_cache:  # the user asked for nothing kept on disk
        return clip_inputs(splits, config, "data.use_cache is off")
    if not frozen:
        return clip_inputs(splits, config, "the front is not frozen (needs pretrain_epochs > 0 and freeze_front)")
    if config.augment != "none":
        return clip_inputs(splits, config, f"augmentation is on ({config.augment})")
    front = _front(model, config, frozen, splits.clip_shape)
    if front is None:
        return clip_inputs(splits, config, f"{type(model).__name__} cannot be entered after placement "
                                           f"{', '.join(config.at)} with its front fixed")
    start, shape = front
    names = ("train", "validation", "test") if test else ("train", "validation")
    needed_mb = sum(len(splits.split(name).labels) for name in names) * 4 * int(np.prod(shape)) / 2**20
    root = (Path(config.data.cache_dir) if config.data.cache_dir else default_cache_dir()) / "features"
    root.mkdir(parents=True, exist_ok=True)
    free_mb = shutil.disk_usage(root).free / 2**20
    if needed_mb > min(config.feature_cache_budget_mb, free_mb):
        return clip_inputs(splits, config, f"the features need {needed_mb:.0f} MB, over the disk budget of "
                                           f"{min(config.feature_cache_budget_mb, free_mb):.0f} MB")
    cache = ArrayCache(root)
    weights = _hash_tensors(module.state_dict() for module in frozen)
    parts = {}
    for name in ("train", "validation", "test"):
        data = splits.split(name)
        if name not in names:
            parts[name] = data  # never read on this path
            continue
        description = {"clips": _hash_array(data.clips), "front": weights, "start": start,
                       "backbone": config.backbone, "backbone_args": config.backbone_args, "shape": list(shape),
                       "torch": torch.__version__, "device": device.type, "precision": config.precision}
        arrays = cache.get_or_write(description, lambda folder, data=data: _write_features(
            folder, model, start, data, shape, device, amp or contextlib.nullcontext()))
        parts[name] = TaskData(arrays["features"], data.labels, {})
    if device.type == "cuda" and needed_mb * 2**20 < torch.cuda.mem_get_info(device)[0] / 4:
        parts = {name: on_device(parts[name], device) if name in names else parts[name] for name in parts}
    cached = Splits(**parts, num_classes=splits.num_classes, clip_shape=splits.clip_shape)
    return TrialInputs(splits=cached, path=CACHED, start=start,
                       channels_last=bool(getattr(model, "channels_last", False)))


def forward_from(model: nn.Module, start: str, features: torch.Tensor) -> torch.Tensor:
    """The logits of `model` (a cells VideoNet) given the output of the module at dotted path `start`: the cell
    that follows it, the rest of its stage and every later stage, then the head."""
    from attnas.cells.insert import CellAfter

    stage_name, _, rest = start.partition(".")
    x = features
    entry = model.get_submodule(start)
    if isinstance(entry, CellAfter):
        x = entry.cell(x)
    stage, cells = _unwrap(getattr(model, stage_name))
    if rest.rsplit(".", 1)[0].endswith("units"):
        index = int(rest.rsplit(".", 1)[1])
        for unit in list(stage.units)[index + 1:]:
            x = unit(x)
        if stage.pool_after is not None:
            x = stage.pool_after(x)
        for cell in cells:
            x = cell(x)
    names = list(model.stage_names)
    for later in names[names.index(stage_name) + 1:]:
        x = getattr(model, later)(x)
    return model.head(x)


def _unwrap(module: nn.Module) -> tuple[nn.Module, list[nn.Module]]:
    """A stage that cells were inserted after, and those cells, innermost first."""
    from attnas.cells.insert import CellAfter

    cells = []
    while isinstance(module, CellAfter):
        cells.append(module.cell)
        module = module.block
    return module, cells[::-1]


def _front(model: nn.Module, config: ProxyConfig, frozen: Sequence[nn.Module], clip_shape: Sequence[int]
           ) -> tuple[str, tuple[int, ...]] | None:
    """(dotted path, output shape) of the placement whose block finishes first in a forward pass, if the front up
    to it is a fixed function of the clip (every module run before it frozen or stateless, no dropout) and
    `forward_from` can enter the model after it (a VideoNet, placed after a stage or a stage's unit); else None."""
    from attnas.cells.insert import placements

    if not (hasattr(model, "stage_names") and hasattr(model, "head")):
        return None
    names = placements(model)
    called: list[nn.Module] = []
    finished: list[tuple[str, tuple[int, ...], int]] = []  # path, output shape, modules called until then
    hooks = [m.register_forward_pre_hook(lambda module, args: called.append(module)) for m in model.modules()]
    for path in {names[name] for name in config.at}:
        hooks.append(_entry_block(model, path).register_forward_hook(
            lambda module, args, output, path=path: finished.append((path, tuple(output.shape[1:]), len(called)))))
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *clip_shape, device=next(model.parameters()).device))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    if not finished:
        return None
    start, shape, count = finished[0]
    plain = [part for part in start.split(".") if part != "block"]
    if plain[0] not in model.stage_names or not (len(plain) == 1 or (len(plain) == 3 and plain[1] == "units")):
        return None
    fixed = {id(m) for m in frozen}
    for module in called[:count]:
        has_state = any(True for _ in module.parameters(recurse=False)) or any(True for _ in module.buffers(False))
        random = isinstance(module, nn.modules.dropout._DropoutNd) and module.p > 0
        if (has_state and id(module) not in fixed) or random:
            return None
    return start, shape


def _entry_block(model: nn.Module, path: str) -> nn.Module:
    """The block at placement path `path` (inside its CellAfter if a cell follows it)."""
    from attnas.cells.insert import CellAfter

    entry = model.get_submodule(path)
    return entry.block if isinstance(entry, CellAfter) else entry


class _Stop(Exception):
    pass


def on_device(data: TaskData, device: torch.device) -> TaskData:
    """`data`'s features and labels as tensors on `device`, so that batches are cut there without copies."""
    return TaskData(torch.from_numpy(np.ascontiguousarray(data.clips)).to(device),
                    torch.from_numpy(np.asarray(data.labels, dtype=np.int64)).to(device), {})


def _write_features(folder: Path, model: nn.Module, start: str, data: TaskData, shape: Sequence[int],
                    device: torch.device, amp: contextlib.AbstractContextManager) -> None:
    """Run the front on every clip of `data` (in eval mode, as trials keep it) into folder/features.npy."""
    out = np.lib.format.open_memmap(folder / "features.npy", mode="w+", dtype=np.float32,
                                    shape=(len(data.labels), *shape))
    captured: list[torch.Tensor] = []

    def capture(module, args, output):
        captured.append(output)
        raise _Stop  # the rest of the model is not needed

    hook = _entry_block(model, start).register_forward_hook(capture)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for first in range(0, len(data.labels), _FRONT_BATCH):
                rows = np.arange(first, min(first + _FRONT_BATCH, len(data.labels)))
                x, _ = batch_tensors(data, rows, device)
                captured.clear()
                try:
                    with amp:
                        model(x)
                except _Stop:
                    pass
                out[rows[0]:rows[-1] + 1] = captured[0].float().contiguous().cpu().numpy()
    finally:
        hook.remove()
        model.train(was_training)
    out.flush()
    del out


_ARRAY_HASHES: dict[int, tuple[np.ndarray, str]] = {}


def _hash_array(array: np.ndarray) -> str:
    # the splits of a process are the same (memoised) arrays in every trial: hash each once
    known = _ARRAY_HASHES.get(id(array))
    if known is not None and known[0] is array:
        return known[1]
    digest = hashlib.sha256()
    digest.update(str((array.shape, str(array.dtype))).encode())
    for first in range(0, len(array), 4096):
        digest.update(np.ascontiguousarray(array[first:first + 4096]).tobytes())
    _ARRAY_HASHES[id(array)] = (array, digest.hexdigest()[:20])
    return _ARRAY_HASHES[id(array)][1]


def _hash_tensors(states) -> str:
    digest = hashlib.sha256()
    for state in states:
        for name, tensor in state.items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes()
                          if tensor.numel() else b"")
    return digest.hexdigest()[:20]
