"""The ViTSTR judge: RGB 32x128 in ``[-1, 1]``, per-token or CTC read-out over ``0-9a-z``."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tzbench.text import str_filt
from tzbench_recognizers.common import Recognizer, check_images, ctc_greedy_decode, to_signed
from tzbench_recognizers.vitstr.params import CHARSET

__all__ = ["ViTSTRRecognizer"]


class ViTSTRRecognizer(Recognizer):
    """ViTSTR judge, trained here (``tzbench train-recognizer vitstr``).

    Preprocessing: ``images[:, :3]`` resized bilinearly to ``img_size`` when they differ (the
    HR size 32x128 needs none), mapped to ``[-1, 1]``. Decoding: ``tokens`` head: argmax per
    token, cut at the first end class; ``ctc`` head: greedy CTC.

    Args: the fields of :class:`~.params.ViTSTRParams` (``mode`` is fixed: there is no
    TextZoom legacy input for this judge).
    """

    name = "vitstr"
    charset = CHARSET

    def __init__(
        self,
        head: str = "tokens",
        img_size: tuple[int, int] = (32, 128),
        patch_size: tuple[int, int] = (4, 8),
        embed_dim: int = 192,
        depth: int = 6,
        num_heads: int = 3,
        mlp_ratio: float = 4.0,
        max_len: int = 25,
        weights: str | Path | None = None,
        device: str | torch.device | None = None,
        batch_size: int | None = None,
    ) -> None:
        self._arch = dict(head=head, img_size=tuple(img_size), patch_size=tuple(patch_size), embed_dim=embed_dim,
                          depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio, max_len=max_len)
        self.input_size = tuple(img_size)  # type: ignore[misc]  # per instance: it is a param here
        super().__init__(mode="native", weights=weights, device=device, batch_size=batch_size)

    @property
    def head(self) -> str:
        """``"tokens"`` or ``"ctc"``."""
        return str(self._arch["head"])

    def build_net(self) -> nn.Module:
        from tzbench_recognizers.vitstr.net import ViTSTR

        return ViTSTR(num_classes=len(CHARSET) + 1, in_chans=3, **self._arch)

    def preprocess(self, images: Tensor) -> Tensor:
        rgb = check_images(images)[:, :3]
        if tuple(rgb.shape[-2:]) != self.input_size:
            rgb = F.interpolate(rgb, self.input_size, mode="bilinear", align_corners=False)
        return to_signed(rgb)

    def decode(self, output: Tensor) -> list[str]:
        ids = output.argmax(-1)
        if self.head == "ctc":
            return ctc_greedy_decode(ids.transpose(0, 1), CHARSET)
        out = []
        for row in ids.tolist():
            chars = []
            for i in row:
                if i == 0:  # end
                    break
                chars.append(CHARSET[i - 1])
            out.append("".join(chars))
        return out

    # -- training (used by tzbench_recognizers.training) -----------------------------------

    @property
    def has_ctc_logits(self) -> bool:
        """Whether :meth:`ctc_logits` is available (``head='ctc'``); distillation needs it."""
        return self.head == "ctc"

    def ctc_logits(self, images: Tensor) -> Tensor:
        """Time-major per-frame logits ``(T, B, 37)`` of the ``ctc`` head, with gradients."""
        if self.head != "ctc":
            raise TypeError("vitstr: per-frame CTC logits exist only with head='ctc'")
        return self.net(self.preprocess(images))

    def token_targets(self, labels: list[str]) -> Tensor:
        """``(B, max_len)`` class ids: the word's symbols (``str_filt(.., 'lower')``, cut to
        ``max_len``), then the end class 0 on every remaining token."""
        index = {c: i + 1 for i, c in enumerate(CHARSET)}
        max_len = int(self._arch["max_len"])
        target = torch.zeros(len(labels), max_len, dtype=torch.long)
        for b, label in enumerate(labels):
            ids = [index[c] for c in str_filt(label, "lower") if c in index][:max_len]
            if ids:
                target[b, : len(ids)] = torch.tensor(ids)
        return target

    def training_loss(self, images: Tensor, labels: list[str]) -> Tensor:
        """Cross-entropy over the leading tokens (``tokens`` head) or CTC (``ctc`` head)."""
        if self.head == "ctc":
            from tzbench_recognizers.ctc import ctc_loss_from_logits

            return ctc_loss_from_logits(self.ctc_logits(images), labels, CHARSET)
        logits = self.net(self.preprocess(images))
        target = self.token_targets(labels).to(logits.device)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1))
