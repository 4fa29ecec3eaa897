"""The container every attnas backbone shares: named stages conv1..conv5 of indexable units, a classifier head,
the input shape it was designed for and a one-line check of what it is fed.

Placement names: "conv4" is the output of stage conv4, "conv4:1" the output of its second unit (the A^2 paper places
its blocks "after the second residual unit of a certain stage"). `VideoNet.placements()` maps each name to the
dotted module path that `cells.insert` wraps.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from attnas.cells.errors import CellBuildError


class ConvNormAct(nn.Sequential):
    """Conv3d (no bias) -> BatchNorm3d -> optional ReLU: the unit every backbone is made of."""

    def __init__(self, conv: nn.Conv3d, norm: nn.Module, act: nn.Module | None = None):
        super().__init__()
        self.conv = conv
        self.norm = norm
        if act is not None:
            self.act = act


def create_conv_norm_act(in_channels: int, out_channels: int, *, kernel: Sequence[int] | int = 1,
                         stride: Sequence[int] | int = 1, act: bool = True) -> ConvNormAct:
    """A ConvNormAct with 'same' padding (k // 2 on each dimension), BatchNorm3d and ReLU by default."""
    kernel = triple(kernel)
    conv = nn.Conv3d(in_channels, out_channels, kernel, stride=triple(stride), padding=tuple(k // 2 for k in kernel),
                     bias=False)
    return ConvNormAct(conv, nn.BatchNorm3d(out_channels), nn.ReLU(inplace=True) if act else None)


class Stage(nn.Module):
    """A stage: optional pooling before, its units in order, optional pooling after. `units[i]` is "stage:i"."""

    def __init__(self, units: Sequence[nn.Module], *, pool_before: nn.Module | None = None,
                 pool_after: nn.Module | None = None):
        super().__init__()
        self.pool_before = pool_before
        self.units = nn.ModuleList(units)
        self.pool_after = pool_after

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool_before is not None:
            x = self.pool_before(x)
        for unit in self.units:
            x = unit(x)
        if self.pool_after is not None:
            x = self.pool_after(x)
        return x


class ClassifierHead(nn.Module):
    """Global average pool over T, H, W -> dropout -> linear classifier (logits; the softmax lives in the loss)."""

    def __init__(self, in_channels: int, num_classes: int, *, dropout: float = 0.0):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.pool(x).flatten(1)))


class VideoNet(nn.Module):
    """A video classifier made of named stages (conv1..conv5) and a head, wired from the modules it is handed.

    `input_shape` is the (C, T, H, W) clip the network was designed for; `min_size` the smallest (T, H, W) it accepts
    (its total stride, so every stage sees at least one position per stride): smaller clips raise a one-line
    CellBuildError instead of a shape error from inside torch. With `channels_last` the clip is moved to
    torch.channels_last_3d on the way in (the caller should hold the weights in that layout too).
    """

    def __init__(self, *, stages: Mapping[str, nn.Module], head: nn.Module, input_shape: Sequence[int],
                 min_size: Sequence[int], name: str = "videonet", channels_last: bool = False):
        super().__init__()
        if len(input_shape) != 4 or len(min_size) != 3:
            raise CellBuildError(f"{name}: input_shape must be (C, T, H, W) and min_size (T, H, W), got "
                                 f"{tuple(input_shape)} and {tuple(min_size)}")
        self.stage_names = tuple(stages)
        for stage_name, stage in stages.items():
            self.add_module(stage_name, stage)
        self.head = head
        self.input_shape = tuple(int(s) for s in input_shape)
        self.min_size = tuple(int(s) for s in min_size)
        self.name = name
        self.channels_last = channels_last

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a one-line CellBuildError unless x is (N, C, T, H, W) with this net's C and at least min_size."""
        if x.dim() != 5:
            raise CellBuildError(f"{self.name}: expected a clip batch (N, C, T, H, W), got shape {tuple(x.shape)}")
        if x.shape[1] != self.input_shape[0]:
            raise CellBuildError(f"{self.name}: expected {self.input_shape[0]} input channels, got shape "
                                 f"{tuple(x.shape)}")
        if any(size < least for size, least in zip(x.shape[2:], self.min_size)):
            raise CellBuildError(f"{self.name}: clip size (T, H, W) = {tuple(x.shape[2:])} is too small; this "
                                 f"backbone needs at least {self.min_size} (designed for {self.input_shape[1:]})")

    def stages(self) -> list[tuple[str, nn.Module]]:
        """(name, stage) in forward order."""
        return [(name, getattr(self, name)) for name in self.stage_names]

    def placements(self) -> dict[str, str]:
        """Every placement name ("conv3", "conv3:0", ...) -> the dotted path of the module whose output it names."""
        names = {}
        for stage_name, stage in self.stages():
            names[stage_name] = path = stage_name
            while hasattr(stage, "block") and hasattr(stage, "cell"):  # a stage cells.insert has wrapped
                stage, path = stage.block, path + ".block"
            for index in range(len(getattr(stage, "units", ()))):
                names[f"{stage_name}:{index}"] = f"{path}.units.{index}"
        return names

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return x.contiguous(memory_format=torch.channels_last_3d) if self.channels_last else x

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The output map of every stage, by stage name (for inspection and tests)."""
        x = self._prepare(x)
        features = {}
        for stage_name, stage in self.stages():
            x = stage(x)
            features[stage_name] = x
        return features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._prepare(x)
        for _, stage in self.stages():
            x = stage(x)
        return self.head(x)


def triple(value: Sequence[int] | int) -> tuple[int, int, int]:
    """An int or three ints as a (T, H, W) triple."""
    if isinstance(value, int):
        return (value, value, value)
    value = tuple(int(v) for v in value)
    if len(value) != 3:
        raise CellBuildError(f"expected an int or 3 ints (T, H, W), got {value}")
    return value
