"""The transformer recognizer behind Scene Text Telescope's text-focus loss (official layout).

It is a teacher-forced reader, not a judge: given a gray 32x128 image and the label (shifted
right behind a start symbol), it returns the per-character logits and the cross-attention map
of every character over the 8x32 feature positions. The text-focus loss compares the maps of
SR and HR and scores the logits with a confusion-weighted CE.

Architecture::

    encoder  ResNet on 1 channel: conv3x3(64)+BN+ReLU, pool 2x2, conv3x3(128)+BN+ReLU, pool 2x2,
             then 4 stages of basic blocks [1, 2, 5, 3] (128->256, 256, 256->512, 512), each
             followed by conv3x3+BN+ReLU (the last to 1024): (B, 1024, 8, 32), no more pooling
    tokens   [Embedding(37, 512) * sqrt(512) | sinusoid PE (512)] -> 1024-d, one per position
    decoder  LN(t + masked self-attention_16(t)); LN(t + cross-attention_16(t, features));
             LN(t + FFN(1024 -> 2048 -> 1024)); LayerNorm = unbiased std + eps on the std
    output   Linear(1024 -> 37) logits over '-0123456789abcdefghijklmnopqrstuvwxyz' ('-' = end)

The sinusoid table ``pe.pe`` (1, 5000, 512) is a persistent buffer in the official code, so it
is in the checkpoints; it is used as loaded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tzbench.weights import load_state_dict_file, load_strict
from tzbench_successors.attention import LayerNorm, MultiHeadedAttention, PositionwiseFeedForward, subsequent_mask

__all__ = ["TextFocusTransformer", "ALPHABET", "load_text_focus_transformer"]

#: The recognizer's classes: index 0 ('-') ends a word and also starts the shifted input.
ALPHABET = "-0123456789abcdefghijklmnopqrstuvwxyz"


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN + (downsampled) input, ReLU; convs with bias, stride 1."""

    def __init__(self, inplanes: int, planes: int, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=3, stride=1, padding=1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


def _stage(inplanes: int, planes: int, blocks: int) -> nn.Sequential:
    down = None if inplanes == planes else nn.Sequential(nn.Conv2d(inplanes, planes, 3, 1, 1), nn.BatchNorm2d(planes))
    return nn.Sequential(BasicBlock(inplanes, planes, down), *(BasicBlock(planes, planes) for _ in range(blocks - 1)))


class _ResNet(nn.Module):
    """The encoder CNN; attribute names are the official ones (``encoder.cnn.*``)."""

    def __init__(self, layers: tuple[int, int, int, int] = (1, 2, 5, 3)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 64, kernel_size=3, stride=1, padding=1)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 128, kernel_size=3, stride=1, padding=1)
        self.bn2 = nn.BatchNorm2d(128)
        widths = [(128, 256), (256, 256), (256, 512), (512, 512)]
        for i, ((cin, cout), n) in enumerate(zip(widths, layers), start=1):
            setattr(self, f"layer{i}", _stage(cin, cout, n))
            if i < 4:
                setattr(self, f"layer{i}_conv", nn.Conv2d(cout, cout, 3, 1, 1))
                setattr(self, f"layer{i}_bn", nn.BatchNorm2d(cout))
        self.layer4_conv2 = nn.Conv2d(512, 1024, 3, 1, 1)
        self.layer4_conv2_bn = nn.BatchNorm2d(1024)

    def forward(self, x: Tensor) -> Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        for i in range(1, 4):
            x = getattr(self, f"layer{i}")(x)
            x = F.relu(getattr(self, f"layer{i}_bn")(getattr(self, f"layer{i}_conv")(x)))
        x = self.layer4(x)
        return F.relu(self.layer4_conv2_bn(self.layer4_conv2(x)))


class _Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cnn = _ResNet()

    def forward(self, x: Tensor) -> Tensor:
        return self.cnn(x)


class _Embeddings(nn.Module):
    def __init__(self, d_model: int, vocab: int) -> None:
        super().__init__()
        self.lut = nn.Embedding(vocab, d_model)
        self.d_model = d_model

    def forward(self, x: Tensor) -> Tensor:
        return self.lut(x) * math.sqrt(self.d_model)


class _PositionalEncoding(nn.Module):
    """The 1-D sinusoid table as a persistent buffer (official key ``pe.pe``)."""

    def __init__(self, d_model: int = 512, max_len: int = 5000) -> None:
        super().__init__()
        position = torch.arange(0, max_len).unsqueeze(1).float()
        div = torch.exp(torch.arange(0, d_model, 2).float() * -(math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * div)
        pe[:, 1::2] = torch.cos(position * div)
        self.register_buffer("pe", pe.unsqueeze(0))


class _Decoder(nn.Module):
    def __init__(self, d_model: int = 1024, heads: int = 16, d_ff: int = 2048) -> None:
        super().__init__()
        self.mask_multihead = MultiHeadedAttention(h=heads, d_model=d_model)
        self.mul_layernorm1 = LayerNorm(d_model)
        self.multihead = MultiHeadedAttention(h=heads, d_model=d_model)
        self.mul_layernorm2 = LayerNorm(d_model)
        self.pff = PositionwiseFeedForward(d_model, d_ff)
        self.mul_layernorm3 = LayerNorm(d_model)

    def forward(self, text: Tensor, features: Tensor) -> tuple[Tensor, Tensor]:
        mask = subsequent_mask(text.shape[1], text.device)
        out = self.mul_layernorm1(text + self.mask_multihead(text, text, text, mask=mask)[0])
        b, c, h, w = features.shape
        memory = features.view(b, c, h * w).transpose(1, 2)
        aligned, attention = self.multihead(out, memory, memory)
        out = self.mul_layernorm2(out + aligned)
        return self.mul_layernorm3(out + self.pff(out)), attention


class TextFocusTransformer(nn.Module):
    """Teacher-forced transformer recognizer (62,314,951 parameters, 244 state-dict entries).

    ``forward(gray (B, 1, 32, 128), text_input (B, L) long)`` returns ``(logits (B, L, 37),
    attention (B, 16, L, 256))``. Its dropouts (p = 0.1) act only in train mode; the loss keeps
    it in eval mode.
    """

    def __init__(self) -> None:
        super().__init__()
        self.embedding_word = _Embeddings(512, len(ALPHABET))
        self.pe = _PositionalEncoding(512, 5000)
        self.encoder = _Encoder()
        self.decoder = _Decoder()
        self.generator_word = nn.Module()
        self.generator_word.proj = nn.Linear(1024, len(ALPHABET))
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, gray: Tensor, text_input: Tensor) -> tuple[Tensor, Tensor]:
        features = self.encoder(gray)
        emb = self.embedding_word(text_input)
        pos = self.pe.pe[:, : emb.shape[1]].expand(emb.shape[0], -1, -1).to(emb)
        out, attention = self.decoder(torch.cat([emb, pos], 2), features)
        return self.generator_word.proj(out), attention


def load_text_focus_transformer(model: TextFocusTransformer, state: Mapping[str, Tensor] | str | Path,
                                source: str | None = None) -> TextFocusTransformer:
    """Strictly load the official ``pretrain_transformer.pth`` (saved from DataParallel, so its
    keys carry ``module.``; both forms load) from a path or a state dict, ``weights_only=True``."""
    if isinstance(state, (str, Path)):
        source = source or str(state)
        state = load_state_dict_file(state)
    return load_strict(model, state, source=source or "<state dict>",  # type: ignore[return-value]
                       expected="the scene-text-telescope transformer recognizer")
