"""VGG19 convolutional stack with torchvision's state-dict keys, and its weight loading.

Only ``features`` is built (the classifier is never needed for a feature loss), under the
same keys as ``torchvision.models.vgg19`` (``features.<index>.weight``/``.bias``), so a
torchvision checkpoint loads with strict key and shape checks.

Weights are never downloaded. They are looked up, in order, at the explicit path, at
``$TZBENCH_VGG_WEIGHTS``, and at ``$TZBENCH_HOME/weights/vgg19.pth`` (``TZBENCH_HOME``
defaults to ``~/.cache/tzbench``), and read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from torch import nn

from tzbench.home import tzbench_home
from tzbench.weights import WeightsError, load_state_dict_file, load_strict, strip_prefix
from tzbench_losses.params import VGG19_FILE

__all__ = [
    "VGG19_CFG",
    "layer_index",
    "VGG19Features",
    "tzbench_home",
    "default_vgg_weights_path",
    "resolve_vgg_weights",
    "load_vgg19_features",
]

#: Configuration "E" of Simonyan & Zisserman: conv widths, "M" = 2x2 max-pool.
VGG19_CFG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
)

# The torchvision classifier that a full checkpoint also carries (dropped after checking).
_CLASSIFIER_SHAPES: dict[str, tuple[int, ...]] = {
    "classifier.0.weight": (4096, 25088), "classifier.0.bias": (4096,),
    "classifier.3.weight": (4096, 4096), "classifier.3.bias": (4096,),
    "classifier.6.weight": (1000, 4096), "classifier.6.bias": (1000,),
}


def _relu_names() -> dict[str, int]:
    """``'reluB_K'`` -> index of that ReLU in ``features``."""
    names: dict[str, int] = {}
    idx, block, k = 0, 1, 0
    for v in VGG19_CFG:
        if v == "M":
            idx += 1
            block, k = block + 1, 0
        else:
            k += 1
            names[f"relu{block}_{k}"] = idx + 1
            idx += 2
    return names


_RELU_INDEX = _relu_names()


def layer_index(layer: str) -> int:
    """Index in ``features`` of the ReLU named ``layer`` (e.g. ``'relu5_4'`` -> 35)."""
    try:
        return _RELU_INDEX[layer]
    except KeyError:
        raise ValueError(f"unknown VGG19 layer {layer!r}; expected one of {list(_RELU_INDEX)}") from None


class VGG19Features(nn.Module):
    """VGG19's ``features`` (16 conv3x3 + ReLU, 5 max-pools), torchvision key layout."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for v in VGG19_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                assert isinstance(v, int)
                layers += [nn.Conv2d(c_in, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                c_in = v
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def default_vgg_weights_path() -> Path:
    """``$TZBENCH_HOME/weights/vgg19.pth``."""
    return tzbench_home() / "weights" / VGG19_FILE  # the shared home folder of tzbench.home


def resolve_vgg_weights(path: str | os.PathLike[str] | None = None) -> Path:
    """The VGG19 weights file to use, or a WeightsError saying where to put one.

    An explicit ``path`` or ``$TZBENCH_VGG_WEIGHTS`` must exist (a typo is an error, never a
    silent switch to another file); otherwise the default location is used.
    """
    hint = (
        "Put torchvision's VGG19 ImageNet state dict (e.g. vgg19-dcbb9e9d.pth) there, or pass "
        "the loss param weights=<path> (srresnet_loss: vgg_weights=<path>) or set "
        "TZBENCH_VGG_WEIGHTS=<path>. tzbench never downloads it."
    )
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise WeightsError(f"VGG19 weights file not found: {p} (given as the weights param). {hint}")
        return p
    env = os.environ.get("TZBENCH_VGG_WEIGHTS")
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise WeightsError(f"VGG19 weights file not found: {p} (from TZBENCH_VGG_WEIGHTS). {hint}")
        return p
    p = default_vgg_weights_path()
    if not p.is_file():
        raise WeightsError(f"the perceptual loss needs VGG19 weights; no file at {p}. {hint}")
    return p


_FEATURE_KEY = re.compile(r"^features\.\d+\.(weight|bias)$")


def load_vgg19_features(path: str | os.PathLike[str] | None = None) -> VGG19Features:
    """Build :class:`VGG19Features` and load weights strictly from the resolved file.

    Accepted layouts: torchvision's full VGG19 state dict (the ``classifier.*`` entries are
    checked, then dropped) or its ``features.*`` entries alone; a ``module.`` prefix is
    tolerated. Anything else raises WeightsError naming the file and keys.
    """
    file = resolve_vgg_weights(path)
    state = strip_prefix(load_state_dict_file(file))
    extra = {k: v for k, v in state.items() if not _FEATURE_KEY.match(k)}
    if extra:
        if set(extra) != set(_CLASSIFIER_SHAPES):
            raise WeightsError(
                f"{file} is not a VGG19 state dict: unexpected keys {sorted(extra)[:8]}"
            )
        for k, v in extra.items():
            if tuple(v.shape) != _CLASSIFIER_SHAPES[k]:
                raise WeightsError(f"{file}: key {k!r} has shape {tuple(v.shape)}, VGG19 has {_CLASSIFIER_SHAPES[k]}")
        state = {k: v for k, v in state.items() if k not in extra}
    net = VGG19Features()
    load_strict(net, state, source=str(file))
    return net
