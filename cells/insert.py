"""Putting cells into a model: `insert(model, spec, at=[...])` wraps the named blocks so that a cell follows each.

A placement is either a name our backbones define ("conv4:1" = after the second unit of stage conv4, "conv4" =
after the whole stage; see `VideoNet.placements()`) or, for any nn.Module, the dotted path of a submodule
("layer3.1"). The cell's channels are those of the map the block emits, read off a dry run (on fake tensors, so it
costs no compute) with forward hooks; the example clip is `example_input`, or the model's `input_shape` attribute
(our backbones carry one), or else the channels are read from the block's last Conv3d / BatchNorm3d.

Each wrapped block becomes `CellAfter(block, cell)`, so its parameters move from `<path>.*` to `<path>.block.*`
and the cell's are `<path>.cell.*`.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from attnas.cells.cell import build
from attnas.cells.errors import CellBuildError
from attnas.search_space import CellSpec, load_zoo

_MAX_LISTED = 40


class CellAfter(nn.Module):
    """A block followed by a cell: forward(x) = cell(block(x))."""

    def __init__(self, block: nn.Module, cell: nn.Module):
        super().__init__()
        self.block = block
        self.cell = cell

    def forward(self, *args, **kwargs):
        return self.cell(self.block(*args, **kwargs))


def placements(model: nn.Module) -> dict[str, str]:
    """Every placement name the model accepts -> the dotted path of the module it names."""
    named = getattr(model, "placements", None)
    names = dict(named()) if callable(named) else {}
    for path, _ in model.named_modules():
        if path:
            names.setdefault(path, path)
    return names


def inserted_cells(model: nn.Module) -> dict[str, nn.Module]:
    """The cells `insert` has put into `model`, by the dotted path of the block they follow."""
    return {path: module.cell for path, module in model.named_modules() if isinstance(module, CellAfter)}


def insert(model: nn.Module, spec: CellSpec | str | None, at: Sequence[str], *,
           example_input: torch.Tensor | None = None) -> nn.Module:
    """Put a cell built from `spec` after each block named in `at`; returns `model`, changed in place.

    `spec` is a CellSpec, a zoo cell's name ("non_local"), or None / "none" for no cell (the names are still
    checked, so a "none" baseline fails the same way on a bad placement). Raises CellBuildError for an unknown
    placement, a block that does not emit a 5-D (N, C, T, H, W) map, or an example clip the backbone cannot take.
    """
    if isinstance(at, str):
        at = [at]
    if isinstance(spec, str):
        spec = None if spec == "none" else load_zoo(spec)
    paths = _resolve(model, at)
    if spec is None or not paths:
        return model
    channels = _infer_channels(model, paths, example_input)
    # Deepest blocks first, so wrapping an outer block ("conv4") keeps the path of an inner one ("conv4.units.1").
    for path in sorted(paths, key=lambda p: p.count("."), reverse=True):
        parent, attribute = _parent(model, path)
        block = getattr(parent, attribute)
        cell = build(spec, channels[path])
        reference = next(block.parameters(), None)
        if reference is not None:
            cell = cell.to(device=reference.device, dtype=reference.dtype)
        if _is_channels_last(block):
            cell = cell.to(memory_format=torch.channels_last_3d)
        cell.train(block.training)
        setattr(parent, attribute, CellAfter(block, cell))
    return model


def _is_channels_last(block: nn.Module) -> bool:
    # A block whose 5-D weights are channels_last_3d (and not also plain contiguous, as 1x1x1 kernels are) runs in it.
    for parameter in block.parameters():
        if parameter.dim() == 5 and not parameter.is_contiguous():
            return parameter.is_contiguous(memory_format=torch.channels_last_3d)
    return False


def _resolve(model: nn.Module, at: Sequence[str]) -> list[str]:
    names = placements(model)
    paths: list[str] = []
    for name in at:
        if name not in names:
            valid = list(getattr(model, "placements", lambda: names)()) or list(names)
            listed = ", ".join(valid[:_MAX_LISTED]) + (f", ... ({len(valid) - _MAX_LISTED} more)"
                                                       if len(valid) > _MAX_LISTED else "")
            raise CellBuildError(f"insert: unknown placement {name!r} for {type(model).__name__}; valid placements: "
                                 f"{listed or '(the model has no submodules)'}")
        if names[name] in paths:
            raise CellBuildError(f"insert: placement {name!r} names block {names[name]!r} twice in at={list(at)}")
        paths.append(names[name])
    return paths


def _parent(model: nn.Module, path: str) -> tuple[nn.Module, str]:
    parent_path, _, attribute = path.rpartition(".")
    return (model.get_submodule(parent_path) if parent_path else model), attribute


def _example(model: nn.Module, example_input: torch.Tensor | None) -> torch.Tensor | None:
    if example_input is not None:
        return example_input
    shape = getattr(model, "input_shape", None)
    if shape is None:
        return None
    reference = next(model.parameters(), None)
    if reference is None:
        return torch.zeros(1, *shape)
    return torch.zeros(1, *shape, dtype=reference.dtype, device=reference.device)


def _infer_channels(model: nn.Module, paths: list[str], example_input: torch.Tensor | None) -> dict[str, int]:
    example = _example(model, example_input)
    if example is None:
        return {path: _channels_from_layers(model, path) for path in paths}
    shapes = _dry_run(model, paths, example)
    channels = {}
    for path in paths:
        shape = shapes.get(path)
        if shape is None:
            raise CellBuildError(f"insert: block {path!r} did not run on an example clip of shape "
                                 f"{tuple(example.shape)}, so no cell can follow it")
        if len(shape) != 5:
            raise CellBuildError(f"insert: block {path!r} emits a tensor of shape {shape}; a cell needs a 5-D "
                                 "(N, C, T, H, W) map")
        channels[path] = shape[1]
    return channels


def _dry_run(model: nn.Module, paths: list[str], example: torch.Tensor) -> dict[str, tuple]:
    """The output shape of each block at `paths` on `example` (a tuple, or a description if it is not a tensor)."""
    shapes: dict[str, tuple] = {}

    def recorder(path: str):
        def hook(module, args, output):
            shapes.setdefault(path, tuple(output.shape) if isinstance(output, torch.Tensor) else
                              (f"<{type(output).__name__}>",))
        return hook

    handles = [model.get_submodule(path).register_forward_hook(recorder(path)) for path in paths]
    was_training = model.training
    model.eval()  # no BatchNorm statistics may move during a dry run
    try:
        try:
            from torch._subclasses.fake_tensor import FakeTensorMode

            with torch.no_grad(), FakeTensorMode(allow_non_fake_inputs=True):
                model(torch.empty(example.shape, dtype=example.dtype, device=example.device))
        except CellBuildError:
            raise
        except Exception:  # an op fake tensors cannot trace: run the real thing once
            shapes.clear()
            try:
                with torch.no_grad():
                    model(example)
            except CellBuildError:
                raise
            except Exception as error:
                message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise CellBuildError(f"insert: {type(model).__name__} failed on an example clip of shape "
                                     f"{tuple(example.shape)} ({message}); pass example_input= a clip it accepts") \
                    from None
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return shapes


def _channels_from_layers(model: nn.Module, path: str) -> int:
    last = None
    for module in model.get_submodule(path).modules():
        if isinstance(module, (nn.Conv3d, nn.BatchNorm3d)):
            last = module
    if last is None:
        raise CellBuildError(f"insert: block {path!r} has no Conv3d or BatchNorm3d to read its channels from; pass "
                             "example_input=<a clip batch> so the channels can be measured")
    return last.out_channels if isinstance(last, nn.Conv3d) else last.num_features
