"""The MORAN judge: TextZoom's MORAN evaluation path around :class:`~.net.MORAN`."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tzbench.text import str_filt
from tzbench_recognizers.common import Mode, Recognizer, attention_decode, legacy_gray, to_signed
from tzbench_recognizers.moran.params import ALPHABET, CHARSET, END_SYMBOL

__all__ = ["MORANRecognizer"]


class MORANRecognizer(Recognizer):
    """MORAN judge: gray 32x100 input, rectify (with the enhance pass), 20-step greedy decoding.

    ``recognize`` returns the left-to-right decoder's strings cut at the first ``'$'``, which
    is what TextZoom's test loop scores (the right-to-left decoder runs, as in the official
    model, but its output is not used). Preprocessing: ``legacy`` is TextZoom's
    ``parse_moran_data`` (bicubic ``sr[:, :3]`` to 32x100, 0.299/0.587/0.114 gray, in
    ``[0, 1]``); ``native`` additionally maps to ``[-1, 1]``, MORAN's training range.

    Args:
        grid_sample_align_corners: see :class:`~.net.MORN`.
        max_steps: decoding steps (TextZoom: 20).
        mode, weights, device, batch_size: see :class:`tzbench_recognizers.common.Recognizer`.
    """

    name = "moran"
    charset = CHARSET
    input_size = (32, 100)

    def __init__(
        self,
        mode: Mode = "legacy",
        grid_sample_align_corners: bool = True,
        max_steps: int = 20,
        weights: str | Path | None = None,
        device: str | torch.device | None = None,
        batch_size: int | None = None,
    ) -> None:
        if max_steps < 1:
            raise ValueError(f"moran: max_steps must be >= 1, got {max_steps}")
        self._init_align_corners = bool(grid_sample_align_corners)
        self.max_steps = max_steps
        super().__init__(mode=mode, weights=weights, device=device, batch_size=batch_size)

    def build_net(self) -> nn.Module:
        from tzbench_recognizers.moran.net import MORAN

        return MORAN(
            nc=1,
            nclass=len(ALPHABET),
            nh=256,
            targetH=32,
            targetW=100,
            BidirDecoder=True,
            grid_sample_align_corners=self._init_align_corners,
        )

    @property
    def grid_sample_align_corners(self) -> bool:
        """``align_corners`` of MORN's ``grid_sample`` calls; setting it switches the network."""
        return bool(self.net.grid_sample_align_corners)

    @grid_sample_align_corners.setter
    def grid_sample_align_corners(self, value: bool) -> None:
        self.net.grid_sample_align_corners = bool(value)

    def preprocess(self, images: Tensor) -> Tensor:
        gray = legacy_gray(images, self.input_size)
        return gray if self.mode == "legacy" else to_signed(gray)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        return self.net(x, num_steps=self.max_steps)

    def decode(self, output: tuple[Tensor, ...]) -> list[str]:
        l2r = output[0]  # (B * steps, classes), batch-major
        ids = l2r.argmax(1).view(-1, self.max_steps)
        return attention_decode(ids, ALPHABET, end_symbol=END_SYMBOL)

    def training_loss(self, images: Tensor, labels: list[str]) -> Tensor:
        """Teacher-forced cross-entropy of both attention decoders (the word + ``$``, and
        reversed), on this judge's own preprocessing; gradients flow into :attr:`net`."""
        net = self.net
        index = {c: i for i, c in enumerate(ALPHABET)}
        end = index[END_SYMBOL]
        max_len = self.max_steps - 1
        words = [[index[c] for c in str_filt(w, "lower") if c in index][:max_len] for w in labels]
        _, seq = net.ASRN.features(net.MORN(self.preprocess(images), enhance=1))
        total = images.new_zeros(())
        decoders = [(net.ASRN.attentionL2R, False), (net.ASRN.attentionR2L, True)] if net.ASRN.BidirDecoder \
            else [(net.ASRN.attention, False)]
        for decoder, reverse in decoders:
            rows = [(w[::-1] if reverse else w) + [end] for w in words]
            steps = max(len(r) for r in rows)
            target = torch.full((len(rows), steps), -100, dtype=torch.long)
            for i, r in enumerate(rows):
                target[i, : len(r)] = torch.tensor(r)
            target = target.to(images.device)
            hidden = seq.new_zeros(seq.shape[1], decoder.hidden_size)
            prev = torch.zeros(seq.shape[1], dtype=torch.long, device=images.device)  # row 0 = start
            logits = []
            for s in range(steps):
                hidden, _ = decoder.attention_cell(hidden, seq, decoder.char_embeddings.index_select(0, prev))
                logits.append(decoder.generator(hidden))
                # teacher forcing: the next input is the true symbol (embedding row = class + 1)
                prev = target[:, s].clamp(min=0) + 1
            out = torch.stack(logits, 1)
            total = total + F.cross_entropy(out.reshape(-1, out.shape[-1]).float(), target.reshape(-1), ignore_index=-100)
        return total
