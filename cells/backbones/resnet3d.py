"""3-D ResNets: the A^2-Nets paper's ResNet-26, ResNet-29 and ResNet-50 (its Table 1) and the small proxy I3D.

Modules wire the submodules they are handed (`ResUnit`, `Stage`, `VideoNet`); the create_* functions supply the
layouts. Table 1 of Chen et al. 2018 (A^2-Nets):

| stage | ResNet-26 / -29 (16x112x112)          | ResNet-50 (8x224x224)                          |
| conv1 | 3x5x5, 16, stride (1,2,2)             | 3x5x5, 32, stride (1,2,2); max pool (1,2,2)    |
| conv2 | [1x1x1,32; 3x3x3,32; 1x1x1,128] x2    | [1x1x1,64; 3x3x3,64; 1x1x1,256] x3             |
| conv3 | [1x1x1,64; 3x3x3,64; 1x1x1,256] x2    | [1x1x1,128; kx3x3,128; 1x1x1,512] x4           |
| conv4 | [.., 128; .., 128; .., 512] x2 (x3)   | [.., 256; kx3x3, 256; .., 1024] x6             |
| conv5 | [.., 256; .., 256; .., 1024] x2       | [.., 512; kx3x3, 512; .., 2048] x3             |
| out   | 16x56², 8x56², 8x28², 8x14², 8x7²     | 8x56², 8x56², 4x28², 4x14², 4x7²               |

The table does not say which layer halves time in conv2 (ResNet-26/29) and conv3 (ResNet-50); here the first unit's
kxkxk convolution and its shortcut carry the stride, as in the authors' MFNet code (see RESULTS.md "paper_complexity"
for how that choice and the others reproduce the published #Params and FLOPs).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from cells.backbones.net import ClassifierHead, Stage, VideoNet, _triple, create_conv_norm_act
from cells.errors import CellBuildError


class ResUnit(nn.Module):
    """A residual unit: relu(branch(x) + shortcut(x)), the shortcut being the identity when none is handed in."""

    def __init__(self, branch: nn.Module, shortcut: nn.Module | None = None):
        super().__init__()
        self.branch = branch
        self.shortcut = shortcut if shortcut is not None else nn.Identity()
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.branch(x) + self.shortcut(x))


def create_bottleneck_unit(in_channels: int, inner_channels: int, out_channels: int, *, temporal_kernel: int = 3,
                           stride: Sequence[int] | int = 1) -> ResUnit:
    """[1x1x1, inner; k x 3 x 3, inner (strided); 1x1x1, out] with BatchNorm, and a projection shortcut if needed."""
    stride = _triple(stride)
    branch = nn.Sequential()
    branch.add_module("a", create_conv_norm_act(in_channels, inner_channels, kernel=1))
    branch.add_module("b", create_conv_norm_act(inner_channels, inner_channels, kernel=(temporal_kernel, 3, 3),
                                                stride=stride))
    branch.add_module("c", create_conv_norm_act(inner_channels, out_channels, kernel=1, act=False))
    shortcut = None
    if in_channels != out_channels or stride != (1, 1, 1):
        shortcut = create_conv_norm_act(in_channels, out_channels, kernel=1, stride=stride, act=False)
    return ResUnit(branch, shortcut)


def create_basic_unit(in_channels: int, inner_channels: int, out_channels: int, *, temporal_kernel: int = 3,
                      stride: Sequence[int] | int = 1) -> ResUnit:
    """[k x 3 x 3, inner (strided); k x 3 x 3, out] with BatchNorm, and a projection shortcut if needed."""
    stride = _triple(stride)
    kernel = (temporal_kernel, 3, 3)
    branch = nn.Sequential()
    branch.add_module("a", create_conv_norm_act(in_channels, inner_channels, kernel=kernel, stride=stride))
    branch.add_module("b", create_conv_norm_act(inner_channels, out_channels, kernel=kernel, act=False))
    shortcut = None
    if in_channels != out_channels or stride != (1, 1, 1):
        shortcut = create_conv_norm_act(in_channels, out_channels, kernel=1, stride=stride, act=False)
    return ResUnit(branch, shortcut)


UNITS = {"bottleneck": create_bottleneck_unit, "basic": create_basic_unit}


@dataclass(frozen=True)
class StageLayout:
    """One residual stage: inner and output widths, the temporal kernel of each unit, the first unit's stride."""

    inner: int
    out: int
    temporal_kernels: tuple[int, ...]
    stride: tuple[int, int, int] = (1, 1, 1)

    @property
    def depth(self) -> int:
        return len(self.temporal_kernels)


