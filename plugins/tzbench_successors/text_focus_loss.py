"""``text_focus``: the text-focus loss of Scene Text Telescope (Chen et al., CVPR 2021).

    loss = mse_weight * MSE(sr, hr)                       (all channels)
         + attention_weight * L1(A(hr), A(sr))            (position-aware module)
         + recognition_weight * WCE(P(sr or hr), label)   (content-aware module)

A and P are the cross-attention maps and the per-character logits of a frozen, teacher-forced
transformer recognizer (:mod:`tzbench_successors.text_focus_transformer`) reading the gray
image ``0.299 R + 0.587 G + 0.114 B`` of the first three channels. The label is lower-cased,
filtered to ``0-9a-z`` and ended with ``'-'``; the recognizer reads it shifted right behind
``'-'``. WCE is the CE with every class's exponential weighted by the reciprocal confusion
counts of the true character (a character the recognizer often mistakes for the truth weighs
less), averaged over all characters of the batch.

``ce_on``: the first release (2681d61) scored the CE on the HR prediction, which carries no
gradient to the SR network (FudanOCR issue #3); upstream fixed it in 9bd7824 to read SR. Both
are offered, SR by default; the choice is in the run's loss params.

Needs the official ``pretrain_transformer.pth`` and ``confuse.pkl`` (shipped with the authors'
TextZoom bundle). Without them ``text_focus=false`` gives the official MSE-only variant.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tzbench.home import tzbench_home
from tzbench.text import str_filt
from tzbench.weights import WeightsError
from tzbench_successors.params import CONFUSION_FILE, TRANSFORMER_FILE
from tzbench_successors.text_focus_transformer import ALPHABET, TextFocusTransformer, load_text_focus_transformer

__all__ = ["TextFocusLoss", "confusion_weights", "load_confusion", "weighted_cross_entropy", "encode_labels"]

_INDEX = {c: i for i, c in enumerate(ALPHABET)}
#: The pickled numpy pieces a released ``confuse.pkl`` may name; nothing else is unpickled.
_NUMPY_PICKLE = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                 ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
                 ("numpy._core.multiarray", "scalar")}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _NUMPY_PICKLE:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: only a numpy array is expected")
        return super().find_class(module, name)


def load_confusion(path: str | os.PathLike[str]) -> np.ndarray:
    """The 62x62 confusion counts (rows/columns: digits, A-Z, a-z) from ``.npy`` or the released
    ``.pkl`` (read by an unpickler that accepts numpy arrays only)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"text_focus: confusion matrix not found: {path} (the official confuse.pkl; "
                           "set the loss param 'confusion', or text_focus=false)")
    try:
        if path.suffix == ".npy":
            data = np.load(path, allow_pickle=False)
        else:
            with path.open("rb") as f:
                data = _NumpyOnlyUnpickler(f).load()
    except (pickle.UnpicklingError, ValueError, EOFError, OSError) as exc:
        raise WeightsError(f"text_focus: cannot read the confusion matrix {path}: {exc}") from exc
    data = np.asarray(data)
    if data.shape != (62, 62) or not np.issubdtype(data.dtype, np.number):
        raise WeightsError(f"text_focus: {path} holds a {data.dtype} array of shape {data.shape}, expected 62x62 counts")
    return data.astype(np.float64)


def confusion_weights(confusion: np.ndarray) -> Tensor:
    """(37, 37) CE weights from the 62x62 counts, as the official ``load_confuse_matrix``.

    Rows are reordered to the recognizer's classes (an all-ones row for '-' first, then digits,
    lower, upper) and a ones column is put first; columns keep the file's order. Entries become
    reciprocals (zero counts weigh 1). For a lower-case column j, an off-diagonal weight takes
    the larger of itself and column j + 26. The first 37 rows and columns are kept.
    """
    rows = np.concatenate([np.ones((1, 62)), confusion[:10], confusion[36:], confusion[10:36]], axis=0)
    table = np.concatenate([np.ones((63, 1)), rows], axis=1)
    with np.errstate(divide="ignore"):
        table = 1.0 / table
    table[np.isinf(table)] = 1.0
    w = torch.tensor(table, dtype=torch.float32)
    off_diag = ~torch.eye(63, dtype=torch.bool)[:, 11:37]
    w[:, 11:37] = torch.where(off_diag, torch.maximum(w[:, 11:37], w[:, 37:63]), w[:, 11:37])
    return w[:37, :37].contiguous()


def weighted_cross_entropy(logits: Tensor, target: Tensor, weights: Tensor) -> Tensor:
    """``mean_i -log(w[t_i, t_i] e^{z_i t_i} / sum_j w[t_i, j] e^{z_ij})`` for logits (N, 37).

    Evaluated through ``logsumexp`` (the official code exponentiates raw logits, which
    overflows above 88); the value is the same.
    """
    w = weights[target].to(logits)
    log_w = torch.log(w)
    picked = (log_w + logits).gather(1, target[:, None]).squeeze(1)
    return (torch.logsumexp(logits + log_w, dim=1) - picked).mean()


