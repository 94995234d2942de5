"""Shared machinery of the text-recognizer judges (CRNN, MORAN, ASTER, ...).

A judge wraps an ``nn.Module`` whose ``state_dict`` has exactly the official key layout (so
official checkpoints load strictly) and owns everything around it: preprocessing of SR
outputs, batched no-grad inference and the conversion of network outputs to the strings
that the TextZoom test loop scores.

Two preprocessing modes exist for every judge:

``legacy``
    what TextZoom's ``base.py`` feeds the recognizer (the published protocol); for CRNN and
    MORAN this is a bicubic resize of ``sr[:, :3]`` to 32x100 and ITU-R 601 gray, kept in
    ``[0, 1]``.
``native``
    what the recognizer's own repository feeds it (the range it was trained on), e.g.
    ``[-1, 1]`` for crnn.pytorch and MORAN.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tzbench.weights import load_strict

__all__ = [
    "LOWER_ALNUM",
    "TrainableRecognizer",
    "CTCStudent",
    "DeeplySupervised",
    "FramePosteriorTeacher",
    "as_ctc_student",
    "Mode",
    "MODES",
    "Recognizer",
    "check_images",
    "resize_rgb",
    "rgb_to_gray",
    "legacy_gray",
    "to_signed",
    "ctc_greedy_decode",
    "ids_to_string",
    "attention_decode",
    "cut_at",
]

#: The 36-symbol case-insensitive alphabet of the TextZoom judges (voc ``lower``).
LOWER_ALNUM = "0123456789abcdefghijklmnopqrstuvwxyz"

Mode = Literal["legacy", "native"]
MODES: tuple[str, ...] = ("legacy", "native")

# ITU-R 601 luma weights, as TextZoom's parse_crnn_data / parse_moran_data apply them.
_GRAY_WEIGHTS = (0.299, 0.587, 0.114)


# --------------------------------------------------------------------------- preprocessing


def check_images(images: Tensor) -> Tensor:
    """Validate a judge input batch ``(B, C>=3, H, W)`` of floats and return it.

    Extra channels (the TextZoom mask channel) are allowed; judges read ``[:, :3]``.
    """
    if not isinstance(images, Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.dim() != 4 or images.shape[1] < 3:
        raise ValueError(f"images must be (B, C>=3, H, W), got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise TypeError(f"images must be floating point in [0, 1], got dtype {images.dtype}")
    return images


def resize_rgb(images: Tensor, size: tuple[int, int], mode: str = "bicubic") -> Tensor:
    """Resize ``images[:, :3]`` to ``size`` = (H, W) the way TextZoom does.

    ``align_corners`` is left at torch's default (False), as in the official call.
    """
    return F.interpolate(images[:, :3], size, mode=mode)


def rgb_to_gray(rgb: Tensor) -> Tensor:
    """``(B, 3, H, W)`` -> ``(B, 1, H, W)`` with 0.299 R + 0.587 G + 0.114 B."""
    r, g, b = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
    # Same association order as the official expression so float32 results are bit-equal.
    return r * _GRAY_WEIGHTS[0] + g * _GRAY_WEIGHTS[1] + b * _GRAY_WEIGHTS[2]


def legacy_gray(images: Tensor, size: tuple[int, int] = (32, 100)) -> Tensor:
    """TextZoom's CRNN/MORAN input: bicubic ``sr[:, :3]`` to ``size``, then gray, in [0, 1]."""
    return rgb_to_gray(resize_rgb(check_images(images), size, mode="bicubic"))


def to_signed(x: Tensor) -> Tensor:
    """Map ``[0, 1]`` to ``[-1, 1]`` as torchvision's ``Normalize(0.5, 0.5)`` does."""
    return (x - 0.5) / 0.5


# --------------------------------------------------------------------------- decoding


def _rows(ids: Tensor | Sequence[Sequence[int]]) -> list[list[int]]:
    if isinstance(ids, Tensor):
        if ids.dim() == 1:
            ids = ids.unsqueeze(0)
        return [list(map(int, row)) for row in ids.tolist()]
    return [list(map(int, row)) for row in ids]


