"""CTC training terms of the recognizer judges: label targets, the CTC loss, frame distillation.

Shared by the CTC judges' own ``training_loss`` (crnn, vitstr's CTC head) and by
``train-recognizer``'s distillation and deep supervision; the blank is class 0 throughout
(crnn.pytorch's convention), class ``i + 1`` is ``charset[i]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from tzbench.text import str_filt
from tzbench_recognizers.common import FramePosteriorTeacher

__all__ = ["ctc_targets", "ctc_loss_from_logits", "FrameTeacher", "distillation_loss"]


def ctc_targets(labels: list[str], charset: str) -> tuple[Tensor, Tensor]:
    """Concatenated CTC targets (class ``i + 1`` for ``charset[i]``) and their lengths.

    Labels are reduced with ``str_filt(label, 'lower')`` first (TextZoom's scoring alphabet);
    characters outside ``charset`` are dropped.
    """
    index = {c: i + 1 for i, c in enumerate(charset)}
    ids: list[int] = []
    lengths: list[int] = []
    for label in labels:
        row = [index[c] for c in str_filt(label, "lower") if c in index]
        ids.extend(row)
        lengths.append(len(row))
    return torch.tensor(ids, dtype=torch.long), torch.tensor(lengths, dtype=torch.long)


def ctc_loss_from_logits(logits: Tensor, labels: list[str], charset: str) -> Tensor:
    """Mean CTC loss of time-major logits ``(T, B, 1 + len(charset))``, blank = 0.

    Labels the frames cannot hold (more symbols than frames allow) give an infinite loss,
    which is zeroed rather than allowed to poison the batch.
    """
    targets, lengths = ctc_targets(labels, charset)
    t, b, _ = logits.shape
    logp = logits.float().log_softmax(2)
    return F.ctc_loss(logp, targets.to(logits.device), torch.full((b,), t, dtype=torch.long),
                      lengths, blank=0, reduction="mean", zero_infinity=True)


class FrameTeacher:
    """Per-frame CTC posteriors of a teacher judge, folded onto a student's CTC classes.

    The student reads TextZoom's case-insensitive alphabet, so a teacher symbol maps to its
    lower-case form when the student has it and to the blank otherwise (the student must stay
    silent on punctuation and spaces, which TextZoom's labels drop). The teacher's frames are
    resampled linearly to the student's frame count. The teacher must be a
    :class:`~tzbench_recognizers.common.FramePosteriorTeacher` (the ONNX judges ppocr and
    ppocrv2 are).
    """

    def __init__(self, teacher: FramePosteriorTeacher | object, student_charset: str) -> None:
        self.teacher = teacher
        self.student_charset = student_charset
        self._map: Tensor | None = None

    def _posteriors(self, images: Tensor) -> tuple[Tensor, list[str]]:
        if isinstance(self.teacher, FramePosteriorTeacher):
            probs, charset, blank = self.teacher.frame_posteriors(images)
            if blank != 0:
                raise ValueError("FrameTeacher expects the teacher's blank at class 0")
            return torch.as_tensor(probs).float(), list(charset)
        raise TypeError(f"{type(self.teacher).__name__} cannot teach: it has no frame_posteriors(images)")

    def targets(self, images: Tensor, frames: int) -> Tensor:
        """Soft targets ``(frames, B, 1 + len(student_charset))`` (time-major, rows sum to 1)."""
        probs, charset = self._posteriors(images)
        if self._map is None or self._map.numel() != probs.shape[-1]:
            index = {c: i + 1 for i, c in enumerate(self.student_charset)}
            mapping = [0] + [index.get(c.lower(), 0) if len(c.lower()) == 1 else 0 for c in charset]
            mapping += [0] * (probs.shape[-1] - len(mapping))
            self._map = torch.tensor(mapping[: probs.shape[-1]], dtype=torch.long)
        b, t, _ = probs.shape
        folded = torch.zeros(b, t, 1 + len(self.student_charset)).index_add_(2, self._map, probs)
        if t != frames:
            folded = F.interpolate(folded.transpose(1, 2), size=frames, mode="linear", align_corners=False)
            folded = folded.transpose(1, 2)
        folded = folded / folded.sum(-1, keepdim=True).clamp_min(1e-8)
        return folded.transpose(0, 1).to(images.device)


def distillation_loss(logits: Tensor, soft: Tensor) -> Tensor:
    """Frame-wise cross-entropy of student logits ``(T, B, C)`` against soft targets, frame mean."""
    return -(soft * logits.float().log_softmax(-1)).sum(-1).mean()