def encode_labels(labels: list[str], device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """``(lengths (B,), shifted input (B, L), targets (sum lengths,))`` of the labels.

    Each label is lower-cased and filtered to ``0-9a-z``, then ended with ``'-'`` (index 0);
    the input is ``'-'`` followed by the label without its end, zero-padded to the longest.
    """
    words = [str_filt(s, "lower") + "-" for s in labels]
    lengths = [len(w) for w in words]
    text_input = torch.zeros(len(words), max(lengths), dtype=torch.long)
    for i, w in enumerate(words):
        text_input[i, 1 : len(w)] = torch.tensor([_INDEX[c] for c in w[:-1]], dtype=torch.long)
    targets = torch.tensor([_INDEX[c] for w in words for c in w], dtype=torch.long)
    return torch.tensor(lengths, device=device), text_input.to(device), targets.to(device)


def _gray(x: Tensor) -> Tensor:
    return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def _resolve(given: str | None, default_name: str) -> Path:
    return Path(given) if given else tzbench_home() / "weights" / default_name


class TextFocusLoss(nn.Module):
    """The text-focus loss; ``forward(sr, hr, labels)`` -> scalar (see the module docstring).

    Parts: ``mse``, ``attention``, ``recognition`` (unweighted) and ``loss``. With
    ``text_focus=False`` only ``mse`` (weighted) is computed and no weights are read.

    The recognizer is frozen and kept out of ``state_dict()``/``parameters()``: it is neither
    optimised nor saved with the SR checkpoint, and it follows the inputs' device.
    """

    #: The runner passes the batch's labels to losses that set this.
    needs_labels = True

    def __init__(self, text_focus: bool = True, ce_on: str = "sr", mse_weight: float = 1.0,
                 attention_weight: float = 10.0, recognition_weight: float = 0.0005,
                 transformer_weights: str | None = None, confusion: str | None = None,
                 transformer: TextFocusTransformer | None = None, confusion_counts: np.ndarray | None = None) -> None:
        super().__init__()
        if ce_on not in ("sr", "hr"):
            raise ValueError(f"text_focus: ce_on must be 'sr' or 'hr', got {ce_on!r}")
        self.text_focus = text_focus
        self.ce_on = ce_on
        self.mse_weight, self.attention_weight, self.recognition_weight = mse_weight, attention_weight, recognition_weight
        self._parts: dict[str, Tensor] = {}
        if not text_focus:
            return
        if transformer is None:
            path = _resolve(transformer_weights, TRANSFORMER_FILE)
            if not path.is_file():
                raise WeightsError(f"text_focus needs the official transformer recognizer: {path} not found (set the "
                                   f"loss param 'transformer_weights', or text_focus=false for the MSE-only loss)")
            transformer = load_text_focus_transformer(TextFocusTransformer(), path)
        if confusion_counts is None:
            confusion_counts = load_confusion(_resolve(confusion, CONFUSION_FILE))
        transformer.eval().requires_grad_(False)
        self.__dict__["_reader"] = transformer  # not a submodule: never trained, saved or moved by .to()
        self.register_buffer("ce_weights", confusion_weights(confusion_counts), persistent=False)

    @property
    def parts(self) -> dict[str, float]:
        """The named terms of the last call, as Python floats."""
        return {k: float(v) for k, v in self._parts.items()}

    def _read(self, image: Tensor, text_input: Tensor) -> tuple[Tensor, Tensor]:
        reader: TextFocusTransformer = self._reader
        if next(reader.parameters()).device != image.device:
            reader.to(image.device)
        reader.eval()
        return reader(_gray(image).float(), text_input)

    def forward(self, sr: Tensor, hr: Tensor, labels: list[str] | None = None) -> Tensor:
        if sr.dim() != 4 or sr.shape != hr.shape:
            raise ValueError(f"text_focus expects two (B, C, H, W) tensors of the same shape, got "
                             f"{tuple(sr.shape)} and {tuple(hr.shape)}")
        mse = F.mse_loss(sr, hr)
        if not self.text_focus:
            loss = self.mse_weight * mse
            self._parts = {"mse": mse.detach(), "loss": loss.detach()}
            return loss
        if labels is None or len(labels) != sr.shape[0]:
            raise ValueError(f"text_focus needs one label per image (got {None if labels is None else len(labels)} "
                             f"for a batch of {sr.shape[0]})")
        lengths, text_input, targets = encode_labels(list(labels), sr.device)
        with torch.no_grad():
            hr_logits, hr_attention = self._read(hr, text_input)
        sr_logits, sr_attention = self._read(sr, text_input)
        attention = F.l1_loss(sr_attention, hr_attention)
        logits = sr_logits if self.ce_on == "sr" else hr_logits
        per_char = torch.cat([logits[i, : int(n)] for i, n in enumerate(lengths.tolist())])
        recognition = weighted_cross_entropy(per_char.float(), targets, self.ce_weights)
        loss = self.mse_weight * mse + self.attention_weight * attention + self.recognition_weight * recognition
        self._parts = {"mse": mse.detach(), "attention": attention.detach(), "recognition": recognition.detach(),
                       "loss": loss.detach()}
        return loss