def ctc_greedy_decode(
    ids: Tensor | Sequence[Sequence[int]],
    alphabet: str = LOWER_ALNUM,
    raw: bool = False,
    blank_symbol: str = "-",
) -> list[str]:
    """Greedy CTC decoding of per-frame argmax ids, one row per sample ``(B, T)``.

    Class 0 is the blank and class ``i > 0`` is ``alphabet[i - 1]`` (crnn.pytorch's
    convention). ``raw=False`` collapses repeats then drops blanks (what the TextZoom test loop
    scores); ``raw=True`` maps every frame, showing blanks as ``blank_symbol``.
    """
    out: list[str] = []
    for row in _rows(ids):
        if raw:
            out.append("".join(blank_symbol if i == 0 else alphabet[i - 1] for i in row))
            continue
        chars: list[str] = []
        prev = 0
        for i in row:
            if i != 0 and i != prev:
                chars.append(alphabet[i - 1])
            prev = i
        out.append("".join(chars))
    return out


def ids_to_string(ids: Iterable[int], alphabet: str) -> str:
    """Map ids to symbols one to one (``alphabet[i]``), the attention decoders' convention."""
    return "".join(alphabet[int(i)] for i in ids)


def cut_at(text: str, end_symbol: str) -> str:
    """The part of ``text`` before the first ``end_symbol`` (all of it when absent)."""
    return text.split(end_symbol, 1)[0]


def attention_decode(
    ids: Tensor | Sequence[Sequence[int]], alphabet: str, end_symbol: str | None = None
) -> list[str]:
    """Decode attention-decoder ids ``(B, L)`` row by row, optionally cut at ``end_symbol``.

    With ``end_symbol=None`` the full ``L``-symbol strings come back (MORAN's
    ``sim_preds``); with ``end_symbol='$'`` each is cut before the first end symbol (what
    TextZoom's base.py scores for MORAN).
    """
    strings = [ids_to_string(row, alphabet) for row in _rows(ids)]
    if end_symbol is not None:
        strings = [cut_at(s, end_symbol) for s in strings]
    return strings


# --------------------------------------------------------------------------- training protocol


@runtime_checkable
class TrainableRecognizer(Protocol):
    """A judge ``tzbench train-recognizer`` can train (crnn, moran, aster, vitstr, third-party).

    ``training_loss(images, labels)`` returns a scalar loss of images ``(B, 3, H, W)`` in
    ``[0, 1]`` through the judge's own preprocessing, with gradients into :attr:`net`; each
    architecture's loss is its own method, so training never asks which class a judge is.
    Three optional protocols widen what training can do with it:

    * :class:`CTCStudent` (``ctc_logits``): a CTC student for distillation; the
      ``text_prior`` SR loss reads SR outputs through the same method;
    * :class:`FramePosteriorTeacher` (``frame_posteriors``): a distillation teacher (the ONNX
      judges ppocr and ppocrv2);
    * :class:`DeeplySupervised` (``logits_and_features`` and ``feature_size``): deep
      supervision of the CNN (crnn).
    """

    net: nn.Module

    def training_loss(self, images: Tensor, labels: list[str]) -> Tensor:
        """The loss to minimise on a batch and its labels."""
        ...


@runtime_checkable
class CTCStudent(Protocol):
    """A judge with per-frame CTC logits over ``charset`` (blank = class 0, class ``i + 1`` =
    ``charset[i]``). A judge whose configuration has none says so with ``has_ctc_logits = False``
    (vitstr's token head); :func:`as_ctc_student` reads both."""

    charset: str

    def ctc_logits(self, images: Tensor) -> Tensor:
        """Time-major logits ``(T, B, 1 + len(charset))`` of images in ``[0, 1]``, with gradients."""
        ...


