"""ASTER's rectifier: the STN head that predicts 20 control points and the TPS sampler.

Sizes are ASTER's (TextZoom's RecognizerBuilder): the head sees a 3-channel 32x64 image and
the sampler produces 32x100. TSRN has its own rectifier with other sizes; this one is kept
separate so the judge does not depend on an SR plugin. Module and buffer names follow the
official state_dict (``stn_head.*``, ``tps.*``) so the released ``demo.pth.tar`` loads strictly.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "build_output_control_points",
    "compute_partial_repr",
    "TPSSpatialTransformer",
    "STNHead",
]


def build_output_control_points(num_control_points: int, margins: tuple[float, float]) -> torch.Tensor:
    """Target control points ``(N, 2)`` as (x, y) in [0, 1]: a top row then a bottom row.

    The x positions come from a float64 ``linspace`` and are rounded to float32 once, as the
    official code does, so the buffers match it bit for bit.
    """
    margin_x, margin_y = margins
    per_side = num_control_points // 2
    xs = np.linspace(margin_x, 1.0 - margin_x, per_side)
    top = np.stack([xs, np.full(per_side, margin_y)], axis=1)
    bottom = np.stack([xs, np.full(per_side, 1.0 - margin_y)], axis=1)
    return torch.from_numpy(np.concatenate([top, bottom], axis=0)).float()


def compute_partial_repr(points: torch.Tensor, control: torch.Tensor) -> torch.Tensor:
    """Thin-plate radial basis ``U = 0.5 * d * log(d)`` with d the squared distance.

    ``d = 0`` gives NaN (0 * -inf), which is defined as 0.
    """
    diff = points.unsqueeze(1) - control.unsqueeze(0)
    sq = diff * diff
    dist = sq[:, :, 0] + sq[:, :, 1]
    rep = 0.5 * dist * torch.log(dist)
    return rep.masked_fill(rep != rep, 0.0)


class TPSSpatialTransformer(nn.Module):
    """Thin-plate-spline sampler mapping predicted source points onto a fixed target grid.

    Its four buffers are persistent (they are in official checkpoints) and are always used as
    loaded, never recomputed in ``forward``.

    Args:
        output_image_size: ``(H, W)`` of the rectified image.
        num_control_points: number of control points (two rows).
        margins: ``(x, y)`` margins of the target control points.
        align_corners: passed to ``F.grid_sample``; the official call passes none, which means
            False on torch >= 1.3 and True on torch <= 1.2.
    """

    def __init__(
        self,
        output_image_size: tuple[int, int] = (32, 100),
        num_control_points: int = 20,
        margins: tuple[float, float] = (0.05, 0.05),
        align_corners: bool = False,
    ) -> None:
        super().__init__()
        self.output_image_size = tuple(output_image_size)
        self.num_control_points = num_control_points
        self.margins = tuple(margins)
        self.align_corners = align_corners
        for name, value in self.constructor_buffers().items():
            self.register_buffer(name, value)

    def constructor_buffers(self) -> dict[str, torch.Tensor]:
        """The four buffers as the constructor builds them (float32, like the official code).

        Used at construction and to fill them in when a checkpoint lacks them.
        """
        n = self.num_control_points
        height, width = self.output_image_size
        target_ctrl = build_output_control_points(n, self.margins)
        kernel = torch.zeros(n + 3, n + 3)
        kernel[:n, :n] = compute_partial_repr(target_ctrl, target_ctrl)
        kernel[:n, -3] = 1
        kernel[-3, :n] = 1
        kernel[:n, -2:] = target_ctrl
        kernel[-2:, :n] = target_ctrl.t()
        inverse_kernel = torch.inverse(kernel)
        # Row-major (y, x) enumeration, normalised, then reordered to (x, y).
        coords = torch.tensor(list(itertools.product(range(height), range(width))), dtype=torch.float32)
        ys, xs = coords.split(1, dim=1)
        coords = torch.cat([xs / (width - 1), ys / (height - 1)], dim=1)
        repr_ = torch.cat(
            [compute_partial_repr(coords, target_ctrl), torch.ones(height * width, 1), coords], dim=1
        )
        return {
            "inverse_kernel": inverse_kernel,
            "padding_matrix": torch.zeros(3, 2),
            "target_coordinate_repr": repr_,
            "target_control_points": target_ctrl,
        }

    def forward(self, images: torch.Tensor, source_control_points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Warp ``images`` (B,C,h,w) by ``source_control_points`` (B,N,2) in [0,1] (x, y).

        Returns the rectified images ``(B, C, H, W)`` and the source coordinates ``(B, H*W, 2)``.
        """
        batch = source_control_points.size(0)
        height, width = self.output_image_size
        y = torch.cat([source_control_points, self.padding_matrix.expand(batch, 3, 2)], dim=1)
        # The kernel is badly conditioned (cond ~1.3e3): this product order is the official one
        # and a different order moves the output by ~1e-4.
        mapping = torch.matmul(self.inverse_kernel, y)
        source = torch.matmul(self.target_coordinate_repr, mapping)
        grid = source.view(-1, height, width, 2).clamp(0, 1) * 2.0 - 1.0
        out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=self.align_corners)
        return out, source


