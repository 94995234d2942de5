"""``tpgsr_loss``: TPGSR's training loss, summed over the stages of a :class:`~.tpgsr.TPGSR`.

    loss = scale * sum_i [ ImageLoss(sr_i, hr)                                  (TextZoom's, via tsrn_loss)
                           + distill_weight * SemanticLoss(p_i, p_teacher(hr)) ]  (if distill)

``sr_i`` is stage i's output and ``p_i`` its prior generator's (T, B, 37) probabilities on the
stage input; ``p_teacher(hr)`` those of a *frozen* recognizer (eval mode, no gradient) on the HR
image, made through the core catalog like the prior generator (``crnn_tz`` by default, ``crnn``
with official weights: the official teacher is the pretrained CRNN the students start from).
``SemanticLoss`` is ``mean|p_teacher - p_i| + KL`` (element-mean; :func:`~.tpgsr.semantic_loss`).
The official loop weights the image and distillation terms by 100 each: ``scale=100``, or the
recipe's ``optim.loss_scale`` with the default ``scale=1``; ``distill_weight=1`` keeps their ratio.

The stage outputs and probabilities come from the TPGSR model's training forward, which leaves
them on its output (:class:`~.tpgsr.StageReadings`): the runner gives a loss only (sr, hr).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from tzbench_successors.tpgsr import StageReadings, make_prior_generator, semantic_loss

__all__ = ["TPGSRLoss"]


class TPGSRLoss(nn.Module):
    """TPGSR's image + distillation loss; ``forward(sr, hr)`` -> scalar (module docstring).

    Parts (unweighted, summed over stages): ``image``, ``distill`` (when ``distill``), ``loss``.

    Args:
        mse_weight, gp_weight: TextZoom's ``ImageLoss(gradient=True, [1, 1e-4])`` weights.
        distill: add the distillation term (official ``--use_distill``, on in the script).
        distill_weight: its weight relative to the image term (official: both x100).
        teacher: the frozen recognizer that reads HR (``crnn_tz`` or ``crnn``).
        teacher_weights: its weights file (else its default: shipped, or the home folder's).
        scale: multiplies the total.
    """

    def __init__(self, mse_weight: float = 1.0, gp_weight: float = 1e-4, distill: bool = True,
                 distill_weight: float = 1.0, teacher: str = "crnn_tz", teacher_weights: str | None = None,
                 scale: float = 1.0) -> None:
        super().__init__()
        from tzbench.api import get_catalog

        self.image = get_catalog().create("losses", "tsrn_loss", {"mse_weight": mse_weight, "gp_weight": gp_weight})
        self.distill, self.distill_weight, self.scale = distill, distill_weight, scale
        self.teacher_info: dict[str, str | None] = {}
        if distill:
            rec, self.teacher_info = make_prior_generator(teacher, teacher_weights, field="teacher_weights")
            rec.net.requires_grad_(False)
            # Not a submodule: the teacher is neither trained nor saved; it follows the inputs' device.
            self.__dict__["_teacher"] = rec
        self._parts: dict[str, Tensor] = {}

    @property
    def parts(self) -> dict[str, float]:
        """The named terms of the last call, as Python floats (empty before the first call)."""
        return {k: float(v) for k, v in self._parts.items()}

    def _teacher_probs(self, hr: Tensor) -> Tensor:
        teacher: Any = self._teacher
        if teacher.device != hr.device:
            teacher.to(hr.device)
        teacher.net.eval()  # BN in eval mode whatever the training loop does
        with torch.no_grad():
            return torch.softmax(teacher.ctc_logits(hr[:, :3]).float(), -1)

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        stages: StageReadings | None = getattr(sr, "tpgsr_stages", None)
        if self.distill and stages is None:
            raise ValueError("tpgsr_loss: distill=true needs the training output of the tpgsr model (it carries "
                             "the stages' prior probabilities); use distill=false for another model or in eval")
        outputs = stages.outputs if stages is not None else (sr,)
        image = sum((self.image(out, hr) for out in outputs), sr.new_zeros(()))
        terms = {"image": image}
        loss = image
        if self.distill and stages is not None:
            target = self._teacher_probs(hr)
            terms["distill"] = sum((semantic_loss(p.float(), target) for p in stages.probs), sr.new_zeros(()))
            loss = loss + self.distill_weight * terms["distill"]
        loss = loss * self.scale
        self._parts = {k: v.detach() for k, v in {**terms, "loss": loss}.items()}
        return loss
