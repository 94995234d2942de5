"""``text_prior``: an SR loss plus a text-prior term read by a frozen recognizer.

Pixel losses let a model sharpen an ambiguous stroke into the wrong letter ("banking" ->
"bonding"): the image moves closer to HR in L2 while the word becomes another one. TPGSR (Ma
et al., 2023) and TATT (Ma et al., CVPR 2022) add a term that compares what a recognizer
reads in the SR image with what it reads in HR. This loss is that term on its own: the KL
divergence between a frozen CTC judge's per-frame posteriors of HR (the target, no gradient)
and of SR, averaged over frames, added to a base SR loss. The judge is created through the
core catalog (no plugin imports another) and is never trained: its parameters are frozen and
it is not a submodule, so it is neither optimised nor saved in a checkpoint.

A model trained with a judge's readings is not independent of that judge: its accuracy under
the same judge is an optimistic figure (docs/losses.md); the other judges are the fair ones.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from tzbench_losses.base import PartsLoss, check_pair

__all__ = ["TextPriorLoss"]


class TextPriorLoss(PartsLoss):
    """``base(sr, hr) + weight * KL(p_judge(hr) || p_judge(sr))`` per frame, batch-averaged.

    Parts: the base loss's parts, ``text`` (the unweighted KL) and ``loss``.

    Args:
        base: name of the SR loss the term is added to (e.g. ``tsrn_loss``).
        base_params: its params.
        judge: a judge exposing ``ctc_logits(images) -> (T, B, C)`` (``crnn_tz``).
        weight: weight of the KL term.
        temperature: divides both logits before the softmax.
    """

    def __init__(self, base: str = "tsrn_loss", base_params: dict[str, Any] | None = None, judge: str = "crnn_tz",
                 weight: float = 0.01, temperature: float = 1.0) -> None:
        super().__init__()
        from tzbench.api import get_catalog

        catalog = get_catalog()
        if base == "text_prior":
            raise ValueError("text_prior: base must be another loss")
        self.base = catalog.create("losses", base, base_params or {})
        self.weight = weight
        self.temperature = temperature
        # Not an attribute nn.Module tracks: the judge is neither trained, moved by .to() of
        # the loss nor written into state_dict(); it follows the SR tensors' device instead.
        fields = catalog.spec("recognizers", judge).params.model_fields
        self.__dict__["_judge"] = catalog.create("recognizers", judge, {"device": "cpu"} if "device" in fields else {})
        if not callable(getattr(self._judge, "ctc_logits", None)):
            raise ValueError(f"text_prior: judge {judge!r} has no ctc_logits (a CTC judge such as crnn_tz is needed)")
        for p in self._judge.net.parameters():
            p.requires_grad_(False)
        self._judge.net.eval()

    def _reader(self, device: torch.device) -> Any:
        if self._judge.device != device:
            self._judge.to(device)
        self._judge.net.eval()  # BN in eval mode whatever the training loop does
        return self._judge

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        check_pair(sr, hr)
        base = self.base(sr, hr)
        judge = self._reader(sr.device)
        with torch.no_grad():
            target = F.log_softmax(judge.ctc_logits(hr[:, :3]).float() / self.temperature, dim=-1)
        pred = F.log_softmax(judge.ctc_logits(sr[:, :3]).float() / self.temperature, dim=-1)
        text = F.kl_div(pred, target, log_target=True, reduction="none").sum(-1).mean()
        loss = base + self.weight * text
        # The base's terms as the tensors it recorded: reading .parts would sync the device every step.
        base_parts = self.base._parts if isinstance(self.base, PartsLoss) else {}
        self._record(**{k: v for k, v in base_parts.items() if k != "loss"},
                     text=text, loss=loss)
        return loss