def _conv3x3_block(in_planes: int, out_planes: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=1, padding=1),
        nn.BatchNorm2d(out_planes),
        nn.ReLU(inplace=True),
    )


class STNHead(nn.Module):
    """Localisation network: 32x64 image -> ``num_ctrlpoints`` (x, y) control points.

    Six conv blocks (32, 64, 128, 256, 256, 256), a 2x2 max-pool after the first five, then
    ``Linear(512, 512) + BN1d + ReLU`` and ``stn_fc2(0.1 * feat)``. ``activation`` is 'none'
    for ASTER in TextZoom ('sigmoid' is the other official option).
    """

    def __init__(self, in_planes: int = 3, num_ctrlpoints: int = 20, activation: str = "none") -> None:
        super().__init__()
        if activation not in ("none", "sigmoid"):
            raise ValueError(f"STNHead activation must be 'none' or 'sigmoid', got {activation!r}")
        self.in_planes = in_planes
        self.num_ctrlpoints = num_ctrlpoints
        self.activation = activation
        widths = [32, 64, 128, 256, 256, 256]
        layers: list[nn.Module] = []
        prev = in_planes
        for i, w in enumerate(widths):
            layers.append(_conv3x3_block(prev, w))
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            prev = w
        self.stn_convnet = nn.Sequential(*layers)
        self.stn_fc1 = nn.Sequential(nn.Linear(2 * 256, 512), nn.BatchNorm1d(512), nn.ReLU(inplace=True))
        self.stn_fc2 = nn.Linear(512, num_ctrlpoints * 2)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in list(self.stn_convnet.modules()) + list(self.stn_fc1.modules()):
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, (2.0 / fan_out) ** 0.5)
                nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.001)
                nn.init.zeros_(m.bias)
        with torch.no_grad():
            self.stn_fc2.weight.zero_()
            self.stn_fc2.bias.copy_(self.identity_bias())

    def identity_bias(self) -> torch.Tensor:
        """The constructor value of ``stn_fc2.bias``: margin-0.01 control points (an identity warp)."""
        pts = build_output_control_points(self.num_ctrlpoints, (0.01, 0.01))
        if self.activation == "sigmoid":
            pts = torch.log(pts / (1 - pts))
        return pts.reshape(-1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(img_feat (B,512), ctrl_points (B,N,2))``."""
        x = self.stn_convnet(x)
        img_feat = self.stn_fc1(x.view(x.size(0), -1))
        out = self.stn_fc2(0.1 * img_feat)
        if self.activation == "sigmoid":
            out = torch.sigmoid(out)
        return img_feat, out.view(-1, self.num_ctrlpoints, 2)
