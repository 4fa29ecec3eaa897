"""I3D (Carreira & Zisserman 2017, inflated Inception-v1) and S3D / S3D-G (Xie et al. 2018, separable convolutions,
optional feature gating), laid out as stages conv1..conv5 so that placements read as on the ResNets.

| stage | I3D layers (64x224x224 clip)                                   | units ("conv3:0" = Mixed_3b) |
| conv1 | Conv3d_1a 7x7x7, 64, stride 2                                  | [Conv3d_1a]                  |
| conv2 | MaxPool_2a 1x3x3 /(1,2,2); Conv3d_2b 1x1x1, 64; Conv3d_2c 3x3x3, 192 | [2b, 2c]               |
| conv3 | MaxPool_3a 1x3x3 /(1,2,2); Mixed_3b, Mixed_3c                  | [3b, 3c]                     |
| conv4 | MaxPool_4a 3x3x3 /2; Mixed_4b..Mixed_4f                        | [4b, 4c, 4d, 4e, 4f]         |
| conv5 | MaxPool_5a 2x2x2 /2; Mixed_5b, Mixed_5c                        | [5b, 5c]                     |

S3D replaces every kxkxk convolution (in the stem and in the Inception branches) by 1xkxk then kx1x1, each with
BatchNorm and ReLU; S3D-G also gates the output of each Inception branch by sigmoid(W avgpool(out) + b) per channel
(Xie et al.'s self-gating, applied per branch as in their reference implementation).
The head is global average pooling, dropout and a linear classifier (the same logits as I3D's average pool followed
by a 1x1x1 convolution, for any clip size).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from attnas.cells.backbones.net import ClassifierHead, Stage, VideoNet, create_conv_norm_act
from attnas.cells.errors import CellBuildError

# Output widths of the four branches of each Inception block: (1x1), (1x1 -> 3x3x3), (1x1 -> 3x3x3), (pool -> 1x1),
# given as (b0, b1_reduce, b1, b2_reduce, b2, b3), from Inception-v1 (Szegedy et al. 2015) as inflated by I3D.
INCEPTION_V1 = {
    "conv3": ((64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64)),
    "conv4": ((192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64), (128, 128, 256, 24, 64, 64),
              (112, 144, 288, 32, 64, 64), (256, 160, 320, 32, 128, 128)),
    "conv5": ((256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128)),
}


def create_spatiotemporal_conv(in_channels: int, out_channels: int, *, kernel: int, stride: Sequence[int] | int = 1,
                               separable: bool = False) -> nn.Module:
    """A kxkxk conv-BN-ReLU, or for S3D the separable 1xkxk then kx1x1 pair (each with BN and ReLU)."""
    if not separable:
        return create_conv_norm_act(in_channels, out_channels, kernel=kernel, stride=stride)
    stride = (stride,) * 3 if isinstance(stride, int) else tuple(stride)
    return nn.Sequential(
        create_conv_norm_act(in_channels, out_channels, kernel=(1, kernel, kernel), stride=(1, *stride[1:])),
        create_conv_norm_act(out_channels, out_channels, kernel=(kernel, 1, 1), stride=(stride[0], 1, 1)))


class FeatureGate(nn.Module):
    """S3D-G self-gating: x * sigmoid(fc(mean of x over T, H, W)), one weight per channel."""

    def __init__(self, channels: int):
        super().__init__()
        self.fc = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.sigmoid(self.fc(x.mean(dim=(2, 3, 4))))
        return x * weights[:, :, None, None, None]


class InceptionBlock(nn.Module):
    """Parallel branches whose outputs are concatenated along channels."""

    def __init__(self, branches: Sequence[nn.Module]):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


def create_inception_block(in_channels: int, widths: Sequence[int], *, separable: bool = False,
                           gating: bool = False) -> InceptionBlock:
    """An inflated Inception-v1 block with branch widths (b0, b1_reduce, b1, b2_reduce, b2, b3)."""
    b0, b1_reduce, b1, b2_reduce, b2, b3 = widths
    branches = [
        [create_conv_norm_act(in_channels, b0, kernel=1)],
        [create_conv_norm_act(in_channels, b1_reduce, kernel=1),
         create_spatiotemporal_conv(b1_reduce, b1, kernel=3, separable=separable)],
        [create_conv_norm_act(in_channels, b2_reduce, kernel=1),
         create_spatiotemporal_conv(b2_reduce, b2, kernel=3, separable=separable)],
        [nn.MaxPool3d(kernel_size=3, stride=1, padding=1), create_conv_norm_act(in_channels, b3, kernel=1)],
    ]
    if gating:
        for layers, width in zip(branches, (b0, b1, b2, b3)):
            layers.append(FeatureGate(width))
    return InceptionBlock([nn.Sequential(*layers) for layers in branches])


def create_inception3d(*, name: str, separable: bool, gating: bool, num_classes: int = 400, dropout: float = 0.5,
                       input_shape: Sequence[int] = (3, 64, 224, 224)) -> VideoNet:
    """I3D (separable=False), S3D (separable=True) or S3D-G (also gating=True) as a VideoNet."""
    if num_classes < 1:
        raise CellBuildError(f"{name}: num_classes must be >= 1, got {num_classes}")
    in_channels = input_shape[0]
    stem = create_spatiotemporal_conv(in_channels, 64, kernel=7, stride=2, separable=separable)
    spatial_pool = nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
    stages: dict[str, nn.Module] = {
        "conv1": Stage([stem]),
        "conv2": Stage([create_conv_norm_act(64, 64, kernel=1),
                        create_spatiotemporal_conv(64, 192, kernel=3, separable=separable)], pool_before=spatial_pool),
    }
    pools = {"conv3": nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
             "conv4": nn.MaxPool3d(kernel_size=3, stride=2, padding=1),
             # ceil_mode keeps a 1-frame or 1-pixel map alive (TF 'SAME' pooling, as the original I3D).
             "conv5": nn.MaxPool3d(kernel_size=2, stride=2, ceil_mode=True)}
    channels = 192
    for stage_name, blocks in INCEPTION_V1.items():
        units = []
        for widths in blocks:
            units.append(create_inception_block(channels, widths, separable=separable, gating=gating))
            channels = widths[0] + widths[2] + widths[4] + widths[5]
        stages[stage_name] = Stage(units, pool_before=pools[stage_name])
    net = VideoNet(stages=stages, head=ClassifierHead(channels, num_classes, dropout=dropout), input_shape=input_shape,
                   min_size=(1, 32, 32), name=name)
    for module in net.modules():
        if isinstance(module, nn.Conv3d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.01)
            nn.init.zeros_(module.bias)
    return net


def create_i3d(*, num_classes: int = 400, dropout: float = 0.5,
               input_shape: Sequence[int] = (3, 64, 224, 224)) -> VideoNet:
    """I3D: Inception-v1 with every kxk kernel inflated to kxkxk (Carreira & Zisserman 2017), 64x224x224 clips."""
    return create_inception3d(name="i3d", separable=False, gating=False, num_classes=num_classes, dropout=dropout,
                              input_shape=input_shape)


def create_s3d(*, num_classes: int = 400, dropout: float = 0.5, gating: bool = False,
               input_shape: Sequence[int] = (3, 64, 224, 224)) -> VideoNet:
    """S3D (Xie et al. 2018): I3D with separable 1xkxk + kx1x1 convolutions; gating=True gives S3D-G."""
    return create_inception3d(name="s3d_g" if gating else "s3d", separable=True, gating=gating,
                              num_classes=num_classes, dropout=dropout, input_shape=input_shape)
