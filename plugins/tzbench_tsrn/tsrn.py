"""TSRN: Text Super-Resolution Network (Wang et al., "Scene Text Image Super-Resolution in the
Wild", ECCV 2020), with the official TextZoom state-dict layout.

Architecture (scale 2, 16x64 -> 32x128, C = 4 with the mask channel or 3)::

    [train only] x -> bilinear 32x64 -> STNHead -> 20 points -> TPS -> (16x64)
    block1  = Conv9x9(C -> 2h) + PReLU
    block2..block{n+1} = n sequential residual blocks (SRB):
        r = BN(conv3x3(mish(BN(conv3x3(x)))))
        r = GRU over every column of r          (gru1)
        out = GRU over every row of (x + r)     (gru2, no skip after it)
    block{n+2} = Conv3x3 + BN
    block{n+3} = [Conv3x3(2h -> 8h) + PixelShuffle(2) + mish] * log2(scale) + Conv9x9(2h -> C)
    y = tanh(block{n+3}(block1 + block{n+2}))

Each GRU block is a 1x1 conv followed by a bidirectional GRU (hidden h) whose forward and
backward states are concatenated back into 2h channels.

The forward pass has two implementations of the same maths. On CPU (the default there) it
uses the fast path: channels-last convolutions, the fused GRU of :mod:`tzbench_tsrn.gru`,
the blocked mish of :mod:`tzbench_tsrn.mish`, and the last 9x9 convolution evaluated on the
pre-shuffle map with an equivalent sub-pixel 5x5 kernel. Elsewhere (CUDA, where cuDNN's GRU
is fast; tracing, scripting and ``torch.compile``), or with ``model.fast_path = False``, it
runs the module-by-module reference path, written like the official code. Both give the same
outputs (1e-5) and gradients up to float32 rounding (tests/plugins/test_tsrn_fastpath.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tzbench.weights import WeightsError, load_state_dict_file, load_strict, strip_prefix
from tzbench.layers.tps import STN_INPUT_SIZE, STNHead, TPSSpatialTransformer
from tzbench.layers.upsample import UpsampleBlock, upsample_stages
from tzbench.layers.recurrent import Mish, RowBiGRU, mish
from tzbench_tsrn.gru import bigru_2d
from tzbench_tsrn.mish import fast_mish

__all__ = ["TSRN", "mish", "load_official_tsrn", "subpixel_conv_weight"]


_Mish = Mish


class GruBlock(RowBiGRU):
    """The core's :class:`~tzbench.layers.recurrent.RowBiGRU` with TSRN's fast CPU path."""

    def forward_fast(self, x: Tensor, seq_dim: int) -> Tensor:
        """Fast CPU path along ``seq_dim`` (3: rows, 2: columns), see :func:`bigru_2d`."""
        return bigru_2d(x, self.conv1, self.gru, seq_dim)


class RecurrentResidualBlock(nn.Module):
    """Sequential residual block (SRB) of TSRN."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.gru1 = GruBlock(channels, channels)
        self.prelu = _Mish()  # the official attribute name; it is a mish, without parameters
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)
        self.gru2 = GruBlock(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        """Reference path."""
        residual = self.bn2(self.conv2(self.prelu(self.bn1(self.conv1(x)))))
        # gru1 runs down the columns: the official code swaps H and W around it.
        residual = self.gru1(residual.transpose(-1, -2)).transpose(-1, -2)
        return self.gru2(x + residual)

    def forward_fast(self, x: Tensor) -> Tensor:
        """Fast path: blocked mish and the fused GRU, directly along columns then rows."""
        residual = self.bn2(self.conv2(fast_mish(self.bn1(self.conv1(x)))))
        residual = self.gru1.forward_fast(residual, seq_dim=2)
        return self.gru2.forward_fast(x + residual, seq_dim=3)


def _subpixel_index(kernel: int, r: int) -> tuple[Tensor, int]:
    """Index map from a kxk kernel on a pixel-shuffled map to a KxK kernel before the shuffle.

    For output phase ``a``, input phase ``p`` and coarse offset ``c`` (``c_min + j``), the fine
    kernel tap is ``u = r*c + p - a`` (shifted by k//2); out-of-range taps map to index ``k``,
    a zero slot.
    """
    half = kernel // 2
    c_min = -((half + r - 1) // r)
    c_max = (r - 1 + half) // r
    size = c_max - c_min + 1
    idx = torch.full((r, r, size), kernel, dtype=torch.long)
    for a in range(r):
        for p in range(r):
            for j in range(size):
                u = r * (c_min + j) + p - a
                if -half <= u <= half:
                    idx[a, p, j] = u + half
    return idx, -c_min


def subpixel_conv_weight(weight: Tensor, bias: Tensor | None, r: int) -> tuple[Tensor, Tensor | None, int]:
    """A conv on the pre-shuffle map equivalent to ``weight`` after ``PixelShuffle(r)``.

    ``conv2d(pixel_shuffle(x, r), weight, bias, padding=k//2)`` equals
    ``pixel_shuffle(conv2d(x, W', b', padding=P), r)`` for the returned ``(W', b', P)``:
    W' has ``C_out*r*r`` outputs, ``C_in*r*r`` inputs and a ceil-sized kernel. The products
    are the same (extra taps are exact zeros), so results differ only by summation order.
    The conversion is differentiable, so gradients reach ``weight`` and ``bias``.
    """
    c_out, c_in, k, k2 = weight.shape
    if k != k2 or k % 2 == 0:
        raise ValueError(f"expected an odd square kernel, got {k}x{k2}")
    idx, pad = _subpixel_index(k, r)
    idx = idx.to(weight.device)
    size = idx.shape[-1]
    padded = F.pad(weight, (0, 1, 0, 1))  # index k is the zero slot
    # rows: (a, p_u, j_u); cols: (b, p_v, j_v) -> (c_out, c_in, a, pu, ju, b, pv, jv)
    w = padded[:, :, idx.view(r, r, size, 1, 1, 1), idx.view(1, 1, 1, r, r, size)]
    w = w.permute(0, 2, 5, 1, 3, 6, 4, 7).reshape(c_out * r * r, c_in * r * r, size, size)
    b = None if bias is None else bias.repeat_interleave(r * r)
    return w, b, pad


class TSRN(nn.Module):
    """TSRN super-resolution network, (B, C, H/s, W/s) -> (B, C, H, W) in [-1, 1].

    Args:
        scale_factor: upscaling factor, a power of two (2 in TextZoom).
        width, height: HR size; the alignment module samples to (height/s, width/s).
        stn: build the TPS-STN alignment module (its keys are in the state dict either way
            it is used). It runs in training only, as in the official code.
        srb_nums: number of sequential residual blocks.
        mask: 4 input/output channels (RGB + binary mask) instead of 3.
        hidden_units: the feature width is ``2 * hidden_units``; GRU hidden size is
            ``hidden_units``.
        stn_at_test: also rectify in eval mode (off in the paper).
        grid_sample_align_corners: ``align_corners`` of the TPS ``grid_sample``. False is
            what the official code does under torch >= 1.3; True reproduces torch <= 1.2.

    Attributes:
        fast_path: ``None`` (default) uses the fast implementation on CPU inputs and the
            reference one elsewhere; ``True``/``False`` force one of them.
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
        in_planes = 4 if mask else 3
        channels = 2 * hidden_units
        self.scale_factor = scale_factor
        self.srb_nums = srb_nums
        self.in_planes = in_planes
        self.in_channels = in_planes
        self.stn = stn
        self.stn_at_test = stn_at_test
        self.fast_path: bool | None = None

        self.block1 = nn.Sequential(nn.Conv2d(in_planes, channels, kernel_size=9, padding=4), nn.PReLU())
        for i in range(srb_nums):
            setattr(self, f"block{i + 2}", RecurrentResidualBlock(channels))
        setattr(
            self,
            f"block{srb_nums + 2}",
            nn.Sequential(nn.Conv2d(channels, channels, kernel_size=3, padding=1), nn.BatchNorm2d(channels)),
        )
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

    @property
    def grid_sample_align_corners(self) -> bool:
        """``align_corners`` of the TPS sampler (False: torch >= 1.3; True: torch <= 1.2)."""
        return bool(self.stn and self.tps.align_corners)

    def _srbs(self) -> list[RecurrentResidualBlock]:
        return [getattr(self, f"block{i + 2}") for i in range(self.srb_nums)]

    def rectify(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The alignment module: ``(rectified (B, C, h, w), control points (B, 20, 2))``."""
        if not self.stn:
            raise RuntimeError("this TSRN was built with stn=False")
        x = F.interpolate(x, STN_INPUT_SIZE, mode="bilinear", align_corners=True)
        _, ctrl_points = self.stn_head(x)
        rectified, _ = self.tps(x, ctrl_points)
        return rectified, ctrl_points

    def _use_fast(self, x: Tensor) -> bool:
        # Exporters and compilers see the reference path: its nn.GRU maps to one ONNX GRU
        # node, while the fast path is a Python loop inside a custom autograd Function.
        if torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling():
            return False
        if self.fast_path is not None:
            return self.fast_path
        # The fast kernels are written for float32; autocast (bf16) takes the module path.
        return x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, h, w) in [0, 1] -> (B, C, h*s, w*s) in [-1, 1] (tanh)."""
        if x.ndim != 4 or x.shape[1] != self.in_planes:
            raise ValueError(f"TSRN expects (B, {self.in_planes}, H, W) input, got {tuple(x.shape)}")
        if self.stn and (self.training or self.stn_at_test):
            x, _ = self.rectify(x)
        if self._use_fast(x):
            return self._forward_fast(x)
        return self._forward_reference(x)

    def _forward_reference(self, x: Tensor) -> Tensor:
        feat1 = self.block1(x)
        feat = feat1
        for block in self._srbs():
            feat = block(feat)
        feat = getattr(self, f"block{self.srb_nums + 2}")(feat)
        out = getattr(self, f"block{self.srb_nums + 3}")(feat1 + feat)
        return torch.tanh(out)

    def _forward_fast(self, x: Tensor) -> Tensor:
        # channels-last: faster oneDNN convolutions, and the GRU reads channel vectors
        # directly (no permute copies).
        x = x.contiguous(memory_format=torch.channels_last)
        feat1 = self.block1(x)
        feat = feat1
        for block in self._srbs():
            feat = block.forward_fast(feat)
        feat = getattr(self, f"block{self.srb_nums + 2}")(feat)
        feat = feat1 + feat
        tail = getattr(self, f"block{self.srb_nums + 3}")
        *ups, last = list(tail)
        for up in ups[:-1]:
            feat = fast_mish(up.pixel_shuffle(up.conv(feat)))
        final = ups[-1]
        # The last 9x9 conv runs on the pre-shuffle map with an equivalent sub-pixel kernel:
        # its 4 output channels become 16, which oneDNN handles far better, and the large
        # shuffled map is never materialised.
        r = final.pixel_shuffle.upscale_factor
        feat = fast_mish(final.conv(feat))
        weight, bias, pad = subpixel_conv_weight(last.weight, last.bias, r)
        out = F.pixel_shuffle(F.conv2d(feat, weight, bias, padding=pad), r)
        return torch.tanh(out).contiguous()


def load_official_tsrn(model: TSRN, path: str | Path) -> TSRN:
    """Load an official TextZoom TSRN checkpoint (``{'state_dict_G': ...}``) into ``model``.

    Accepts keys with or without a DataParallel ``module.`` prefix and BatchNorm buffers
    without ``num_batches_tracked`` (older checkpoints); anything else missing or
    unexpected, or a shape mismatch, raises :class:`tzbench.weights.WeightsError` naming the
    keys. The file is read with ``torch.load(weights_only=True)``.
    """
    state = load_state_dict_file(path, key="state_dict_G")
    return load_tsrn_state_dict(model, state, source=str(path))


def load_tsrn_state_dict(model: TSRN, state: Mapping[str, Tensor], source: str = "<state dict>") -> TSRN:
    """Strictly load an official-layout TSRN state dict (see :func:`load_official_tsrn`)."""
    state = strip_prefix(state)
    try:
        return load_strict(model, state, source=source)  # type: ignore[return-value]
    except WeightsError as exc:
        raise WeightsError(
            f"{exc} (expected an official TSRN checkpoint for "
            f"TSRN(mask={model.in_planes == 4}, stn={model.stn}, srb_nums={model.srb_nums}))"
        ) from exc
