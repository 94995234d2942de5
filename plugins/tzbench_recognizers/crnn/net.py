"""CRNN network: a VGG-style CNN, two bidirectional LSTMs and per-frame CTC logits.

The module tree and parameter names reproduce the official crnn.pytorch model that TextZoom
loads from ``crnn.pth`` (``cnn.conv0.weight`` ... ``rnn.1.embedding.bias``, 49 entries,
8,331,301 parameters for ``CRNN(32, 1, 37, 256)``), so that file loads with strict keys.
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["BidirectionalLSTM", "CRNN"]

# (out_channels, kernel, padding) of conv0..conv6; BN follows conv2, conv4 and conv6 only.
_CONVS: tuple[tuple[int, int, int], ...] = (
    (64, 3, 1),
    (128, 3, 1),
    (256, 3, 1),
    (256, 3, 1),
    (512, 3, 1),
    (512, 3, 1),
    (512, 2, 0),
)
_BN_AFTER = frozenset({2, 4, 6})


class BidirectionalLSTM(nn.Module):
    """Time-major bidirectional LSTM followed by a per-frame linear layer.

    ``(T, B, n_in) -> (T, B, n_out)``; the forward and backward halves are concatenated
    before ``embedding``.
    """

    def __init__(self, n_in: int, n_hidden: int, n_out: int) -> None:
        super().__init__()
        self.rnn = nn.LSTM(n_in, n_hidden, bidirectional=True)
        self.embedding = nn.Linear(n_hidden * 2, n_out)

    def forward(self, x: Tensor) -> Tensor:
        recurrent, _ = self.rnn(x)
        t, b, h = recurrent.shape
        return self.embedding(recurrent.reshape(t * b, h)).view(t, b, -1)


class CRNN(nn.Module):
    """The CRNN recognizer of crnn.pytorch as TextZoom builds it.

    Args:
        imgH: input height; must be a multiple of 16 so the CNN ends at height 1.
        nc: input channels (1: gray).
        nclass: output classes including the CTC blank at index 0 (37 for 0-9a-z).
        nh: hidden size of each LSTM direction.

    ``forward`` maps ``(B, nc, imgH, W)`` to raw logits ``(T, B, nclass)`` (time-major,
    no softmax); T = 26 for W = 100.
    """

    def __init__(self, imgH: int = 32, nc: int = 1, nclass: int = 37, nh: int = 256) -> None:
        super().__init__()
        if imgH % 16 != 0:
            raise ValueError(f"CRNN: imgH must be a multiple of 16, got {imgH}")
        self.imgH, self.nc, self.nclass, self.nh = imgH, nc, nclass, nh
        cnn = nn.Sequential()
        c_in = nc
        for i, (c_out, k, p) in enumerate(_CONVS):
            cnn.add_module(f"conv{i}", nn.Conv2d(c_in, c_out, k, 1, p))
            if i in _BN_AFTER:
                cnn.add_module(f"batchnorm{i}", nn.BatchNorm2d(c_out))
            cnn.add_module(f"relu{i}", nn.ReLU(True))
            # Two square pools, then two that halve only the height (the padding keeps
            # the width at W/4 + 1 so that the final 2x2 conv yields W/4 + 1 - 1 frames).
            if i in (0, 1):
                cnn.add_module(f"pooling{i}", nn.MaxPool2d(2, 2))
            elif i == 3:
                cnn.add_module("pooling2", nn.MaxPool2d((2, 2), (2, 1), (0, 1)))
            elif i == 5:
                cnn.add_module("pooling3", nn.MaxPool2d((2, 2), (2, 1), (0, 1)))
            c_in = c_out
        self.cnn = cnn
        self.rnn = nn.Sequential(BidirectionalLSTM(512, nh, nh), BidirectionalLSTM(nh, nh, nclass))

    def features(self, x: Tensor) -> Tensor:
        """The CNN feature map ``(B, 512, 1, T)``."""
        return self.cnn(x)

    def forward(self, x: Tensor) -> Tensor:
        conv = self.cnn(x)
        if conv.shape[2] != 1:
            raise ValueError(f"CRNN: CNN output height must be 1, got {conv.shape[2]} (input {tuple(x.shape)})")
        seq = conv.squeeze(2).permute(2, 0, 1)  # (T, B, C)
        return self.rnn(seq)
