"""Video backbones with named stages conv1..conv5 of indexable units: the A^2-Nets paper's 3-D ResNets, I3D, S3D
and the small proxy I3D. `create_backbone(name, **kwargs)` builds one from the BACKBONES registry."""
from __future__ import annotations

import inspect
from collections.abc import Callable

from torch import nn

from attnas.cells.backbones.inception3d import (FeatureGate, InceptionBlock, create_i3d, create_inception_block,
                                         create_s3d)
from attnas.cells.backbones.net import ClassifierHead, ConvNormAct, Stage, VideoNet, create_conv_norm_act
from attnas.cells.backbones.resnet3d import (ResNet3DLayout, ResUnit, StageLayout, create_proxy_i3d, create_resnet3d,
                                      create_resnet26, create_resnet29, create_resnet50)
from attnas.cells.errors import CellBuildError

BACKBONES: dict[str, Callable[..., VideoNet]] = {
    "resnet26": create_resnet26,
    "resnet29": create_resnet29,
    "resnet50": create_resnet50,
    "i3d": create_i3d,
    "s3d": create_s3d,
    "proxy_i3d": create_proxy_i3d,
}


def create_backbone(name: str, **kwargs) -> nn.Module:
    """The backbone registered as `name`, built with its builder's keyword arguments (num_classes=400 by default)."""
    if name not in BACKBONES:
        raise CellBuildError(f"unknown backbone {name!r}; expected one of {', '.join(sorted(BACKBONES))}")
    builder = BACKBONES[name]
    try:
        inspect.signature(builder).bind(**kwargs)
    except TypeError as error:
        accepted = ", ".join(p for p in inspect.signature(builder).parameters if p != "kwargs")
        raise CellBuildError(f"backbone {name!r}: {error}; its arguments: {accepted}") from None
    return builder(**kwargs)


__all__ = ["BACKBONES", "create_backbone", "VideoNet", "Stage", "ClassifierHead", "ConvNormAct", "ResUnit",
           "StageLayout", "ResNet3DLayout", "create_conv_norm_act", "create_resnet3d", "create_resnet26",
           "create_resnet29", "create_resnet50", "create_proxy_i3d", "create_i3d", "create_s3d", "InceptionBlock",
           "FeatureGate", "create_inception_block"]
