"""TBSRN: Transformer-Based Super-Resolution Network (Chen et al., "Scene Text Telescope:
Text-Focused Scene Image Super-Resolution", CVPR 2021), with the official state-dict layout.

Architecture (scale 2, 16x64 -> 32x128, C = 3, or 4 with the mask channel)::

    [train only] x -> STNHead (on the 16x64 input itself) -> 20 points -> TPS -> (16x64)
    block1  = Conv9x9(C -> 2h) + PReLU
    block2..block{n+1} = n self-attention residual blocks:
        r = BN(conv3x3(mish(BN(conv3x3(x)))))          (B, 2h, H, W)
        r = FeatureEnhancer(r over the H*W positions)  (one transformer encoder layer)
        out = x + r
    block{n+2} = Conv3x3 + BN
    block{n+3} = [Conv3x3(2h -> 8h) + PixelShuffle(2) + mish] * log2(scale) + Conv9x9(2h -> C)
    y = tanh(block{n+3}(block1 + block{n+2}))

FeatureEnhancer: the 2h feature channels of every position, concatenated with a 2h-channel
2-D sinusoidal positional encoding (half of it encodes x, half y), form 4h-d tokens;
``LN(t + MHA_4(t))``, then ``LN(t + FFN(t))`` (FFN width 4h, ReLU), then ``Linear(4h -> 2h)``.
The LayerNorm is the annotated-transformer one: unbiased std, eps added to the std.

Like the official code, each block still owns the two GRU blocks of TSRN's SRB (``gru1``,
``gru2``), every attention module an unused ``compress_attention_linear``, and the network a
stray ``conv``/``bn`` pair: none of them is used in the forward pass, but they are in the
official checkpoints and the parameter count. Here they are frozen (``requires_grad=False``),
so no optimiser or DDP waits for gradients that never come.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from tzbench.layers.recurrent import Mish, RowBiGRU
from tzbench.layers.tps import STNHead, TPSSpatialTransformer
from tzbench.layers.upsample import UpsampleBlock, upsample_stages
from tzbench.weights import load_state_dict_file, load_strict
from tzbench_successors.attention import LayerNorm, MultiHeadedAttention, PositionwiseFeedForward

__all__ = ["TBSRN", "FeatureEnhancer", "positional_encoding_2d", "load_official_tbsrn", "load_tbsrn_state_dict"]


def positional_encoding_2d(d_model: int, height: int, width: int) -> Tensor:
    """(d_model, height, width) sinusoids: channels [0, d/2) encode x, [d/2, d) encode y.

    Within each half, even channels are sines and odd ones cosines of the position times
    ``10000^(-2i/(d/2))``, as in the official ``positionalencoding2d``.
    """
    if d_model % 4:
        raise ValueError(f"the 2-D positional encoding needs a channel count divisible by 4, got {d_model}")
    half = d_model // 2
    div = torch.exp(torch.arange(0.0, half, 2) * -(math.log(10000.0) / half))
    x = torch.arange(0.0, width).unsqueeze(1) * div  # (W, half/2)
    y = torch.arange(0.0, height).unsqueeze(1) * div  # (H, half/2)
    pe = torch.zeros(d_model, height, width)
    pe[0:half:2] = torch.sin(x).t().unsqueeze(1).expand(-1, height, -1)
    pe[1:half:2] = torch.cos(x).t().unsqueeze(1).expand(-1, height, -1)
    pe[half::2] = torch.sin(y).t().unsqueeze(2).expand(-1, -1, width)
    pe[half + 1 :: 2] = torch.cos(y).t().unsqueeze(2).expand(-1, -1, width)
    return pe


class FeatureEnhancer(nn.Module):
    """One transformer encoder layer over the positions of a (B, C, H*W) feature map.

    The official module is written for C = 64 on a 16x64 map (4 heads over 128-d tokens); here
    the token width is 2C and the encoding is computed for the map's own (H, W), which is the
    same thing at the official size and lets CI-sized models run.
    """

    def __init__(self, channels: int = 64, heads: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        d_model = 2 * channels
        self.channels = channels
        self.multihead = MultiHeadedAttention(h=heads, d_model=d_model, dropout=dropout)
        self.mul_layernorm1 = LayerNorm(d_model)
        self.pff = PositionwiseFeedForward(d_model, d_model, dropout=dropout)
        self.mul_layernorm3 = LayerNorm(d_model)
        self.linear = nn.Linear(d_model, channels)

    def forward(self, feat: Tensor, height: int, width: int) -> Tensor:
        """(B, C, H*W) -> (B, C, H*W)."""
        pe = positional_encoding_2d(self.channels, height, width).to(feat)
        tokens = torch.cat([feat, pe.view(1, self.channels, -1).expand(feat.shape[0], -1, -1)], 1).transpose(1, 2)
        tokens = self.mul_layernorm1(tokens + self.multihead(tokens, tokens, tokens, need_weights=False)[0])
        tokens = self.mul_layernorm3(tokens + self.pff(tokens))
        return self.linear(tokens).transpose(1, 2)


_Mish = Mish


class _UnusedGruBlock(RowBiGRU):
    """TSRN's GRU block (1x1 conv + bidirectional GRU) as the official TBSRN keeps it: unused."""


