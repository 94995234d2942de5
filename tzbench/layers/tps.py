"""Alignment module of TSRN (shared by ASTER and the baselines): an STN head predicting control
points and a TPS sampler.

The pair rectifies a text image with a thin-plate-spline (TPS) warp, as in ASTER and in
TextZoom's TSRN (also used by the baselines' ``STN=True`` variants):

* :class:`STNHead` regresses ``num_ctrlpoints`` (x, y) control points in ``[0, 1]`` from an
  image (six conv3x3+BN+ReLU stages, a 512-unit fully connected layer and a linear layer
  initialised to a near-identity layout);
* :class:`TPSSpatialTransformer` maps those source control points to a sampling grid of a
  fixed output size and samples the input with ``grid_sample``.

Module and buffer names match the official state dicts (``stn_head.*`` and ``tps.*``), so
official checkpoints load strictly. The four TPS buffers are persistent: a checkpoint's
values are used as loaded and are never recomputed in ``forward``.

The STN head needs an input whose five 2x2 poolings leave a 1x2 map (e.g. 32x64), because
its fully connected layer expects 512 = 256 x 1 x 2 features; TSRN resizes its 16x64 input
to 32x64 before calling it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["STNHead", "TPSSpatialTransformer", "build_control_points", "STN_INPUT_SIZE"]

#: The (height, width) the STN head is designed for: five 2x2 poolings leave 1x2.
STN_INPUT_SIZE: tuple[int, int] = (32, 64)


def build_control_points(num_control_points: int, margins: Sequence[float]) -> Tensor:
    """Control points on two horizontal lines: half on top, half at the bottom.

    Returns ``(num_control_points, 2)`` float32 (x, y) in ``[0, 1]``: x evenly spaced from
    ``margin_x`` to ``1 - margin_x``; y equal to ``margin_y`` (top row) then ``1 - margin_y``.
    """
    if num_control_points % 2:
        raise ValueError(f"num_control_points must be even, got {num_control_points}")
    margin_x, margin_y = margins
    per_side = num_control_points // 2
    # Built in float64 and rounded once: the TPS kernel is badly conditioned, and points
    # rounded this way reproduce the official inverse kernel bit for bit.
    xs = torch.linspace(margin_x, 1.0 - margin_x, per_side, dtype=torch.float64)
    top = torch.stack([xs, torch.full((per_side,), float(margin_y), dtype=torch.float64)], dim=1)
    bottom = torch.stack([xs, torch.full((per_side,), 1.0 - margin_y, dtype=torch.float64)], dim=1)
    return torch.cat([top, bottom], dim=0).float()


def _conv_bn_relu(in_planes: int, out_planes: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=1, padding=1, bias=True),
        nn.BatchNorm2d(out_planes),
        nn.ReLU(inplace=True),
    )


class STNHead(nn.Module):
    """Localisation network regressing TPS control points.

    Args:
        in_planes: channels of the input image (3 for RGB, 4 with TextZoom's mask).
        num_ctrlpoints: number of (x, y) control points (even).
        activation: ``None``/``"none"`` (linear output, TSRN and ASTER) or ``"sigmoid"``.
        last_pool: kernel and stride of the fifth (last) max-pooling. ``(2, 2)`` (TextZoom's
            head) takes a 32x64 input; scene-text-telescope's head (TBSRN) pools ``(1, 2)``
            there so that it runs on the 16x64 LR image itself. Pooling has no parameters:
            the state-dict layout is the same.

    ``forward(x)`` takes ``(B, in_planes, 32, 64)`` and returns ``(features, ctrl_points)``:
    the 512-d features of the fully connected layer and ``(B, num_ctrlpoints, 2)`` points
    as (x, y) in normalised ``[0, 1]`` image coordinates (not clamped).
    """

    def __init__(self, in_planes: int, num_ctrlpoints: int = 20, activation: str | None = None,
                 last_pool: tuple[int, int] = (2, 2)) -> None:
        super().__init__()
        if activation not in (None, "none", "sigmoid"):
            raise ValueError(f"activation must be None, 'none' or 'sigmoid', got {activation!r}")
        self.in_planes = in_planes
        self.num_ctrlpoints = num_ctrlpoints
        self.activation = None if activation in (None, "none") else activation
        # Indices 0, 2, ..., 10 are conv stages and 1, 3, ..., 9 poolings, matching the
        # official key names (stn_convnet.0.0.weight ... stn_convnet.10.1.running_var).
        widths = [32, 64, 128, 256, 256, 256]
        layers: list[nn.Module] = []
        prev = in_planes
        for i, w in enumerate(widths):
            layers.append(_conv_bn_relu(prev, w))
            if i < len(widths) - 2:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            elif i == len(widths) - 2:
                layers.append(nn.MaxPool2d(kernel_size=last_pool, stride=last_pool))
            prev = w
        self.stn_convnet = nn.Sequential(*layers)
        self.stn_fc1 = nn.Sequential(nn.Linear(2 * 256, 512), nn.BatchNorm1d(512), nn.ReLU(inplace=True))
        self.stn_fc2 = nn.Linear(512, num_ctrlpoints * 2)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming conv init, unit BN, small FC init; ``stn_fc2`` starts at identity points.

        ``stn_fc2`` gets zero weights and a bias equal to control points with a 0.01
        margin, so a fresh STN predicts an almost-identity warp whatever the input.
        """
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.001)
                nn.init.zeros_(m.bias)
        points = build_control_points(self.num_ctrlpoints, (0.01, 0.01))
        if self.activation == "sigmoid":
            points = torch.logit(points)
        with torch.no_grad():
            self.stn_fc2.weight.zero_()
            self.stn_fc2.bias.copy_(points.reshape(-1))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, C, 32, 64)`` -> ``(features (B, 512), ctrl_points (B, N, 2))``."""
        feat = self.stn_convnet(x)
        feat = feat.reshape(feat.shape[0], -1)
        feat = self.stn_fc1(feat)
        # The 0.1 factor is part of the official head: it damps the regression input.
        points = self.stn_fc2(0.1 * feat)
        if self.activation == "sigmoid":
            points = torch.sigmoid(points)
        return feat, points.view(-1, self.num_ctrlpoints, 2)


def _tps_kernel(a: Tensor, b: Tensor) -> Tensor:
    """Radial basis U(r) = 0.5 * d * log(d) with d = squared distance, 0 where d = 0."""
    d = (a[:, None, :] - b[None, :, :]).pow(2).sum(-1)
    u = 0.5 * d * torch.log(d)
    return torch.nan_to_num(u, nan=0.0)


class TPSSpatialTransformer(nn.Module):
    """Thin-plate-spline sampler from source control points to a fixed output grid.

    Args:
        output_image_size: ``(height, width)`` of the rectified output.
        num_control_points: number of control points (even); the target points lie on two
            horizontal lines (see :func:`build_control_points`).
        margins: ``(margin_x, margin_y)`` of the target control points.
        align_corners: passed to ``grid_sample``. ``False`` is the modern default (what the
            official code does under torch >= 1.3); ``True`` reproduces torch <= 1.2.

    Persistent buffers (official names): ``inverse_kernel`` (N+3, N+3),
    ``padding_matrix`` (3, 2), ``target_coordinate_repr`` (H*W, N+3) and
    ``target_control_points`` (N, 2). ``forward`` uses them as loaded.

    ``forward(input, source_control_points)`` returns ``(output, source_coordinate)``: the
    rectified ``(B, C, H, W)`` image and the ``(B, H*W, 2)`` sampling positions in ``[0, 1]``
    before clamping.
    """

    inverse_kernel: Tensor
    padding_matrix: Tensor
    target_coordinate_repr: Tensor
    target_control_points: Tensor

    def __init__(
        self,
        output_image_size: Sequence[int],
        num_control_points: int = 20,
        margins: Sequence[float] = (0.05, 0.05),
        align_corners: bool = False,
    ) -> None:
        super().__init__()
        self.output_image_size = (int(output_image_size[0]), int(output_image_size[1]))
        self.num_control_points = num_control_points
        self.margins = (float(margins[0]), float(margins[1]))
        self.align_corners = align_corners
        for name, value in self.constructor_buffers().items():
            self.register_buffer(name, value, persistent=True)

    def constructor_buffers(self) -> dict[str, Tensor]:
        """The four TPS buffers as this module's constructor computes them."""
        n = self.num_control_points
        height, width = self.output_image_size
        target_control_points = build_control_points(n, self.margins)
        forward_kernel = torch.zeros(n + 3, n + 3)
        forward_kernel[:n, :n] = _tps_kernel(target_control_points, target_control_points)
        forward_kernel[:n, -3] = 1
        forward_kernel[-3, :n] = 1
        forward_kernel[:n, -2:] = target_control_points
        forward_kernel[-2:, :n] = target_control_points.t()
        inverse_kernel = torch.inverse(forward_kernel)
        # Row-major (y, x) enumeration of the output grid, normalised, stored as (x, y).
        grid = torch.tensor(list(itertools.product(range(height), range(width))), dtype=torch.float32)
        y = grid[:, 0:1] / (height - 1)
        x = grid[:, 1:2] / (width - 1)
        target_coordinate = torch.cat([x, y], dim=1)
        partial = _tps_kernel(target_coordinate, target_control_points)
        target_coordinate_repr = torch.cat([partial, torch.ones(height * width, 1), target_coordinate], dim=1)
        return {
            "inverse_kernel": inverse_kernel,
            "padding_matrix": torch.zeros(3, 2),
            "target_coordinate_repr": target_coordinate_repr,
            "target_control_points": target_control_points,
        }

    def extra_repr(self) -> str:
        return (
            f"output_image_size={self.output_image_size}, num_control_points={self.num_control_points}, "
            f"margins={self.margins}, align_corners={self.align_corners}"
        )

    def forward(self, input: Tensor, source_control_points: Tensor) -> tuple[Tensor, Tensor]:
        """Warp ``input`` (B, C, h, w) so the source control points land on the target ones."""
        if source_control_points.ndim != 3 or source_control_points.shape[1:] != (self.num_control_points, 2):
            raise ValueError(
                f"expected control points (B, {self.num_control_points}, 2), got {tuple(source_control_points.shape)}"
            )
        batch = source_control_points.shape[0]
        y = torch.cat([source_control_points, self.padding_matrix.expand(batch, 3, 2)], dim=1)
        # This order (kernel first) matters: the system is badly conditioned and another
        # association moves the output by ~1e-4.
        mapping_matrix = torch.matmul(self.inverse_kernel, y)
        source_coordinate = torch.matmul(self.target_coordinate_repr, mapping_matrix)
        height, width = self.output_image_size
        grid = source_coordinate.view(-1, height, width, 2).clamp(0, 1) * 2.0 - 1.0
        output = F.grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=self.align_corners)
        return output, source_coordinate
