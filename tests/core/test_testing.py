"""The public checks of ``tzbench.testing`` fail, naming the component and the broken contract.

Each broken component below breaks one contract the runner relies on; its well-behaved twin
passes, so the checks are neither vacuous nor over-strict. Targets point at this module
(pytest puts tests/core on ``sys.path``).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from tzbench.specs import DatasetSpec, LossSpec, RecognizerSpec, SRModelSpec
from tzbench.testing import check_dataset, check_loss, check_recognizer, check_sr_model

HERE = __name__


# ------------------------------------------------------------------------------------------ SR models


class Upsample(nn.Module):
    """A valid model: one conv, then x2 nearest upsampling."""

    def __init__(self, mask: bool = False, extra: bool = False, shape_bug: bool = False) -> None:
        super().__init__()
        c = 4 if mask else 3
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.unused = nn.Linear(2, 2) if extra else None
        self.shape_bug = shape_bug

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y if self.shape_bug else nn.functional.interpolate(y, scale_factor=2)


class MaskParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mask: bool = False
    extra: bool = False
    shape_bug: bool = False


class ChannelsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channels: int = 4


def _sr(**kw: Any) -> SRModelSpec:
    return SRModelSpec(name="up", target=f"{HERE}:Upsample", params=MaskParams, in_channels=None, **kw)


def test_a_valid_model_passes_both_channel_counts() -> None:
    check_sr_model(_sr())
    check_sr_model(_sr(), params={"mask": True})


@pytest.mark.parametrize(("spec", "params", "message"), [
    (_sr(), {"shape_bug": True}, r"sr model 'up': forward of \(2, 3, 16, 64\) gave .*expected \(2, 3, 32, 128\)"),
    (_sr(), {"extra": True}, r"sr model 'up': parameter 'unused.weight' gets no gradient"),
    (_sr(trainable=False), {}, r"sr model 'up': trainable=False but it has trainable parameters"),
    (SRModelSpec(name="up", target=f"{HERE}:Upsample", params=ChannelsParams, in_channels=None), {},
     r"in_channels=None means 'follows the mask param', but ChannelsParams has no 'mask' field"),
    (SRModelSpec(name="up", target=f"{HERE}:Upsample", params=MaskParams, in_channels=3), {},
     r"in_channels=3 is fixed, so its 'mask' param is ignored"),
])
def test_broken_models_are_named(spec: SRModelSpec, params: dict[str, Any], message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check_sr_model(spec, params=params)


def test_unused_prefixes_are_allowed_to_get_no_gradient() -> None:
    check_sr_model(_sr(), params={"extra": True}, unused=("unused.",))


# ------------------------------------------------------------------------------------------ recognizers


class Brightness:
    """Reads 'a' for a dark image, 'b' for a bright one; ``flaw`` breaks one contract."""

    charset = "ab"

    def __init__(self, flaw: str = "") -> None:
        self.flaw = flaw

    def recognize(self, images: torch.Tensor) -> list[str]:
        x = images if self.flaw == "mask" else images[:, :3]
        ref = x.mean() if self.flaw == "batch" else 0.5  # 'batch': a batch statistic leaks
        out = ["a" if float(m) < ref else "b" for m in x.mean((1, 2, 3))]
        if self.flaw == "charset":
            out = [s + "!" for s in out]
        return out[:1] if self.flaw == "length" else out


class FlawParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    flaw: str = ""


REC = RecognizerSpec(name="bright", target=f"{HERE}:Brightness", params=FlawParams, needs_weights=False)


def test_a_valid_recognizer_passes_and_returns_its_readings() -> None:
    images = torch.stack([torch.full((3, 32, 128), v) for v in (0.1, 0.9, 0.4, 0.6)])
    assert check_recognizer(REC, images=images) == ["a", "b", "a", "b"]


@pytest.mark.parametrize(("flaw", "message"), [
    ("length", r"recognizer 'bright': recognize\(\) of 4 images returned list of length 1"),
    ("charset", r"recognizer 'bright': output characters \['!'\] are outside its charset"),
    ("batch", r"recognizer 'bright': the first 1 image\(s\) read alone differ .*batch independence"),
    ("mask", r"recognizer 'bright': a 4th \(mask\) channel changed its reading"),
])
def test_broken_recognizers_are_named(flaw: str, message: str) -> None:
    images = torch.stack([torch.full((3, 32, 128), v) for v in (0.4, 0.9, 0.3, 0.2)])
    with pytest.raises(AssertionError, match=message):
        check_recognizer(REC, params={"flaw": flaw}, images=images)


# ------------------------------------------------------------------------------------------ losses


class Mse(nn.Module):
    """MSE; ``flaw`` breaks one contract."""

    def __init__(self, flaw: str = "") -> None:
        super().__init__()
        self.flaw = flaw
        self.parts: dict[str, float] = {}

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        d = (sr - hr).square()
        if self.flaw == "map":
            return d
        value = d.mean().detach() if self.flaw == "detached" else d.mean()
        self.parts = {"mse": float("nan") if self.flaw == "parts" else float(value.detach())}
        return value


class Labelled(Mse):
    """Needs the batch's words; refuses a call without them."""

    needs_labels = True

    def forward(self, sr: torch.Tensor, hr: torch.Tensor, labels: list[str] | None = None) -> torch.Tensor:
        assert labels is not None and len(labels) == sr.shape[0]
        return super().forward(sr, hr)


