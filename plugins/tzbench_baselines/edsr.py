"""EDSR (Lim et al., CVPRW 2017), the large model (32 blocks x 256 features), scale 2.

``sub_mean`` (a frozen 1x1 conv) -> bias-free ``conv_input`` -> residual blocks
(conv-ReLU-conv, scaled by 0.1, plus skip) -> ``conv_mid`` plus the global skip -> sub-pixel
x2 (``upscale``) -> ``conv_output`` -> ``add_mean`` (frozen 1x1 conv); no output activation.
The learnable convs start from N(0, sqrt(2 / (k * k * out_channels))), as in the official code.
"""

from __future__ import annotations

import torch
from torch import nn

from tzbench_baselines._common import check_input, init_conv_he_fan_out_

__all__ = ["EDSR", "MeanShift", "EDSRBlock", "DIV2K_RGB_MEAN"]

#: Constructor value of the mean-shift convs: the DIV2K RGB mean used by EDSR. Official
#: checkpoints overwrite it (the convs are in the state dict).
DIV2K_RGB_MEAN: tuple[float, float, float] = (0.4488, 0.4371, 0.4040)


class MeanShift(nn.Conv2d):
    """A frozen 1x1 conv that adds ``sign * mean`` per channel (weights and bias untrainable).

    The official model keeps these as parameters with ``requires_grad=False``: they count in
    ``parameters()`` and appear in the state dict, but an optimizer never moves them.
    """

    def __init__(self, mean: tuple[float, float, float], sign: int) -> None:
        super().__init__(3, 3, kernel_size=1)
        with torch.no_grad():
            self.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            self.bias.copy_(sign * torch.tensor(mean))
        self.weight.requires_grad_(False)
        self.bias.requires_grad_(False)


class EDSRBlock(nn.Module):
    """conv3x3 -> ReLU -> conv3x3, scaled by ``res_scale``, plus the identity (no bias, no BN)."""

    def __init__(self, channels: int, res_scale: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.relu(self.conv1(x))) * self.res_scale + x


class EDSR(nn.Module):
    """EDSR for 3-channel input, scale 2.

    Args:
        num_blocks: residual blocks (official 32).
        num_features: channels (official 256).
        res_scale: residual scaling (official 0.1).
    """

    in_channels: int = 3
    scale: int = 2

    def __init__(self, num_blocks: int = 32, num_features: int = 256, res_scale: float = 0.1) -> None:
        super().__init__()
        c = num_features
        self.sub_mean = MeanShift(DIV2K_RGB_MEAN, sign=-1)
        self.conv_input = nn.Conv2d(3, c, 3, padding=1, bias=False)
        self.residual = nn.Sequential(*(EDSRBlock(c, res_scale) for _ in range(num_blocks)))
        self.conv_mid = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.upscale = nn.Sequential(
            nn.Conv2d(c, c * self.scale**2, 3, padding=1, bias=False),
            nn.PixelShuffle(self.scale),
        )
        self.conv_output = nn.Conv2d(c, 3, 3, padding=1, bias=False)
        self.add_mean = MeanShift(DIV2K_RGB_MEAN, sign=1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw every learnable conv from N(0, sqrt(2 / (k * k * out_channels))).

        The official scheme (its loop would also zero biases and set BatchNorm to identity, but
        EDSR's learnable convs have no bias and it has no BatchNorm). Deliberate deviation: the
        official loop also matches the two mean-shift convs (they subclass ``Conv2d``) and
        overwrites them with random frozen colour mixes and zero bias; we keep them at their
        intended identity weight and -/+ DIV2K mean: they are frozen, so no optimiser would
        ever correct the random colour mixes, and the layers would no longer shift the mean.
        """
        for module in self.modules():
            if isinstance(module, nn.Conv2d) and not isinstance(module, MeanShift):
                init_conv_he_fan_out_(module)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` -> ``(B, 3, 2H, 2W)``."""
        check_input(x, 3, "edsr")
        out = self.conv_input(self.sub_mean(x))
        out = self.conv_mid(self.residual(out)) + out
        return self.add_mean(self.conv_output(self.upscale(out)))
