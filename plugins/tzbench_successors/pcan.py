"""PCAN: Parallel Contextual Attention Network (Zhao et al., "Scene Text Image Super-Resolution
via Parallelly Contextual Attention Network", ACM MM 2021), with the official state-dict layout.

Architecture (scale 2, 16x64 -> 32x128, C = 4 with the mask channel, or 3; h = hidden_units)::

    [train only] x -> bilinear 32x64 -> STNHead -> 20 points -> TPS -> (16x64)
    block1  = Conv9x9(C -> 2h) + PReLU                                 f1
    block{k}, k = 2..n+1: a parallel contextual attention block (PCAB) reading
              cat(f1, f2, ..., f{k-1}) (dense connections)             f{k}
        z = conv1x1(cat)                           (2h * (k-1) -> 2h)
        r = mish(BN(conv3x3(z)))
        w = BiGRU along each row    of (z + BN(conv3x3_w(r)))          horizontal context
        v = BiGRU along each column of (z + BN(conv3x3_h(r)))          vertical context
        f{k} = mish(BN(conv3x3(SE(cat(v, w)))))    (4h -> 2h)
    spatial_attention = texture attention (HOTA) over cat(f2 .. f{n+1}) (2h * n channels)
    block{n+2} = Conv3x3(2h * n -> 2h) + BN
    block{n+3} = [Conv3x3(2h -> 8h) + PixelShuffle(2) + mish] * log2(scale) + Conv9x9(2h -> C)
    y = tanh(block{n+3}(block{n+2}(spatial_attention(cat(f2 .. f{n+1}))) + f1))

The texture attention (``HOTA``, hierarchically orthogonal texture-aware attention) reduces its
input to a quarter of the channels, runs one shared 3x1 and one shared 1x3 convolution, each
at dilations 1, 2 and 3 with stride 2, fuses the six maps with squeeze-excitation and a conv3x3,
max-pools 8x8 (stride 4) to a coarse context, refines it with three conv3x3, upsamples it back
(bilinear) and adds it to a 1x1 projection of the reduced input; a 1x1 conv and a sigmoid make
a per-channel, per-position gate that multiplies the input.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tzbench.layers.recurrent import Mish, RowBiGRU
from tzbench.layers.tps import STN_INPUT_SIZE, STNHead, TPSSpatialTransformer
from tzbench.layers.upsample import UpsampleBlock, upsample_stages
from tzbench.weights import load_state_dict_file, load_strict

__all__ = ["PCAN", "ParallelContextualAttentionBlock", "TextureAttention", "SqueezeExcitation",
           "load_official_pcan", "load_pcan_state_dict", "MIN_INPUT_SIZE"]

#: The smallest LR height and width: the texture attention's stride-2 convolutions must leave
#: at least 8 rows and columns for its 8x8 max-pooling.
MIN_INPUT_SIZE = 15


_Mish = Mish


class SqueezeExcitation(nn.Module):
    """Channel gate: global average pool -> Linear(C, C/r) -> ReLU -> Linear(C/r, C) -> sigmoid,
    both linears without bias (the official ``FeatureSelection``; keys ``fc.0``, ``fc.2``)."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(channels, channels // reduction, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(channels // reduction, channels, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        gate = self.fc(x.mean(dim=(2, 3)))
        return x * gate[:, :, None, None]


GruBlock = RowBiGRU


class ParallelContextualAttentionBlock(nn.Module):
    """PCAB: a shared conv-BN-mish stem, then a horizontal and a vertical BiGRU branch in
    parallel, fused by squeeze-excitation and a conv3x3-BN-mish (official class ``PCAB``).

    ``forward(*features)`` concatenates its inputs (the block's dense connections) and reduces
    them with a 1x1 conv, so the block with index ``no`` (2 for the first) takes ``no - 1``
    maps of ``channels`` each.
    """

    def __init__(self, channels: int, no: int) -> None:
        super().__init__()
        if no < 2:
            raise ValueError(f"the first PCAB has no=2, got {no}")
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.prelu = _Mish()  # the official attribute name; a mish, without parameters
        self.conv2_w = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.bn2_w = nn.BatchNorm2d(channels)
        self.conv2_h = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.bn2_h = nn.BatchNorm2d(channels)
        self.gru1 = GruBlock(channels)
        self.gru2 = GruBlock(channels)
        self.fs = SqueezeExcitation(2 * channels, reduction=16)
        self.conv3 = nn.Conv2d(2 * channels, channels, kernel_size=3, padding=1)
        self.bn3 = nn.BatchNorm2d(channels)
        self.prelu3 = _Mish()
        self.conv_reduce = nn.Conv2d(channels * (no - 1), channels, kernel_size=1, padding=0)

    def forward(self, *features: Tensor) -> Tensor:
        x = self.conv_reduce(torch.cat(features, 1))
        stem = self.prelu(self.bn1(self.conv1(x)))
        rows = self.gru1(x + self.bn2_w(self.conv2_w(stem)))
        # The vertical branch runs the same kind of GRU block on the transposed map.
        cols = self.gru2((x + self.bn2_h(self.conv2_h(stem))).transpose(-1, -2)).transpose(-1, -2)
        # Official order: the vertical branch first.
        return self.prelu3(self.bn3(self.conv3(self.fs(torch.cat([cols, rows], 1)))))


