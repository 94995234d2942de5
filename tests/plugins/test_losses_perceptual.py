"""VGG-based losses: weights come only from a user file, loaded safely and strictly; a
missing file is a clear error naming where to put it; SRResNet's loss trains offline only
when the perceptual term is switched off explicitly."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import pytest
import torch

from tzbench.specs import resolve_target
from tzbench.weights import WeightsError
from tzbench_losses.perceptual import PerceptualLoss
from tzbench_losses.plugin import register_losses
from tzbench_losses.srresnet_loss import SRResNetLoss
from tzbench_losses.vgg19 import VGG19Features, default_vgg_weights_path, layer_index, load_vgg19_features


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No VGG weights anywhere unless a test puts them there."""
    monkeypatch.setenv("TZBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TZBENCH_VGG_WEIGHTS", raising=False)
    return tmp_path / "home"


@pytest.fixture(scope="module")
def fake_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {k: v.clone() for k, v in VGG19Features().state_dict().items()}


@pytest.fixture(scope="module")
def fake_vgg(tmp_path_factory: pytest.TempPathFactory, fake_state: dict[str, torch.Tensor]) -> Path:
    path = tmp_path_factory.mktemp("vgg") / "vgg19_fake.pth"
    torch.save(fake_state, path)
    return path


def _pair() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.rand(2, 4, 32, 128, generator=g), torch.rand(2, 4, 32, 128, generator=g)


def test_layer_names() -> None:
    assert layer_index("relu1_1") == 1 and layer_index("relu2_2") == 8 and layer_index("relu5_4") == 35
    with pytest.raises(ValueError, match="relu5_4"):
        layer_index("conv5_4")


def test_keys_are_torchvision_layout() -> None:
    import torchvision

    ours = {k: tuple(v.shape) for k, v in VGG19Features().state_dict().items()}
    with torch.device("meta"):  # shapes only: skips initialising the 120M-parameter classifier
        reference = torchvision.models.vgg19(weights=None)
    tv_features = {k: tuple(v.shape) for k, v in reference.features.state_dict().items()}
    assert ours == {f"features.{k}": s for k, s in tv_features.items()}


def test_missing_weights_name_the_default_path(_isolated_home: Path) -> None:
    expected = default_vgg_weights_path()
    assert expected == _isolated_home / "weights" / "vgg19.pth"
    with pytest.raises(WeightsError) as err:
        PerceptualLoss()
    assert str(expected) in str(err.value)
    assert "TZBENCH_VGG_WEIGHTS" in str(err.value) and "never downloads" in str(err.value)


def test_missing_explicit_or_env_path_is_not_silently_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_vgg: Path, _isolated_home: Path
) -> None:
    # A good file at the default location must not hide a typo in an explicit path.
    _isolated_home.joinpath("weights").mkdir(parents=True)
    _isolated_home.joinpath("weights", "vgg19.pth").write_bytes(fake_vgg.read_bytes())
    typo = tmp_path / "vgg19_typo.pth"
    with pytest.raises(WeightsError, match="vgg19_typo.pth"):
        PerceptualLoss(weights=str(typo))
    monkeypatch.setenv("TZBENCH_VGG_WEIGHTS", str(typo))
    with pytest.raises(WeightsError, match="TZBENCH_VGG_WEIGHTS"):
        PerceptualLoss()
    monkeypatch.delenv("TZBENCH_VGG_WEIGHTS")
    assert PerceptualLoss().parts == {}  # the default location is used when nothing is named