class SelfAttentionResidualBlock(nn.Module):
    """TBSRN's residual block: conv-BN-mish-conv-BN, a FeatureEnhancer, a skip connection.

    The official class is ``RecurrentResidualBlock``; its GRU blocks are kept (unused, frozen)
    for the checkpoint layout. Every parameter of two or more dims starts Xavier-uniform, as
    the official constructor does.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.gru1 = _UnusedGruBlock(channels)
        self.prelu = _Mish()  # the official attribute name; a mish, without parameters
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)
        self.gru2 = _UnusedGruBlock(channels)
        self.feature_enhancer = FeatureEnhancer(channels)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        for unused in (self.gru1, self.gru2):
            unused.requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        residual = self.bn2(self.conv2(self.prelu(self.bn1(self.conv1(x)))))
        b, c, h, w = residual.shape
        residual = self.feature_enhancer(residual.reshape(b, c, h * w), h, w)
        return x + residual.reshape(b, c, h, w)


class TBSRN(nn.Module):
    """TBSRN super-resolution network, (B, C, H/s, W/s) -> (B, C, H, W) in [-1, 1].

    Args:
        scale_factor: upscaling factor, a power of two (2 in TextZoom).
        width, height: HR size; the TPS samples to (height/s, width/s).
        stn: build the TPS-STN (its keys are in the state dict); it runs in training only.
        srb_nums: number of self-attention residual blocks.
        mask: 4 input/output channels (RGB + binary mask) instead of 3.
        hidden_units: feature width ``2 * hidden_units`` (must be even: the 2-D encoding
            splits 2h channels in four).
        input_channel: input channels of the official, unused ``conv`` (kept for its keys).
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
        mask: bool = False,
        hidden_units: int = 32,
        input_channel: int = 3,
        stn_at_test: bool = False,
        grid_sample_align_corners: bool = False,
    ) -> None:
        super().__init__()
        upsample_blocks = upsample_stages(scale_factor)
        if hidden_units % 2:
            raise ValueError(f"hidden_units must be even (2-D positional encoding), got {hidden_units}")
        in_planes = 4 if mask else 3
        channels = 2 * hidden_units
        self.in_planes = self.in_channels = in_planes
        self.srb_nums = srb_nums
        self.stn = stn
        self.stn_at_test = stn_at_test

        # Unused in the official forward too; kept (frozen) for the official layout and count.
        self.conv = nn.Conv2d(input_channel, 3, 3, 1, 1)
        self.bn = nn.BatchNorm2d(3)
        self.relu = nn.ReLU()
        self.conv.requires_grad_(False)
        self.bn.requires_grad_(False)

        self.block1 = nn.Sequential(nn.Conv2d(in_planes, channels, kernel_size=9, padding=4), nn.PReLU())
        for i in range(srb_nums):
            setattr(self, f"block{i + 2}", SelfAttentionResidualBlock(channels))
        setattr(self, f"block{srb_nums + 2}",
                nn.Sequential(nn.Conv2d(channels, channels, kernel_size=3, padding=1), nn.BatchNorm2d(channels)))
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
            # telescope's head pools (1, 2) last, so it reads the 16x64 LR image directly
            self.stn_head = STNHead(in_planes=in_planes, num_ctrlpoints=20, activation=None, last_pool=(1, 2))

    def rectify(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The alignment module on the LR input as it is (no resize, unlike TSRN):
        ``(rectified (B, C, h, w), control points (B, 20, 2))``."""
        if not self.stn:
            raise RuntimeError("this TBSRN was built with stn=False")
        _, ctrl_points = self.stn_head(x)
        rectified, _ = self.tps(x, ctrl_points)
        return rectified, ctrl_points

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, h, w) in [0, 1] -> (B, C, h*s, w*s) in [-1, 1] (tanh)."""
        if x.ndim != 4 or x.shape[1] != self.in_planes:
            raise ValueError(f"TBSRN expects (B, {self.in_planes}, H, W) input, got {tuple(x.shape)}")
        if self.stn and (self.training or self.stn_at_test):
            x, _ = self.rectify(x)
        feat1 = self.block1(x)
        feat = feat1
        for i in range(self.srb_nums):
            feat = getattr(self, f"block{i + 2}")(feat)
        feat = getattr(self, f"block{self.srb_nums + 2}")(feat)
        return torch.tanh(getattr(self, f"block{self.srb_nums + 3}")(feat1 + feat))


def load_official_tbsrn(model: TBSRN, path: str | Path) -> TBSRN:
    """Load an official scene-text-telescope checkpoint (``{'state_dict_G': ...}``) into ``model``.

    Keys may carry a DataParallel ``module.`` prefix; BN buffers may lack
    ``num_batches_tracked``. Anything else missing or unexpected, or a shape mismatch, raises
    :class:`tzbench.weights.WeightsError` naming the keys. Read with ``weights_only=True``.
    """
    return load_tbsrn_state_dict(model, load_state_dict_file(path, key="state_dict_G"), source=str(path))


def load_tbsrn_state_dict(model: TBSRN, state: Mapping[str, Tensor], source: str = "<state dict>") -> TBSRN:
    """Strictly load an official-layout TBSRN state dict (see :func:`load_official_tbsrn`)."""
    expected = f"an official TBSRN checkpoint for TBSRN(mask={model.in_planes == 4}, stn={model.stn}, srb_nums={model.srb_nums})"
    return load_strict(model, state, source=source, expected=expected)  # type: ignore[return-value]