class TextureAttention(nn.Module):
    """HOTA, the official texture-aware attention over the concatenated PCAB outputs.

    It works on ``channels // 4`` channels inside. The 3x1 and 1x3 kernels start at ``randn`` (standard deviation 1), as in the official constructor; the
    convolutions at torch's default initialisation.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        f = channels // 4
        self.conv1 = nn.Conv2d(channels, f, kernel_size=1)
        self.conv_f = nn.Conv2d(f, f, kernel_size=1)
        self.conv_max = nn.Conv2d(f, f, kernel_size=3, padding=1)
        self.conv3 = nn.Conv2d(f, f, kernel_size=3, padding=1)
        self.conv3_ = nn.Conv2d(f, f, kernel_size=3, padding=1)
        self.conv4 = nn.Conv2d(f, channels, kernel_size=1)
        self.sigmoid = nn.Sigmoid()
        self.relu = nn.ReLU(inplace=True)
        self.horizontal_conv_weight = nn.Parameter(torch.randn(f, f, 1, 3))
        self.horizontal_conv_bias = nn.Parameter(torch.randn(f))
        self.vertical_conv_weight = nn.Parameter(torch.randn(f, f, 3, 1))
        self.vertical_conv_bias = nn.Parameter(torch.randn(f))
        self.se = SqueezeExcitation(6 * f, reduction=16)
        self.conv_reduce = nn.Conv2d(6 * f, f, kernel_size=3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        reduced = self.conv1(x)
        branches = [F.conv2d(reduced, self.vertical_conv_weight, self.vertical_conv_bias, stride=2, padding=(d, 0),
                             dilation=d) for d in (1, 2, 3)]
        branches += [F.conv2d(reduced, self.horizontal_conv_weight, self.horizontal_conv_bias, stride=2,
                              padding=(0, d), dilation=d) for d in (1, 2, 3)]
        fused = self.conv_reduce(self.se(torch.cat(branches, 1)))
        context = self.relu(self.conv_max(F.max_pool2d(fused, kernel_size=8, stride=4)))
        context = self.conv3_(self.relu(self.conv3(context)))
        context = F.interpolate(context, x.shape[-2:], mode="bilinear", align_corners=False)
        return x * self.sigmoid(self.conv4(self.conv_f(reduced) + context))


class PCAN(nn.Module):
    """PCAN super-resolution network, (B, C, H/s, W/s) -> (B, C, H, W) in [-1, 1].

    Args:
        scale_factor: upscaling factor, a power of two (2 in TextZoom).
        width, height: HR size; the TPS samples to (height/s, width/s).
        stn: build the TPS-STN (its keys are in the state dict); it runs in training only.
        srb_nums: number of PCABs (the official forward is written for 5; any count >= 1
            follows the same dense pattern here).
        mask: 4 input/output channels (RGB + binary mask) instead of 3.
        hidden_units: feature width ``2 * hidden_units``. The squeeze-excitation layers divide
            their width by 16, so ``hidden_units >= 4`` and the texture attention's
            ``6 * (2 * hidden_units * srb_nums // 4) >= 16``.
        stn_at_test: also rectify in eval mode (the official code does not).
        grid_sample_align_corners: ``align_corners`` of the TPS ``grid_sample``; False is what
            the official code does under torch >= 1.3.
    """

    def __init__(
        self,
        scale_factor: int = 2,
        width: int = 128,
        height: int = 32,
        stn: bool = True,
        srb_nums: int = 5,
        mask: bool = True,
        hidden_units: int = 32,
        stn_at_test: bool = False,
        grid_sample_align_corners: bool = False,
    ) -> None:
        super().__init__()
        upsample_blocks = upsample_stages(scale_factor)
        if srb_nums < 1:
            raise ValueError(f"srb_nums must be at least 1, got {srb_nums}")
        channels = 2 * hidden_units
        if hidden_units < 4 or 6 * (channels * srb_nums // 4) < 16:
            raise ValueError(f"hidden_units={hidden_units}, srb_nums={srb_nums}: the squeeze-excitation layers need "
                             f"hidden_units >= 4 and 6 * (2 * hidden_units * srb_nums // 4) >= 16")
        in_planes = 4 if mask else 3
        self.in_planes = self.in_channels = in_planes
        self.srb_nums = srb_nums
        self.stn = stn
        self.stn_at_test = stn_at_test

        self.block1 = nn.Sequential(nn.Conv2d(in_planes, channels, kernel_size=9, padding=4), nn.PReLU())
        for i in range(srb_nums):
            setattr(self, f"block{i + 2}", ParallelContextualAttentionBlock(channels, i + 2))
        setattr(self, f"block{srb_nums + 2}", nn.Sequential(
            nn.Conv2d(channels * srb_nums, channels, kernel_size=3, padding=1), nn.BatchNorm2d(channels)))
        tail: list[nn.Module] = [UpsampleBlock(channels, 2) for _ in range(upsample_blocks)]
        tail.append(nn.Conv2d(channels, in_planes, kernel_size=9, padding=4))
        setattr(self, f"block{srb_nums + 3}", nn.Sequential(*tail))
        if stn:
            self.tps = TPSSpatialTransformer(
                output_image_size=(height // scale_factor, width // scale_factor),
                num_control_points=20,
                margins=(0.05, 0.05),
                align_corners=grid_sample_align_corners,
            )
            self.stn_head = STNHead(in_planes=in_planes, num_ctrlpoints=20, activation=None)
        self.spatial_attention = TextureAttention(channels * srb_nums)

    def rectify(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The alignment module: ``(rectified (B, C, h, w), control points (B, 20, 2))``.

        As in TSRN, the LR image is first resized to 32x64 (bilinear, align_corners=True) and
        the TPS samples that resized image.
        """
        if not self.stn:
            raise RuntimeError("this PCAN was built with stn=False")
        x = F.interpolate(x, STN_INPUT_SIZE, mode="bilinear", align_corners=True)
        _, ctrl_points = self.stn_head(x)
        rectified, _ = self.tps(x, ctrl_points)
        return rectified, ctrl_points

    def pcab_features(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``(block1 output, [output of each PCAB])`` for an (already rectified) input."""
        feat1 = self.block1(x)
        feats: list[Tensor] = []
        for i in range(self.srb_nums):
            feats.append(getattr(self, f"block{i + 2}")(feat1, *feats))
        return feat1, feats

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, h, w) in [0, 1] -> (B, C, h*s, w*s) in [-1, 1] (tanh)."""
        if x.ndim != 4 or x.shape[1] != self.in_planes:
            raise ValueError(f"PCAN expects (B, {self.in_planes}, H, W) input, got {tuple(x.shape)}")
        if self.stn and (self.training or self.stn_at_test):
            x, _ = self.rectify(x)
        if min(x.shape[-2:]) < MIN_INPUT_SIZE:
            raise ValueError(f"PCAN needs inputs at least {MIN_INPUT_SIZE}x{MIN_INPUT_SIZE} (its texture attention "
                             f"pools 8x8 at half resolution), got {tuple(x.shape[-2:])}")
        feat1, feats = self.pcab_features(x)
        fused = getattr(self, f"block{self.srb_nums + 2}")(self.spatial_attention(torch.cat(feats, 1)))
        return torch.tanh(getattr(self, f"block{self.srb_nums + 3}")(fused + feat1))


def load_official_pcan(model: PCAN, path: str | Path) -> PCAN:
    """Load an official PCAN checkpoint (``{'state_dict_G': ...}``, as TextZoom saves it) into ``model``.

    Keys may carry a DataParallel ``module.`` prefix; BN buffers may lack
    ``num_batches_tracked``. Anything else missing or unexpected, or a shape mismatch, raises
    :class:`tzbench.weights.WeightsError` naming the keys. Read with ``weights_only=True``.
    """
    return load_pcan_state_dict(model, load_state_dict_file(path, key="state_dict_G"), source=str(path))


def load_pcan_state_dict(model: PCAN, state: Mapping[str, Tensor], source: str = "<state dict>") -> PCAN:
    """Strictly load an official-layout PCAN state dict (see :func:`load_official_pcan`)."""
    expected = f"an official PCAN checkpoint for PCAN(mask={model.in_planes == 4}, stn={model.stn}, srb_nums={model.srb_nums})"
    return load_strict(model, state, source=source, expected=expected)  # type: ignore[return-value]
