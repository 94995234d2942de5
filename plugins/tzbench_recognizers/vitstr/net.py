"""ViTSTR network: a timm :class:`~timm.models.vision_transformer.VisionTransformer` encoder
plus a linear read-out.

``tokens`` head (ViTSTR): the encoder's output sequence (class token first) is cut to its
first ``max_len`` tokens and each is classified into ``end`` (class 0) or a symbol; token i
reads character i. ``ctc`` head: the patch tokens are averaged over each column of the token
grid, giving one frame per patch column, classified with a CTC blank at class 0.
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["ViTSTR"]


class ViTSTR(nn.Module):
    """ViT encoder + per-token classifier.

    Args:
        num_classes: 1 + number of symbols (class 0: end for ``tokens``, blank for ``ctc``).
        head: ``"tokens"`` or ``"ctc"``.
        img_size, patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio: passed to
            timm's ``VisionTransformer`` (``num_classes=0``, ``global_pool=''``).
        max_len: tokens read by the ``tokens`` head (its longest word).

    ``forward`` maps ``(B, in_chans, H, W)`` to logits: ``(B, max_len, num_classes)`` for
    ``tokens``, time-major ``(W / patch_W, B, num_classes)`` for ``ctc``.
    """

    def __init__(
        self,
        num_classes: int = 37,
        head: str = "tokens",
        img_size: tuple[int, int] = (32, 128),
        patch_size: tuple[int, int] = (4, 8),
        in_chans: int = 3,
        embed_dim: int = 192,
        depth: int = 6,
        num_heads: int = 3,
        mlp_ratio: float = 4.0,
        max_len: int = 25,
    ) -> None:
        super().__init__()
        from timm.models.vision_transformer import VisionTransformer

        if head not in ("tokens", "ctc"):
            raise ValueError(f"ViTSTR: head must be 'tokens' or 'ctc', got {head!r}")
        h, w = img_size
        ph, pw = patch_size
        if h % ph or w % pw:
            raise ValueError(f"ViTSTR: img_size {img_size} is not a multiple of patch_size {patch_size}")
        self.grid = (h // ph, w // pw)
        n_tokens = 1 + self.grid[0] * self.grid[1]
        if head == "tokens" and max_len > n_tokens:
            raise ValueError(f"ViTSTR: max_len {max_len} exceeds the {n_tokens} encoder tokens")
        self.head_kind = head
        self.max_len = max_len
        self.img_size = (h, w)
        self.encoder = VisionTransformer(
            img_size=(h, w), patch_size=(ph, pw), in_chans=in_chans, num_classes=0, global_pool="",
            embed_dim=embed_dim, depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio, class_token=True,
        )
        self.head = nn.Linear(embed_dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.encoder.forward_features(x)  # (B, 1 + gh*gw, D), class token first
        if self.head_kind == "tokens":
            return self.head(tokens[:, : self.max_len])
        b, _, d = tokens.shape
        cols = tokens[:, 1:].reshape(b, self.grid[0], self.grid[1], d).mean(1)  # (B, gw, D)
        return self.head(cols).permute(1, 0, 2)
