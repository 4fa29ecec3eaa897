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
kxkxk convolution and its shortcut carry the stride (see benchmarks/RESULTS.md "paper_complexity" for how this layout
reproduces the published #Params and FLOPs, and for the one figure it does not: ResNet-50's 31.3 G).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import nn

from attnas.cells.backbones.net import ClassifierHead, Stage, VideoNet, create_conv_norm_act, triple
from attnas.cells.errors import CellBuildError


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
    stride = triple(stride)
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
    stride = triple(stride)
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
    unit type, and the input clip it is designed for (C, T, H, W).

    `downsample`: "conv" strides each stage's first unit (its kxkxk conv and shortcut, as ResNets do); "pool" puts a
    max pool (kernel 3 along each strided dimension) before the stage and keeps every conv at stride 1, as I3D does
    (cheaper on CPU: strided convolutions have slow backward passes in oneDNN). `channels_last` stores weights and
    runs the network in torch.channels_last_3d layout (about twice as fast on CPU).
    """

    name: str
    stem_width: int
    stem_kernel: tuple[int, int, int]
    stem_stride: tuple[int, int, int]
    stages: tuple[StageLayout, ...]
    input_shape: tuple[int, int, int, int]
    stem_pool_stride: tuple[int, int, int] | None = None
    unit: str = "bottleneck"
    downsample: str = "conv"
    channels_last: bool = False

    def min_size(self) -> tuple[int, int, int]:
        """The total stride along T, H, W: the smallest clip that leaves every stage at least one position."""
        total = list(self.stem_stride)
        for stride in ([self.stem_pool_stride] if self.stem_pool_stride else []) + [s.stride for s in self.stages]:
            total = [a * b for a, b in zip(total, stride)]
        return (1, total[1], total[2])


def create_resnet3d(layout: ResNet3DLayout, *, num_classes: int = 400, dropout: float = 0.0) -> VideoNet:
    """A VideoNet with stages conv1 (stem) and conv2.. (residual stages) laid out as `layout` says."""
    if layout.downsample not in ("conv", "pool"):
        raise CellBuildError(f"{layout.name}: downsample must be 'conv' or 'pool', got {layout.downsample!r}")
    if layout.unit not in UNITS:
        raise CellBuildError(f"{layout.name}: unknown unit {layout.unit!r}; expected one of {sorted(UNITS)}")
    if num_classes < 1:
        raise CellBuildError(f"{layout.name}: num_classes must be >= 1, got {num_classes}")
    make_unit = UNITS[layout.unit]
    in_channels = layout.input_shape[0]
    stem = create_conv_norm_act(in_channels, layout.stem_width, kernel=layout.stem_kernel, stride=layout.stem_stride)
    pool = _max_pool(layout.stem_pool_stride) if layout.stem_pool_stride is not None else None
    stages: dict[str, nn.Module] = {"conv1": Stage([stem], pool_after=pool)}
    channels = layout.stem_width
    for index, stage in enumerate(layout.stages):
        by_pool = layout.downsample == "pool" and stage.stride != (1, 1, 1)
        units = []
        for position, temporal_kernel in enumerate(stage.temporal_kernels):
            stride = stage.stride if position == 0 and not by_pool else 1
            units.append(make_unit(channels, stage.inner, stage.out, temporal_kernel=temporal_kernel, stride=stride))
            channels = stage.out
        stages[f"conv{index + 2}"] = Stage(units, pool_before=_max_pool(stage.stride) if by_pool else None)
    net = VideoNet(stages=stages, head=ClassifierHead(channels, num_classes, dropout=dropout),
                   input_shape=layout.input_shape, min_size=layout.min_size(), name=layout.name,
                   channels_last=layout.channels_last)
    _init_weights(net)
    if layout.channels_last:
        net = net.to(memory_format=torch.channels_last_3d)
    return net


def _max_pool(stride: Sequence[int]) -> nn.MaxPool3d:
    # Kernel 3 along every strided dimension, 1 elsewhere, 'same' padding: halves a size without losing its edge.
    return nn.MaxPool3d(kernel_size=tuple(3 if s > 1 else 1 for s in stride), stride=tuple(stride),
                        padding=tuple(1 if s > 1 else 0 for s in stride))


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


def narrowed(layout: ResNet3DLayout, width_multiplier: float,
             input_shape: Sequence[int] | None = None) -> ResNet3DLayout:
    """`layout` with every width (stem, inner, out) scaled by `width_multiplier` (at least 1 channel each) and,
    if given, designed for `input_shape` clips: the paper's networks cut down to what a CPU can train."""
    if not width_multiplier > 0:
        raise CellBuildError(f"{layout.name}: width_multiplier must be > 0, got {width_multiplier}")

    def scale(width: int) -> int:
        return max(1, round(width * width_multiplier))

    return replace(layout, stem_width=scale(layout.stem_width),
                   input_shape=tuple(int(s) for s in input_shape) if input_shape is not None else layout.input_shape,
                   stages=tuple(replace(stage, inner=scale(stage.inner), out=scale(stage.out))
                                for stage in layout.stages))


def _paper_resnet(layout: ResNet3DLayout, num_classes: int, dropout: float, channels_last: bool,
                  width_multiplier: float, input_shape: Sequence[int] | None) -> VideoNet:
    layout = narrowed(replace(layout, channels_last=channels_last), width_multiplier, input_shape)
    return create_resnet3d(layout, num_classes=num_classes, dropout=dropout)


def create_resnet26(*, num_classes: int = 400, dropout: float = 0.0, channels_last: bool = False,
                    width_multiplier: float = 1.0, input_shape: Sequence[int] | None = None) -> VideoNet:
    """The A^2-Nets paper's 3-D ResNet-26 (Table 1; 16x112x112 clips), the backbone of its ablations.
    `width_multiplier` < 1 narrows every stage (see `narrowed`)."""
    return _paper_resnet(RESNET26, num_classes, dropout, channels_last, width_multiplier, input_shape)


def create_resnet29(*, num_classes: int = 400, dropout: float = 0.0, channels_last: bool = False,
                    width_multiplier: float = 1.0, input_shape: Sequence[int] | None = None) -> VideoNet:
    """The A^2-Nets paper's 3-D ResNet-29 (Table 1; ResNet-26 with a third conv4 unit)."""
    return _paper_resnet(RESNET29, num_classes, dropout, channels_last, width_multiplier, input_shape)


def create_resnet50(*, num_classes: int = 400, dropout: float = 0.0, channels_last: bool = False,
                    width_multiplier: float = 1.0, input_shape: Sequence[int] | None = None) -> VideoNet:
    """The A^2-Nets paper's 3-D ResNet-50 (Table 1; 8x224x224 clips, temporal kernels k per unit)."""
    return _paper_resnet(RESNET50, num_classes, dropout, channels_last, width_multiplier, input_shape)


def create_proxy_i3d(*, num_classes: int = 400, input_shape: Sequence[int] = (3, 16, 32, 32), stem_width: int = 16,
                     widths: Sequence[int] = (16, 32, 64), depths: Sequence[int] | int = 1,
                     strides: Sequence[Sequence[int] | int] = ((1, 2, 2), (2, 2, 2), (2, 2, 2)),
                     stem_kernel: Sequence[int] | int = (3, 3, 3), stem_stride: Sequence[int] | int = (1, 2, 2),
                     unit: str = "basic", bottleneck_ratio: int = 4, downsample: str = "pool",
                     channels_last: bool = True, dropout: float = 0.0) -> VideoNet:
    """A small 3-D ResNet for proxy training on CPU: stem conv1, then one stage conv2, conv3, ... per width.

    Defaults (3x16x32x32 clips; stem 3x3x3, 16, stride (1,2,2); one basic unit [3x3x3; 3x3x3] per stage of widths
    16/32/64, each stage entered through a max pool of the given stride, I3D-style) give stage maps 16x16x16x16
    (conv1), 16x16x8x8 (conv2), 32x8x4x4 (conv3), 64x4x2x2 (conv4): 27.5 M multiply-adds per clip. For 64x64 clips
    pass input_shape=(3, 16, 64, 64) (maps twice as large per side). `unit="bottleneck"` uses 1x1x1-kx3x3-1x1x1
    units with inner width = width // bottleneck_ratio; `downsample="conv"` strides the units instead of pooling.
    Weights and activations are channels_last_3d by default (about 2x faster training on CPU).
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
        name="proxy_i3d", stem_width=int(stem_width), stem_kernel=triple(stem_kernel), stem_stride=triple(stem_stride),
        input_shape=tuple(int(s) for s in input_shape), unit=unit, downsample=downsample, channels_last=channels_last,
        stages=tuple(StageLayout(max(1, width // ratio), width, (3,) * depth, triple(stride))
                     for width, depth, stride in zip(widths, depths, strides)))
    return create_resnet3d(layout, num_classes=num_classes, dropout=dropout)