LOSS = LossSpec(name="mse", target=f"{HERE}:Mse", params=FlawParams)


def test_valid_losses_pass_with_and_without_labels() -> None:
    check_loss(LOSS)
    check_loss(LossSpec(name="labelled", target=f"{HERE}:Labelled", params=FlawParams))


@pytest.mark.parametrize(("flaw", "message"), [
    ("map", r"loss 'mse' on 3 channels: returned torch.Size\(\[2, 3, 32, 128\]\), expected a scalar tensor"),
    ("detached", r"loss 'mse' on 3 channels: the value does not depend on sr"),
    ("parts", r"loss 'mse' on 3 channels: .parts\['mse'\] = nan is not finite"),
])
def test_broken_losses_are_named(flaw: str, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check_loss(LOSS, params={"flaw": flaw})


# ------------------------------------------------------------------------------------------ datasets


class Pairs:
    """A provider of 3 constant pairs per split; ``flaw`` breaks one contract."""

    def __init__(self, mask: bool = False, flaw: str = "") -> None:
        self.mask, self.flaw = mask, flaw

    def subsets(self, split: str) -> list[str]:
        return ["easy", "medium", "hard"] if split == "test" or self.flaw == "subsets" else []

    def load(self, split: str, subset: str | None) -> list[dict[str, Any]]:
        c = 4 if self.mask and self.flaw != "mask" else 3
        hr_dtype = torch.float32 if self.flaw == "dtype" else torch.uint8
        return [{"lr": torch.zeros(c, 16, 64, dtype=torch.uint8), "hr": torch.zeros(c, 32, 128, dtype=hr_dtype),
                 "label": "word", "index": i} for i in range(3)]


class PairsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mask: bool = False
    flaw: str = ""


DATA = DatasetSpec(name="pairs", target=f"{HERE}:Pairs", params=PairsParams)


def test_a_valid_dataset_passes() -> None:
    check_dataset(DATA)


@pytest.mark.parametrize(("flaw", "message"), [
    ("subsets", r"dataset 'pairs': subsets\('train'\) = \['easy', 'medium', 'hard'\], expected \[\]"),
    ("dtype", r"dataset 'pairs' load\('train', None\)\[0\]: hr is torch.float32, expected a uint8 tensor"),
    ("mask", r"dataset 'pairs' \(mask=True\) load\('train', None\)\[0\]: lr shape \(3, 16, 64\), expected \(4, 16, 64\)"),
])
def test_broken_datasets_are_named(flaw: str, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check_dataset(DATA, params={"flaw": flaw})
