"""``perceptual``: distance between VGG19 activations (Johnson et al. 2016; SRGAN's VGG loss)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tzbench_losses.base import PartsLoss, check_pair
from tzbench_losses.vgg19 import layer_index, load_vgg19_features

__all__ = ["VGGFeatureExtractor", "PerceptualLoss"]

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class VGGFeatureExtractor(nn.Module):
    """Frozen VGG19 truncated after ``layer``; maps ``[0, 1]`` RGB to that activation.

    Raises WeightsError (naming the file to provide) when no VGG19 weights are found.
    """

    def __init__(self, weights: str | None = None, layer: str = "relu5_4", normalize: bool = True) -> None:
        super().__init__()
        net = load_vgg19_features(weights)
        # Layers past the compared activation never influence it: drop them to save compute.
        self.body = net.features[: layer_index(layer) + 1]
        for p in self.body.parameters():
            p.requires_grad_(False)
        self.body.eval()
        self.normalize = normalize
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> VGGFeatureExtractor:
        # The extractor is a fixed measuring device: it stays in eval mode.
        super().train(mode)
        self.body.eval()
        return self

    def forward(self, x: Tensor) -> Tensor:
        if self.normalize:
            x = (x - self.mean) / self.std
        return self.body(x)


class PerceptualLoss(PartsLoss):
    """``criterion(VGG(sr[:, :3]), VGG(hr[:, :3]))``, mean over the activation; parts: ``perceptual``.

    Args:
        weights: VGG19 state dict file; ``None`` looks at ``$TZBENCH_VGG_WEIGHTS`` then
            ``$TZBENCH_HOME/weights/vgg19.pth``. Missing weights are an error, never a
            silent fallback to random features.
        layer: compared ReLU activation (default ``relu5_4``, SRGAN's "VGG54").
        criterion: ``'l2'`` (MSE) or ``'l1'`` between the activations.
        normalize: apply ImageNet mean/std to the ``[0, 1]`` inputs (what VGG was trained on).
    """

    def __init__(self, weights: str | None = None, layer: str = "relu5_4", criterion: str = "l2",
                 normalize: bool = True) -> None:
        super().__init__()
        if criterion not in ("l1", "l2"):
            raise ValueError(f"criterion must be 'l1' or 'l2', got {criterion!r}")
        self.criterion = criterion
        self.vgg = VGGFeatureExtractor(weights, layer, normalize)

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        check_pair(sr, hr)
        f_sr = self.vgg(sr[:, :3])
        with torch.no_grad():
            f_hr = self.vgg(hr[:, :3])
        if self.criterion == "l2":
            loss = F.mse_loss(f_sr, f_hr)
        else:
            loss = F.l1_loss(f_sr, f_hr)
        self._record(perceptual=loss)
        return loss
