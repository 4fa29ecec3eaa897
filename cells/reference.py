"""Plain, hand-written versions of the blocks the zoo cells reproduce, written from the papers and independently of
cells.ops: the reference side of tests/cells/test_reference.py and benchmarks/cell_speed.py.

Each block: its attention, then a 1x1x1 conv back to the input's channels (no bias), BatchNorm3d whose scale starts
at zero, and the residual, as in Wang et al. 2018 and Chen et al. 2018.
"""
from __future__ import annotations

import torch
from torch import nn


class _Residual(nn.Module):
    """The shared tail: W_z (1x1x1 conv inner -> channels, no bias), BatchNorm3d with zero scale, + x."""

    def __init__(self, channels: int, inner: int) -> None:
        super().__init__()
        self.w_z = nn.Conv3d(inner, channels, 1, bias=False)
        self.bn = nn.BatchNorm3d(channels)
        nn.init.zeros_(self.bn.weight)

    def residual(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x + self.bn(self.w_z(y))


class NonLocalBlock(_Residual):
    """Wang et al. 2018, embedded Gaussian: y = softmax(theta(x)^T phi(x)) g(x) over all T*H*W positions."""

    def __init__(self, channels: int, inner: int) -> None:
        super().__init__(channels, inner)
        self.theta = nn.Conv3d(channels, inner, 1)
        self.phi = nn.Conv3d(channels, inner, 1)
        self.g = nn.Conv3d(channels, inner, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, h, w = x.shape
        theta = self.theta(x).flatten(2).transpose(1, 2)          # (N, THW, c)
        phi = self.phi(x).flatten(2)                              # (N, c, THW)
        g = self.g(x).flatten(2).transpose(1, 2)                  # (N, THW, c)
        f = torch.softmax(torch.bmm(theta, phi), dim=-1)          # (N, THW, THW)
        y = torch.bmm(f, g).transpose(1, 2).reshape(n, -1, t, h, w)
        return self.residual(x, y)


class DoubleAttentionBlock(_Residual):
    """Chen et al. 2018, A^2 block: Z = [phi(X) softmax(theta(X))^T] softmax(rho(X)), Eq. (6) (association "left"),
    or phi(X) [softmax(theta(X))^T softmax(rho(X))], Eq. (7) (association "right", the (THW)^2 matrix)."""

    def __init__(self, channels: int, inner: int, descriptors: int, *, association: str = "left") -> None:
        super().__init__(channels, inner)
        if association not in ("left", "right"):
            raise ValueError(f"association: expected 'left' or 'right', got {association!r}")
        self.association = association
        self.phi = nn.Conv3d(channels, inner, 1)
        self.theta = nn.Conv3d(channels, descriptors, 1)
        self.rho = nn.Conv3d(channels, descriptors, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, h, w = x.shape
        a = self.phi(x).flatten(2)                                # (N, m, THW)
        b = torch.softmax(self.theta(x).flatten(2), dim=2)        # (N, n, THW): attention maps over positions
        v = torch.softmax(self.rho(x).flatten(2), dim=1)          # (N, n, THW): attention vectors over descriptors
        if self.association == "left":
            z = torch.bmm(torch.bmm(a, b.transpose(1, 2)), v)     # G = A B^T is (N, m, n)
        else:
            z = torch.bmm(a, torch.bmm(b.transpose(1, 2), v))     # B^T V is (N, THW, THW)
        return self.residual(x, z.reshape(n, -1, t, h, w))


class SqueezeExcitationBlock(_Residual):
    """Hu et al. 2018 in the cell's residual form: v(x) * sigmoid(fc2(relu(fc1(mean over T, H, W of x))))."""

    def __init__(self, channels: int, inner: int, reduction: int) -> None:
        super().__init__(channels, inner)
        self.v = nn.Conv3d(channels, inner, 1)
        self.fc1 = nn.Linear(channels, max(1, inner // reduction))
        self.fc2 = nn.Linear(max(1, inner // reduction), inner)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squeeze = x.mean(dim=(2, 3, 4))
        excite = torch.sigmoid(self.fc2(torch.relu(self.fc1(squeeze))))
        return self.residual(x, self.v(x) * excite.view(*excite.shape, 1, 1, 1))


class CBAMBlock(_Residual):
    """Woo et al. 2018 in the cell's residual form: a channel gate (shared MLP on average and max pooled x), then a
    spatial gate on each frame (a 1 x k x k conv on channel-average and channel-max maps), each on a projection."""

    def __init__(self, channels: int, inner: int, reduction: int, kernel: int) -> None:
        super().__init__(channels, inner)
        hidden = max(1, inner // reduction)
        self.channel_v = nn.Conv3d(channels, inner, 1)
        self.channel_fc1 = nn.Linear(channels, hidden)
        self.channel_fc2 = nn.Linear(hidden, inner)
        self.spatial_v = nn.Conv3d(inner, inner, 1)
        self.spatial_conv = nn.Conv3d(2, 1, (1, kernel, kernel), padding=(0, kernel // 2, kernel // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def mlp(pooled: torch.Tensor) -> torch.Tensor:
            return self.channel_fc2(torch.relu(self.channel_fc1(pooled)))

        channel_gate = torch.sigmoid(mlp(x.mean(dim=(2, 3, 4))) + mlp(x.flatten(2).max(dim=2).values))
        y = self.channel_v(x) * channel_gate[:, :, None, None, None]
        pooled = torch.stack([y.mean(dim=1), y.max(dim=1).values], dim=1)
        spatial_gate = torch.sigmoid(self.spatial_conv(pooled))
        return self.residual(x, self.spatial_v(y) * spatial_gate)
