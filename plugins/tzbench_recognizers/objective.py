"""What one optimizer step of judge training minimises.

The judge's own ``training_loss`` (each architecture's loss is a method of its judge, see
:class:`~tzbench_recognizers.common.TrainableRecognizer`), or, with a distillation teacher or the
deep-supervision head, CTC over the judge's per-frame logits plus those weighted terms.
"""

from __future__ import annotations

from torch import Tensor, nn

from tzbench_recognizers.common import CTCStudent, DeeplySupervised, TrainableRecognizer, as_ctc_student
from tzbench_recognizers.ctc import FrameTeacher, ctc_loss_from_logits, distillation_loss

__all__ = ["is_trainable", "recognizer_loss", "StepObjective"]


def is_trainable(rec: object) -> bool:
    """Whether the judge is a :class:`~tzbench_recognizers.common.TrainableRecognizer`."""
    return isinstance(rec, TrainableRecognizer) and callable(getattr(rec, "training_loss", None))


def recognizer_loss(rec: object, images: Tensor, labels: list[str]) -> Tensor:
    """The training loss of judge ``rec`` on images ``(B, 3, H, W)`` in ``[0, 1]`` and their labels.

    Runs the judge's own preprocessing, so training and judging see the same input. The
    network must already be in train mode; gradients flow into ``rec.net``.
    """
    if not is_trainable(rec):
        raise TypeError(f"{type(rec).__name__} is not trainable: it has no training_loss(images, labels)")
    assert isinstance(rec, TrainableRecognizer)
    return rec.training_loss(images, labels)


class StepObjective:
    """The loss of one training batch: ``rec``'s own loss, or CTC + distillation + deep supervision.

    Args:
        rec: the judge being trained.
        teacher: frame targets to distil (needs a CTC student: ``ValueError`` otherwise).
        aux: a linear read-out of the judge's CNN features, trained alongside (needs a
            :class:`~tzbench_recognizers.common.DeeplySupervised` judge).
        distill_weight, aux_weight: weights of those two terms.
    """

    def __init__(self, rec: TrainableRecognizer, teacher: FrameTeacher | None = None, aux: nn.Module | None = None,
                 distill_weight: float = 1.0, aux_weight: float = 1.0) -> None:
        if teacher is not None and as_ctc_student(rec) is None:
            raise ValueError(f"distillation needs a CTC student; {type(rec).__name__} has no per-frame logits")
        if aux is not None and not isinstance(rec, DeeplySupervised):
            raise ValueError(f"deep supervision needs logits_and_features; {type(rec).__name__} has none")
        self.rec, self.teacher, self.aux = rec, teacher, aux
        # the classes of the CTC terms (only read when there is a teacher or an aux head)
        self.charset = rec.charset if isinstance(rec, (CTCStudent, DeeplySupervised)) else ""
        self.distill_weight, self.aux_weight = distill_weight, aux_weight

    def _logits(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        if self.aux is not None:
            assert isinstance(self.rec, DeeplySupervised)
            logits, features = self.rec.logits_and_features(images)
            return logits, self.aux(features)
        student = as_ctc_student(self.rec)
        assert student is not None
        return student.ctc_logits(images), None

    def __call__(self, images: Tensor, labels: list[str]) -> Tensor:
        """The scalar loss of ``images`` (on the judge's device, in ``[0, 1]``) and their labels."""
        if self.aux is None and self.teacher is None:
            return recognizer_loss(self.rec, images, labels)
        logits, aux_logits = self._logits(images)
        charset = self.charset
        soft = self.teacher.targets(images, logits.shape[0]) if self.teacher is not None else None
        loss = ctc_loss_from_logits(logits, labels, charset)
        if soft is not None:
            loss = loss + self.distill_weight * distillation_loss(logits, soft)
        if aux_logits is not None:
            aux_loss = distillation_loss(aux_logits, soft) if soft is not None else \
                ctc_loss_from_logits(aux_logits, labels, charset)
            loss = loss + self.aux_weight * aux_loss
        return loss