@dataclass(frozen=True)
class ResNet3DLayout:
    """A whole 3-D ResNet: stem conv (kernel, width, stride), optional stem max pool stride, the stages conv2.., the
    unit type, and the input clip it is designed for (C, T, H, W)."""

    name: str
    stem_width: int
    stem_kernel: tuple[int, int, int]
    stem_stride: tuple[int, int, int]
    stages: tuple[StageLayout, ...]
    input_shape: tuple[int, int, int, int]
    stem_pool_stride: tuple[int, int, int] | None = None
    unit: str = "bottleneck"
    extra: dict = field(default_factory=dict)

    def min_size(self) -> tuple[int, int, int]:
        """The total stride along T, H, W: the smallest clip that leaves every stage at least one position."""
        total = list(self.stem_stride)
        for stride in ([self.stem_pool_stride] if self.stem_pool_stride else []) + [s.stride for s in self.stages]:
            total = [a * b for a, b in zip(total, stride)]
        return (1, total[1], total[2])


def create_resnet3d(layout: ResNet3DLayout, *, num_classes: int = 400, dropout: float = 0.0) -> VideoNet:
    """A VideoNet with stages conv1 (stem) and conv2.. (residual stages) laid out as `layout` says."""
    if layout.unit not in UNITS:
        raise CellBuildError(f"{layout.name}: unknown unit {layout.unit!r}; expected one of {sorted(UNITS)}")
    if num_classes < 1:
        raise CellBuildError(f"{layout.name}: num_classes must be >= 1, got {num_classes}")
    make_unit = UNITS[layout.unit]
    in_channels = layout.input_shape[0]
    stem = create_conv_norm_act(in_channels, layout.stem_width, kernel=layout.stem_kernel, stride=layout.stem_stride)
    pool = None
    if layout.stem_pool_stride is not None:
        pool = nn.MaxPool3d(kernel_size=tuple(3 if s > 1 else 1 for s in layout.stem_pool_stride),
                            stride=layout.stem_pool_stride, padding=tuple(1 if s > 1 else 0 for s in layout.stem_pool_stride))
    stages: dict[str, nn.Module] = {"conv1": Stage([stem], pool_after=pool)}
    channels = layout.stem_width
    for index, stage in enumerate(layout.stages):
        units = []
        for position, temporal_kernel in enumerate(stage.temporal_kernels):
            units.append(make_unit(channels, stage.inner, stage.out, temporal_kernel=temporal_kernel,
                                   stride=stage.stride if position == 0 else 1))
            channels = stage.out
        stages[f"conv{index + 2}"] = Stage(units)
    net = VideoNet(stages=stages, head=ClassifierHead(channels, num_classes, dropout=dropout),
                   input_shape=layout.input_shape, min_size=layout.min_size(), name=layout.name)
    _init_weights(net)
    return net


def _init_weights(net: nn.Module) -> None:
    # He initialisation for convolutions (fan_out, as torchvision's ResNets); unit BatchNorm; small classifier.
    for module in net.modules():
        if isinstance(module, nn.Conv3d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm3d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.01)
            nn.init.zeros_(module.bias)


def _a2_small_layout(name: str, conv4_depth: int) -> ResNet3DLayout:
    widths = [(32, 128), (64, 256), (128, 512), (256, 1024)]
    depths = [2, 2, conv4_depth, 2]
    strides = [(2, 1, 1), (1, 2, 2), (1, 2, 2), (1, 2, 2)]
    return ResNet3DLayout(
        name=name, stem_width=16, stem_kernel=(3, 5, 5), stem_stride=(1, 2, 2), input_shape=(3, 16, 112, 112),
        stages=tuple(StageLayout(inner, out, (3,) * depth, stride)
                     for (inner, out), depth, stride in zip(widths, depths, strides)))


