"""Training text recognizers (judges) here: ``tzbench train-recognizer crnn --data synth,wild``.

The trained network is the judge's own ``net`` (the official key layout), fed through the
judge's own :meth:`preprocess`, so a checkpoint written here is read by the judge exactly as
it was trained. Losses:

* ``crnn`` (and any CTC judge): CTC over the per-frame logits, blank = class 0;
* ``moran``: teacher-forced cross-entropy of both attention decoders (L2R on the word + ``$``,
  R2L on the reversed word + ``$``), the rectifier run as at inference;
* ``aster``: the official teacher-forced ``SequenceCrossEntropyLoss`` over voc ``all`` + EOS;
* a third-party judge is trainable when it has ``training_loss(images, labels) -> Tensor``
  (``vitstr`` does).

Runs are recorded in the store like SR runs (``kind="train-recognizer"``, the judge name in
``sr_model``, the data in ``benchmark``) with the loss and validation accuracy per evaluation
step and, at the end, the best checkpoint's word accuracy on each dataset's test split, on HR
images and on bicubic-upsampled LR images (TextZoom's rule: lower-case ``[0-9a-z]``, exact).

Checkpoints are tzbench checkpoints (safetensors + JSON, atomic) with ``kind: "recognizer"``;
judges accept them through their ``weights=`` param (see :func:`read_recognizer_weights`).

This module is the public face of recognizer training (tests, examples and the CLI import from
it); each part lives in a module of its own:

* :mod:`.train_config`: the config (``JudgeRef``, ``RecognizerTrainConfig``) and the outcome;
* :mod:`.objective`: what a step minimises (the judge's own loss, or CTC + distillation + deep
  supervision); :mod:`.ctc`: the CTC terms; the judges' side is the documented
  :class:`~tzbench_recognizers.common.TrainableRecognizer` protocol and its optional parts;
* :mod:`.augment`: image jitter and the bicubic LR view; :mod:`.schedule`: LR schedule, batch
  order; :mod:`.init`: fast initialisation; :mod:`.bn`: precise BN statistics;
* :mod:`.evaluation`: word accuracy and the test scores;
* :mod:`.loop`: steps, validation, best-checkpoint selection; :mod:`.trainer`: the run
  (:func:`train_recognizer`); :mod:`.run_record`: every store write of a run;
  :class:`~tzbench_recognizers.checkpoints.JudgeCheckpointWriter`: its checkpoints.
"""

from __future__ import annotations

from tzbench_recognizers.augment import augment_batch, bicubic_up
from tzbench_recognizers.bn import recalibrate_bn
from tzbench_recognizers.checkpoints import CHECKPOINT_FORMAT, CHECKPOINT_KIND
from tzbench_recognizers.ctc import FrameTeacher, ctc_loss_from_logits, ctc_targets, distillation_loss
from tzbench_recognizers.evaluation import AccuracyReport, read_accuracy
from tzbench_recognizers.init import kaiming_init
from tzbench_recognizers.objective import is_trainable, recognizer_loss
from tzbench_recognizers.schedule import schedule_factor
from tzbench_recognizers.train_config import JudgeRef, RecognizerTrainConfig, RecognizerTrainOutcome
from tzbench_recognizers.trainer import train_recognizer

__all__ = [
    "JudgeRef",
    "RecognizerTrainConfig",
    "RecognizerTrainOutcome",
    "AccuracyReport",
    "recognizer_loss",
    "is_trainable",
    "augment_batch",
    "bicubic_up",
    "read_accuracy",
    "schedule_factor",
    "kaiming_init",
    "recalibrate_bn",
    "train_recognizer",
    "ctc_targets",
    "ctc_loss_from_logits",
    "FrameTeacher",
    "distillation_loss",
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_KIND",
]
