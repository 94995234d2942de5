"""Evaluation metrics: word accuracy, PSNR and SSIM, in the clean and the legacy protocol.

Two protocols are provided side by side, because tzbench reports both:

* **clean** (the default): PSNR and SSIM are computed *per image* on channels ``[:3]`` of
  inputs in ``[0, 1]`` and averaged over images; accuracy over several subsets is weighted by
  sample count (:func:`weighted_accuracy`).
* **legacy** (TextZoom's published numbers): one PSNR and one SSIM value per *batch*
  (:func:`psnr_legacy_batch`, :func:`ssim_legacy_batch`), the per-batch values averaged and
  rounded to 6 decimals, exactly like the official test loop. The batch value depends on how
  the test set was cut into batches, which is why it is not the default.

Word accuracy follows TextZoom's test rule: ``str_filt(pred, 'lower') ==
str_filt(label, 'lower')`` (case and punctuation are ignored).

:class:`MetricAccumulator` sums everything across batches so an evaluation loop only feeds
batches and reads a :class:`MetricSummary` at the end.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from tzbench.text import str_filt

__all__ = [
    "Direction",
    "MetricInfo",
    "METRICS",
    "metric_direction",
    "gaussian_window",
    "psnr_per_image",
    "ssim_per_image",
    "psnr_legacy_batch",
    "ssim_legacy_batch",
    "word_match",
    "word_accuracy",
    "weighted_accuracy",
    "macro_accuracy",
    "MetricSummary",
    "MetricAccumulator",
]

Direction = Literal["higher", "lower"]

#: SSIM constants of Wang et al. (2004) for a data range of 1, as TextZoom uses them.
SSIM_C1: float = 0.01**2
SSIM_C2: float = 0.03**2
SSIM_WINDOW: int = 11
SSIM_SIGMA: float = 1.5


# --------------------------------------------------------------------------------------------
# metadata


@dataclass(frozen=True)
class MetricInfo:
    """What a metric means for ranking: its direction, unit and a one-line description."""

    name: str
    direction: Direction
    unit: str = ""
    description: str = ""

    def better(self, a: float, b: float) -> bool:
        """Whether value ``a`` is strictly better than ``b`` for this metric."""
        return a > b if self.direction == "higher" else a < b


METRICS: dict[str, MetricInfo] = {
    "accuracy": MetricInfo("accuracy", "higher", "fraction", "word accuracy of a judge on SR output"),
    "psnr": MetricInfo("psnr", "higher", "dB", "peak signal-to-noise ratio on RGB, per image"),
    "ssim": MetricInfo("ssim", "higher", "", "structural similarity on RGB, per image"),
    "psnr_legacy": MetricInfo("psnr_legacy", "higher", "dB", "TextZoom per-batch PSNR, batch-averaged"),
    "ssim_legacy": MetricInfo("ssim_legacy", "higher", "", "TextZoom per-batch SSIM, batch-averaged"),
}


def metric_direction(name: str) -> Direction:
    """``'higher'`` or ``'lower'`` for a known metric name.

    Raises:
        KeyError: naming the known metrics when ``name`` is not one of them.
    """
    try:
        return METRICS[name].direction
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {sorted(METRICS)}") from None


# --------------------------------------------------------------------------------------------
# image metrics


def _check_pair(sr: Tensor, hr: Tensor) -> None:
    if sr.dim() != 4 or sr.shape != hr.shape:
        raise ValueError(f"expected two (B, C, H, W) tensors of the same shape, got {tuple(sr.shape)} "
                         f"and {tuple(hr.shape)}")
    if sr.shape[1] < 3:
        raise ValueError(f"expected at least 3 channels (RGB first), got {sr.shape[1]}")


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA, channels: int = 3) -> Tensor:
    """The normalised 2-D Gaussian SSIM window, shape ``(channels, 1, size, size)``, float32.

    The 1-D profile ``exp(-(x - size//2)^2 / (2 sigma^2))`` is normalised to sum 1 and the 2-D
    window is its outer product, repeated per channel for a depthwise convolution (this is
    TextZoom's ``ssim_window_3ch`` for the defaults).
    """
    x = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-(x**2) / (2.0 * sigma**2))
    g = g / g.sum()
    w2d = g[:, None] @ g[None, :]
    return w2d.expand(channels, 1, size, size).contiguous()


def _ssim_map(sr: Tensor, hr: Tensor, window: Tensor) -> Tensor:
    """Per-pixel SSIM map (B, C, H, W) with a depthwise Gaussian and zero padding."""
    c = sr.shape[1]
    pad = window.shape[-1] // 2
    # One depthwise convolution over the five statistics instead of five calls.
    stacked = torch.cat([sr, hr, sr * sr, hr * hr, sr * hr], dim=1)
    stats = F.conv2d(stacked, window.repeat(5, 1, 1, 1), padding=pad, groups=5 * c)
    mu1, mu2, e11, e22, e12 = stats.split(c, dim=1)
    mu1_sq, mu2_sq, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq = e11 - mu1_sq
    sigma2_sq = e22 - mu2_sq
    sigma12 = e12 - mu12
    num = (2 * mu12 + SSIM_C1) * (2 * sigma12 + SSIM_C2)
    den = (mu1_sq + mu2_sq + SSIM_C1) * (sigma1_sq + sigma2_sq + SSIM_C2)
    return num / den


def psnr_per_image(sr: Tensor, hr: Tensor, clamp: bool = False) -> Tensor:
    """PSNR in dB of each image, shape ``(B,)``, on channels ``[:3]`` of ``[0, 1]`` inputs.

    ``10 * log10(1 / mse)`` per image (the same as TextZoom's 255-scaled formula, evaluated per
    image instead of per batch); ``inf`` where an image is reproduced exactly. With ``clamp``
    the SR image is clipped to ``[0, 1]`` first, as an image written to disk would be.
    """
    _check_pair(sr, hr)
    a, b = sr[:, :3].float(), hr[:, :3].float()
    if clamp:
        a = a.clamp(0.0, 1.0)
    mse = (a - b).pow(2).flatten(1).mean(dim=1)
    # log10 of 0 gives -inf, so an exact match comes out as +inf without a special case.
    return -10.0 * torch.log10(mse)


def ssim_per_image(sr: Tensor, hr: Tensor, clamp: bool = False) -> Tensor:
    """SSIM of each image, shape ``(B,)``, on channels ``[:3]`` of ``[0, 1]`` inputs.

    Same window and constants as TextZoom (11x11 Gaussian, sigma 1.5, zero padding 5,
    C1 = 0.01^2, C2 = 0.03^2); the SSIM map is averaged per image rather than over the batch.
    """
    _check_pair(sr, hr)
    a, b = sr[:, :3].float(), hr[:, :3].float()
    if clamp:
        a = a.clamp(0.0, 1.0)
    window = gaussian_window(channels=3).to(a.device)
    return _ssim_map(a, b, window).flatten(1).mean(dim=1)


def psnr_legacy_batch(sr: Tensor, hr: Tensor) -> float:
    """TextZoom's ``calculate_psnr``: one PSNR for the whole batch, on channels ``[:3]``.

    ``20 * log10(255 / sqrt(mean((sr*255 - hr*255)^2)))`` with the mean over the batch, in
    float32 as the official code; Python ``inf`` when the mean squared error is 0.
    """
    _check_pair(sr, hr)
    mse = ((sr[:, :3] * 255 - hr[:, :3] * 255) ** 2).mean()
    if mse.item() == 0:
        return math.inf
    return float(20 * torch.log10(255.0 / torch.sqrt(mse)))


def ssim_legacy_batch(sr: Tensor, hr: Tensor) -> float:
    """TextZoom's ``SSIM()`` as the test loop calls it: the SSIM map averaged over the batch."""
    _check_pair(sr, hr)
    a, b = sr[:, :3], hr[:, :3]
    window = gaussian_window(channels=3).to(device=a.device, dtype=a.dtype)
    return float(_ssim_map(a, b, window).mean())


# --------------------------------------------------------------------------------------------
# word accuracy


def word_match(pred: str, label: str, rule: Literal["test", "val"] = "test") -> bool:
    """Whether a prediction counts as correct under TextZoom's rule.

    ``'test'`` (the published test loop): ``str_filt(pred,'lower') == str_filt(label,'lower')``.
    ``'val'`` (TextZoom's in-training validation): ``pred == str_filt(label,'lower')``, where
    the prediction is *not* filtered; kept only to reproduce legacy model selection.
    """
    target = str_filt(label, "lower")
    if rule == "test":
        return str_filt(pred, "lower") == target
    if rule == "val":
        return pred == target
    raise ValueError(f"unknown accuracy rule {rule!r}; expected 'test' or 'val'")


def word_accuracy(
    preds: Sequence[str], labels: Sequence[str], rule: Literal["test", "val"] = "test"
) -> list[bool]:
    """One correct/incorrect flag per sample (see :func:`word_match`)."""
    if len(preds) != len(labels):
        raise ValueError(f"{len(preds)} predictions for {len(labels)} labels")
    return [word_match(p, t, rule) for p, t in zip(preds, labels)]


def weighted_accuracy(counts: Mapping[str, tuple[int, int]]) -> float:
    """Overall accuracy over subsets ``{subset: (correct, n)}``, weighted by sample count.

    This is the clean protocol's "average": total correct over total samples. Returns ``nan``
    when there are no samples at all.
    """
    correct = sum(c for c, _ in counts.values())
    total = sum(n for _, n in counts.values())
    for name, (c, n) in counts.items():
        if not 0 <= c <= n:
            raise ValueError(f"subset {name!r}: correct={c} is not within [0, n={n}]")
    return correct / total if total else math.nan


def macro_accuracy(counts: Mapping[str, tuple[int, int]]) -> float:
    """Unweighted mean of the per-subset accuracies (every subset counts the same).

    Provided for comparison with papers that average the easy/medium/hard columns; the
    clean protocol uses :func:`weighted_accuracy`.
    """
    accs = [c / n for c, n in counts.values() if n]
    return sum(accs) / len(accs) if accs else math.nan


# --------------------------------------------------------------------------------------------
# accumulation across batches


@dataclass(frozen=True)
class MetricSummary:
    """Final metrics of one evaluated subset.

    ``psnr``/``ssim`` are means of per-image values (clean); ``psnr_legacy``/``ssim_legacy``
    the per-batch values averaged and rounded to 6 decimals (``None`` when not kept).
    ``accuracy``, ``correct`` and ``n_text`` are keyed by recognizer name.
    """

    n_images: int
    psnr: float
    ssim: float
    psnr_legacy: float | None = None
    ssim_legacy: float | None = None
    correct: dict[str, int] = field(default_factory=dict)
    n_text: dict[str, int] = field(default_factory=dict)
    accuracy: dict[str, float] = field(default_factory=dict)


class MetricAccumulator:
    """Sums per-image PSNR/SSIM and correct counts across batches.

    Feed each batch with :meth:`update_images` (SR output and HR target) and, per judge,
    :meth:`update_text` (its predictions and the labels); read :meth:`summary` at the end.

    Args:
        clamp: clip SR images to ``[0, 1]`` for the clean per-image metrics (the legacy
            values never clip, as TextZoom did not).
        keep_legacy: also record TextZoom's per-batch PSNR/SSIM.
        rule: the accuracy rule passed to :func:`word_match`.
    """

    def __init__(self, clamp: bool = True, keep_legacy: bool = True,
                 rule: Literal["test", "val"] = "test") -> None:
        self.clamp = clamp
        self.keep_legacy = keep_legacy
        self.rule: Literal["test", "val"] = rule
        self.n_images = 0
        self._psnr_sum = 0.0
        self._ssim_sum = 0.0
        self.legacy_psnr: list[float] = []
        self.legacy_ssim: list[float] = []
        self.correct: dict[str, int] = {}
        self.n_text: dict[str, int] = {}

    @torch.no_grad()
    def update_images(self, sr: Tensor, hr: Tensor) -> None:
        """Add one batch of SR outputs and HR targets, ``(B, C>=3, H, W)`` in ``[0, 1]``."""
        psnr = psnr_per_image(sr, hr, clamp=self.clamp)
        ssim = ssim_per_image(sr, hr, clamp=self.clamp)
        # Sum in float64 on the host: thousands of float32 additions would drift.
        self._psnr_sum += float(psnr.double().sum())
        self._ssim_sum += float(ssim.double().sum())
        self.n_images += sr.shape[0]
        if self.keep_legacy:
            self.legacy_psnr.append(psnr_legacy_batch(sr, hr))
            self.legacy_ssim.append(ssim_legacy_batch(sr, hr))

    def update_text(self, preds: Sequence[str], labels: Sequence[str], recognizer: str = "-") -> list[bool]:
        """Score one batch of predictions of ``recognizer``; returns the per-sample flags."""
        flags = word_accuracy(preds, labels, self.rule)
        self.correct[recognizer] = self.correct.get(recognizer, 0) + sum(flags)
        self.n_text[recognizer] = self.n_text.get(recognizer, 0) + len(flags)
        return flags

    @staticmethod
    def _legacy_mean(values: list[float]) -> float:
        # The official test loop: sum of the per-batch values over the batch count, 6 decimals.
        return round(sum(values) / len(values), 6) if values else math.nan

    def totals(self, recognizers: Sequence[str] = ()) -> list[float]:
        """The sums behind :meth:`summary` as one flat vector, so that processes can add theirs
        element-wise (one all-reduce) before :meth:`summary_of_totals` summarises the whole:
        ``[images, PSNR sum, SSIM sum, legacy PSNR sum, legacy SSIM sum, legacy batches]``, then
        ``correct, counted`` of each of ``recognizers`` (0, 0 for one never fed)."""
        out = [float(self.n_images), self._psnr_sum, self._ssim_sum, float(sum(self.legacy_psnr)),
               float(sum(self.legacy_ssim)), float(len(self.legacy_psnr))]
        for name in recognizers:
            out += [float(self.correct.get(name, 0)), float(self.n_text.get(name, 0))]
        return out

    @staticmethod
    def summary_of_totals(totals: Sequence[float], recognizers: Sequence[str] = (),
                          keep_legacy: bool = True) -> MetricSummary:
        """The :meth:`summary` of a :meth:`totals` vector (possibly summed over processes)."""
        n_images, psnr, ssim, legacy_psnr, legacy_ssim, batches = totals[:6]
        n = int(n_images)
        correct = {r: int(totals[6 + 2 * i]) for i, r in enumerate(recognizers)}
        n_text = {r: int(totals[7 + 2 * i]) for i, r in enumerate(recognizers)}
        return MetricSummary(
            n_images=n,
            psnr=psnr / n if n else math.nan,
            ssim=ssim / n if n else math.nan,
            # The official test loop's rule, as in _legacy_mean: the per-batch values' mean, 6 decimals.
            psnr_legacy=(round(legacy_psnr / batches, 6) if batches else math.nan) if keep_legacy else None,
            ssim_legacy=(round(legacy_ssim / batches, 6) if batches else math.nan) if keep_legacy else None,
            correct=correct,
            n_text=n_text,
            accuracy={k: (correct[k] / t if t else math.nan) for k, t in n_text.items()},
        )

    def summary(self) -> MetricSummary:
        """The metrics so far (``nan`` for image metrics when no images were fed)."""
        n = self.n_images
        return MetricSummary(
            n_images=n,
            psnr=self._psnr_sum / n if n else math.nan,
            ssim=self._ssim_sum / n if n else math.nan,
            psnr_legacy=self._legacy_mean(self.legacy_psnr) if self.keep_legacy else None,
            ssim_legacy=self._legacy_mean(self.legacy_ssim) if self.keep_legacy else None,
            correct=dict(self.correct),
            n_text=dict(self.n_text),
            accuracy={k: (self.correct[k] / t if t else math.nan) for k, t in self.n_text.items()},
        )