def test_fake_weights_load_strictly_and_give_finite_loss(
    fake_vgg: Path, fake_state: dict[str, torch.Tensor]
) -> None:
    crit = PerceptualLoss(weights=str(fake_vgg), layer="relu3_4")
    # Exactly the file's values, truncated after relu3_4 (index 17).
    assert len(crit.vgg.body) == 18
    torch.testing.assert_close(crit.vgg.body[16].weight, fake_state["features.16.weight"], atol=0, rtol=0)
    assert not any(p.requires_grad for p in crit.parameters())
    sr, hr = _pair()
    sr.requires_grad_(True)
    loss = crit(sr, hr)
    assert loss.dim() == 0 and math.isfinite(loss.item()) and loss.item() > 0
    loss.backward()
    assert sr.grad is not None and sr.grad[:, :3].abs().sum() > 0
    assert sr.grad[:, 3].abs().sum() == 0  # VGG sees RGB only
    assert set(crit.parts) == {"perceptual"}
    assert crit(hr, hr).item() == 0.0
    crit.train()
    assert not crit.vgg.body.training


def test_env_and_prefixed_and_nested_files_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_state: dict[str, torch.Tensor]
) -> None:
    nested = tmp_path / "nested.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in fake_state.items()}}, nested)
    monkeypatch.setenv("TZBENCH_VGG_WEIGHTS", str(nested))
    net = load_vgg19_features()
    torch.testing.assert_close(net.state_dict()["features.0.bias"], fake_state["features.0.bias"])


def test_wrong_keys_or_shapes_refused(tmp_path: Path, fake_state: dict[str, torch.Tensor]) -> None:
    missing = dict(fake_state)
    del missing["features.34.weight"]
    torch.save(missing, tmp_path / "missing.pth")
    with pytest.raises(WeightsError, match="features.34.weight"):
        load_vgg19_features(tmp_path / "missing.pth")
    extra = dict(fake_state, **{"fc.weight": torch.zeros(2, 2)})
    torch.save(extra, tmp_path / "extra.pth")
    with pytest.raises(WeightsError, match="fc.weight"):
        load_vgg19_features(tmp_path / "extra.pth")
    bad_cls = dict(fake_state, **{"classifier.0.weight": torch.zeros(2, 2)})
    torch.save(bad_cls, tmp_path / "cls.pth")
    with pytest.raises(WeightsError, match="unexpected keys"):
        load_vgg19_features(tmp_path / "cls.pth")  # a partial classifier is not torchvision's


class _Payload:
    """Unpickling this would create a marker file: proof of code execution."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("fmt", ["torch.save", "plain pickle"])
def test_malicious_pickle_refused(tmp_path: Path, fmt: str) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "vgg19.pth"
    payload = {"features.0.weight": _Payload(marker)}
    if fmt == "torch.save":
        torch.save(payload, evil)
    else:
        with open(evil, "wb") as f:
            pickle.dump(payload, f, protocol=2)
    assert not marker.exists()
    with pytest.raises(WeightsError, match="refused"):
        PerceptualLoss(weights=str(evil))
    assert not marker.exists()


def test_srresnet_loss_needs_weights_unless_perceptual_off() -> None:
    spec = {s.name: s for s in register_losses()}["srresnet_loss"]
    params = spec.params()
    assert params.perceptual_weight > 0  # the paper's loss by default
    cls = resolve_target(spec.target)
    with pytest.raises(WeightsError, match="vgg19.pth"):
        cls(**params.model_dump())
    crit = cls(**spec.params(perceptual_weight=0).model_dump())
    assert crit.perceptual is None
    sr, hr = _pair()
    sr.requires_grad_(True)
    loss = crit(sr, hr)
    loss.backward()
    assert set(crit.parts) == {"mse", "tv"}
    assert loss.item() == pytest.approx(crit.parts["mse"] + 2e-8 * crit.parts["tv"], rel=1e-6)


def test_srresnet_loss_with_weights(fake_vgg: Path) -> None:
    crit = SRResNetLoss(vgg_weights=str(fake_vgg), vgg_layer="relu2_2")
    sr, hr = _pair()
    loss = crit(sr, hr)
    p = crit.parts
    assert set(p) == {"mse", "tv", "perceptual"} and p["perceptual"] > 0
    assert loss.item() == pytest.approx(p["mse"] + 2e-8 * p["tv"] + 6e-3 * p["perceptual"], rel=1e-5)