RESNET26 = _a2_small_layout("resnet26", 2)
RESNET29 = _a2_small_layout("resnet29", 3)
# Table 1's caption gives k = [3,1,3], [3,1,3,1,3,1], [1,3,1] for "the last three stages" while conv3 has 4 units;
# conv3 here continues the alternation as [3,1,3,1] (Wang et al.'s "every other unit"), which is what reproduces the
# published 33.4 M parameters (with [3,1,3,3] it would be 33.7 M).
RESNET50 = ResNet3DLayout(
    name="resnet50", stem_width=32, stem_kernel=(3, 5, 5), stem_stride=(1, 2, 2), stem_pool_stride=(1, 2, 2),
    input_shape=(3, 8, 224, 224),
    stages=(StageLayout(64, 256, (3, 3, 3), (1, 1, 1)),
            StageLayout(128, 512, (3, 1, 3, 1), (2, 2, 2)),
            StageLayout(256, 1024, (3, 1, 3, 1, 3, 1), (1, 2, 2)),
            StageLayout(512, 2048, (1, 3, 1), (1, 2, 2))))


def create_resnet26(*, num_classes: int = 400, dropout: float = 0.0) -> VideoNet:
    """The A^2-Nets paper's 3-D ResNet-26 (Table 1; 16x112x112 clips), the backbone of its ablations."""
    return create_resnet3d(RESNET26, num_classes=num_classes, dropout=dropout)


def create_resnet29(*, num_classes: int = 400, dropout: float = 0.0) -> VideoNet:
    """The A^2-Nets paper's 3-D ResNet-29 (Table 1; ResNet-26 with a third conv4 unit)."""
    return create_resnet3d(RESNET29, num_classes=num_classes, dropout=dropout)


def create_resnet50(*, num_classes: int = 400, dropout: float = 0.0) -> VideoNet:
    """The A^2-Nets paper's 3-D ResNet-50 (Table 1; 8x224x224 clips, temporal kernels k per unit)."""
    return create_resnet3d(RESNET50, num_classes=num_classes, dropout=dropout)


def create_proxy_i3d(*, num_classes: int = 400, input_shape: Sequence[int] = (3, 16, 32, 32), stem_width: int = 16,
                     widths: Sequence[int] = (32, 64, 128), depths: Sequence[int] | int = 1,
                     strides: Sequence[Sequence[int] | int] = ((1, 1, 1), (2, 2, 2), (2, 2, 2)),
                     stem_kernel: Sequence[int] | int = (3, 3, 3), stem_stride: Sequence[int] | int = (1, 2, 2),
                     unit: str = "basic", bottleneck_ratio: int = 4, dropout: float = 0.0) -> VideoNet:
    """A small 3-D ResNet for proxy training on CPU: stem conv1, then one stage conv2, conv3, ... per width.

    Defaults (3x16x32x32 clips, widths 32/64/128, one basic unit per stage) give stage maps 16x16x16x16 (conv1),
    32x16x16x16 (conv2), 64x8x8x8 (conv3), 128x4x4x4 (conv4). `unit="bottleneck"` uses 1x1x1-kx3x3-1x1x1 units with
    inner width = width // bottleneck_ratio. Placements are named as on the big backbones ("conv3:0").
    """
    widths = tuple(int(w) for w in widths)
    if not widths:
        raise CellBuildError("proxy_i3d: widths must name at least one stage")
    depths = (int(depths),) * len(widths) if isinstance(depths, int) else tuple(int(d) for d in depths)
    if len(depths) != len(widths) or len(strides) != len(widths):
        raise CellBuildError(f"proxy_i3d: widths {widths}, depths {depths} and strides {tuple(strides)} must have "
                             "one entry per stage")
    if unit not in UNITS:
        raise CellBuildError(f"proxy_i3d: unknown unit {unit!r}; expected one of {sorted(UNITS)}")
    ratio = bottleneck_ratio if unit == "bottleneck" else 1
    layout = ResNet3DLayout(
        name="proxy_i3d", stem_width=int(stem_width), stem_kernel=_triple(stem_kernel), stem_stride=_triple(stem_stride),
        input_shape=tuple(int(s) for s in input_shape), unit=unit,
        stages=tuple(StageLayout(max(1, width // ratio), width, (3,) * depth, _triple(stride))
                     for width, depth, stride in zip(widths, depths, strides)))
    return create_resnet3d(layout, num_classes=num_classes, dropout=dropout)