@runtime_checkable
class DeeplySupervised(Protocol):
    """A CTC judge whose CNN features can be read out directly (training's auxiliary head)."""

    charset: str
    feature_size: int

    def logits_and_features(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Per-frame logits ``(T, B, 1 + len(charset))`` and the features ``(T, B, feature_size)``
        the recurrent layers read, both with gradients."""
        ...


@runtime_checkable
class FramePosteriorTeacher(Protocol):
    """A judge that exposes its per-frame CTC posteriors (a distillation teacher)."""

    def frame_posteriors(self, images: Tensor) -> tuple[Any, Sequence[str], int]:
        """``(probs (B, T, C) numpy array or tensor, charset of classes 1.., blank index)``."""
        ...


def as_ctc_student(rec: object) -> CTCStudent | None:
    """``rec`` as a :class:`CTCStudent` when it has usable per-frame logits, else ``None``."""
    if isinstance(rec, CTCStudent) and callable(rec.ctc_logits) and getattr(rec, "has_ctc_logits", True):
        return rec
    return None


# --------------------------------------------------------------------------- base class


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Recognizer:
    """Base class of a judge: an official-layout network plus its pre/post-processing.

    Subclasses set the class attributes and implement :meth:`build_net`,
    :meth:`preprocess`, :meth:`forward` (optional) and :meth:`decode`.

    Attributes:
        name: registry name of the judge (e.g. ``"crnn"``).
        charset: the symbols it can output (after its own string conversion).
        input_size: the (H, W) the network reads.
        weights_key: nested key of the official checkpoint (``None``: the file is the
            state dict itself, or a well-known wrapper key is detected).
        net: the ``nn.Module`` whose ``state_dict`` keys equal the official ones.
        mode: ``"legacy"`` (TextZoom's preprocessing) or ``"native"`` (the recognizer's own).
        device: where :attr:`net` lives; inputs are moved there.
        weights_path: the file loaded by :meth:`load_weights`, if any.

    Args:
        mode: preprocessing mode, see the module docstring.
        weights: optional path of an official checkpoint, loaded strictly at construction.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; ``None`` picks CUDA when available.
        batch_size: largest batch :meth:`recognize` sends through the network at once
            (``None``: the whole input).
    """

    name: ClassVar[str] = "recognizer"
    charset: ClassVar[str] = LOWER_ALNUM
    input_size: ClassVar[tuple[int, int]] = (32, 100)
    weights_key: ClassVar[str | None] = None
    #: The judge whose tzbench checkpoints fit (``None``: :attr:`name`); a judge that reads with
    #: another's trained weights (``crnn_tz`` with ``crnn``'s) names it here.
    weights_owner: ClassVar[str | None] = None

    def __init__(
        self,
        mode: Mode = "legacy",
        weights: str | Path | None = None,
        device: str | torch.device | None = None,
        batch_size: int | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"{self.name}: mode must be one of {MODES}, got {mode!r}")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"{self.name}: batch_size must be >= 1, got {batch_size}")
        self.mode: str = mode
        self.batch_size = batch_size
        self.device = torch.device(device) if device is not None else _default_device()
        self.net: nn.Module = self.build_net().to(self.device).eval()
        self.weights_path: Path | None = None
        if weights is not None:
            self.load_weights(weights)

    # -- to implement -----------------------------------------------------------------

    def build_net(self) -> nn.Module:
        """Construct the network with the official architecture and key layout."""
        raise NotImplementedError

    def preprocess(self, images: Tensor) -> Tensor:
        """Map ``(B, C>=3, H, W)`` images in ``[0, 1]`` to the network input (per :attr:`mode`)."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Any:
        """Run the network on a preprocessed batch; returns what :meth:`decode` consumes."""
        return self.net(x)

    def decode(self, output: Any) -> list[str]:
        """Convert the network output of one batch to the scored strings."""
        raise NotImplementedError

    # -- provided ---------------------------------------------------------------------

    @torch.no_grad()
    def recognize(self, images: Tensor) -> list[str]:
        """Strings for a batch of images ``(B, C>=3, H, W)`` in ``[0, 1]``.

        Runs in eval mode without gradients (the network's train/eval state is restored
        afterwards), in chunks of :attr:`batch_size`.
        """
        check_images(images)
        was_training = self.net.training
        self.net.eval()
        try:
            out: list[str] = []
            step = self.batch_size or max(1, images.shape[0])
            for start in range(0, images.shape[0], step):
                chunk = images[start : start + step].to(self.device, torch.float32)
                out.extend(self.decode(self.forward(self.preprocess(chunk))))
            return out
        finally:
            self.net.train(was_training)

    __call__ = recognize

    def load_weights(self, path: str | Path) -> Recognizer:
        """Load weights strictly: an official checkpoint or a tzbench one.

        Official files are read with ``weights_only`` (``module.`` tolerated); a tzbench
        checkpoint (safetensors, from ``tzbench train-recognizer``) is recognised by content
        and must belong to this judge (see :mod:`tzbench_recognizers.checkpoints`). Raises
        :class:`tzbench.weights.WeightsError` naming the file when it cannot be read safely,
        holds non-tensor objects, or does not fit the network's keys and shapes.
        """
        from tzbench_recognizers.checkpoints import read_judge_weights

        state = read_judge_weights(path, self.weights_owner or self.name, key=self.weights_key)
        load_strict(self.net, state, source=str(path))
        self.net.to(self.device)
        self.weights_path = Path(path)
        return self

    def to(self, device: str | torch.device) -> Recognizer:
        """Move the network to ``device``; later inputs follow it. Returns ``self``."""
        self.device = torch.device(device)
        self.net.to(self.device)
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mode={self.mode!r}, device={str(self.device)!r})"
