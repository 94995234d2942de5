"""ESPCN: feature extraction in LR space, then a learned sub-pixel convolution."""

from torch import Tensor, nn


class ESPCN(nn.Module):
    """(B, C, H, W) -> (B, C, H*scale, W*scale); C = 4 with ``mask``, else 3."""

    def __init__(self, mask: bool = False, features: int = 64, scale: int = 2) -> None:
        super().__init__()
        channels = 4 if mask else 3
        self.body = nn.Sequential(
            nn.Conv2d(channels, features, 5, padding=2), nn.Tanh(),
            nn.Conv2d(features, features // 2, 3, padding=1), nn.Tanh(),
            nn.Conv2d(features // 2, channels * scale * scale, 3, padding=1),
            nn.PixelShuffle(scale),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)
