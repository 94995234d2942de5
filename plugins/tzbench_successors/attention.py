"""Transformer blocks shared by the successors' models (annotated-transformer style, as the
official scene-text-telescope code writes them, so that state-dict keys match).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["LayerNorm", "MultiHeadedAttention", "PositionwiseFeedForward", "subsequent_mask"]


def subsequent_mask(size: int, device: torch.device | None = None) -> Tensor:
    """(1, size, size) boolean mask, True where a position may attend (itself and earlier)."""
    return torch.tril(torch.ones(1, size, size, dtype=torch.bool, device=device))


class LayerNorm(nn.Module):
    """``a_2 * (x - mean) / (std + eps) + b_2`` over the last dim, std unbiased (not nn.LayerNorm)."""

    def __init__(self, features: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.a_2 = nn.Parameter(torch.ones(features))
        self.b_2 = nn.Parameter(torch.zeros(features))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        mean = x.mean(-1, keepdim=True)
        std = x.std(-1, keepdim=True)
        return self.a_2 * (x - mean) / (std + self.eps) + self.b_2


class MultiHeadedAttention(nn.Module):
    """Scaled dot-product attention with ``h`` heads; dropout on the attention weights.

    ``compress_attention_linear`` is never used (frozen); it exists because the official module has it.
    """

    def __init__(self, h: int, d_model: int, dropout: float = 0.1) -> None:
        super().__init__()
        if d_model % h:
            raise ValueError(f"d_model {d_model} is not divisible by {h} heads")
        self.d_k = d_model // h
        self.h = h
        self.linears = nn.ModuleList([nn.Linear(d_model, d_model) for _ in range(4)])
        self.dropout = nn.Dropout(p=dropout)
        self.compress_attention_linear = nn.Linear(h, 1)
        self.compress_attention_linear.requires_grad_(False)  # never used: no gradient will come

    def forward(self, query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None = None,
                need_weights: bool = True) -> tuple[Tensor, Tensor | None]:
        """(B, L, d) x3 -> (output (B, L, d), attention weights (B, h, L, S)); ``mask == 0`` hides.

        With ``need_weights=False`` the weights come back as None, and when no dropout is drawn
        (eval, or ``p == 0``) the product runs fused (``scaled_dot_product_attention``: 3.4x
        the written-out forward over TBSRN's 1,024 positions on the CPU, within float
        rounding of it). Training with dropout keeps the written-out order, so its draws match
        the official module's.
        """
        b = query.shape[0]
        q, k, v = (lin(t).view(b, -1, self.h, self.d_k).transpose(1, 2)
                   for lin, t in zip(self.linears, (query, key, value)))
        if not need_weights and not (self.training and self.dropout.p > 0):
            keep = None if mask is None else mask.unsqueeze(1) != 0
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
            return self.linears[3](out.transpose(1, 2).reshape(b, -1, self.h * self.d_k)), None
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.d_k)
        if mask is not None:
            scores = scores.masked_fill(mask.unsqueeze(1) == 0, float("-inf"))
        attn = self.dropout(F.softmax(scores, dim=-1))
        out = torch.matmul(attn, v).transpose(1, 2).reshape(b, -1, self.h * self.d_k)
        return self.linears[3](out), attn


class PositionwiseFeedForward(nn.Module):
    """``w_2(dropout(relu(w_1(x))))``."""

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.w_1 = nn.Linear(d_model, d_ff)
        self.w_2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.w_2(self.dropout(F.relu(self.w_1(x))))
