"""Common base of the built-in losses: shape checks and the ``.parts`` log record."""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["PartsLoss", "check_pair"]


def check_pair(sr: Tensor, hr: Tensor) -> None:
    """Raise ValueError unless ``sr`` and ``hr`` are same-shaped ``(B, C, H, W)`` tensors."""
    if sr.dim() != 4 or sr.shape != hr.shape:
        raise ValueError(
            f"loss expects two (B, C, H, W) tensors of the same shape, got {tuple(sr.shape)} and {tuple(hr.shape)}"
        )


class PartsLoss(nn.Module):
    """An ``nn.Module`` loss ``forward(sr, hr) -> scalar`` that records its named terms.

    Subclasses call :meth:`_record` with the unweighted terms; :attr:`parts` returns them as
    floats. The terms are kept as detached tensors until read, so a training step that does
    not log does not wait for the device.
    """

    def __init__(self) -> None:
        super().__init__()
        self._parts: dict[str, Tensor] = {}

    def _record(self, **terms: Tensor) -> None:
        self._parts = {k: v.detach() for k, v in terms.items()}

    @property
    def parts(self) -> dict[str, float]:
        """The named terms of the last call, as Python floats (empty before the first call)."""
        return {k: float(v) for k, v in self._parts.items()}
