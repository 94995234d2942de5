"""Built-in losses: TextZoom ImageLoss parity, values on hand-computed inputs, gradients,
``.parts`` and registration (the VGG-based losses are in test_losses_perceptual.py)."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError

from reference_cases import load_case, load_case_json
from tzbench.specs import resolve_target
from tzbench_losses.charbonnier import CharbonnierLoss
from tzbench_losses.gradient_profile import GradientProfileLoss, gradient_map
from tzbench_losses.l1 import L1Loss
from tzbench_losses.l2 import L2Loss
from tzbench_losses.plugin import register_losses
from tzbench_losses.tsrn_loss import TSRNLoss
from tzbench_losses.tv import TVLoss

TOL = {"atol": 1e-5, "rtol": 1e-5}  # reference README section 6: loss and metrics


# ---------------------------------------------------------------- parity with ImageLoss


@pytest.fixture(scope="module")
def imageloss() -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v) for k, v in load_case("imageloss").items()}


def test_tsrn_loss_matches_official_imageloss(imageloss: dict[str, torch.Tensor]) -> None:
    sr, hr = imageloss["sr"], imageloss["hr"]
    assert sr.shape == (2, 4, 32, 128)
    crit = TSRNLoss()
    loss = crit(sr, hr)
    assert loss.dim() == 0
    torch.testing.assert_close(loss, imageloss["loss"], **TOL)
    assert crit.parts["mse"] == pytest.approx(float(imageloss["mse_term"]), abs=1e-5, rel=1e-5)
    assert crit.parts["gp"] == pytest.approx(float(imageloss["gp_term"]), abs=1e-5, rel=1e-5)
    assert crit.parts["loss"] == pytest.approx(load_case_json("imageloss")["loss"], abs=1e-5, rel=1e-5)
    # TextZoom's loop optimises the loss times 100: the recipe's `scale`.
    torch.testing.assert_close(TSRNLoss(scale=100.0)(sr, hr), imageloss["train_loss_x100"], **TOL)


def test_gradient_map_matches_official(imageloss: dict[str, torch.Tensor]) -> None:
    torch.testing.assert_close(gradient_map(imageloss["sr"][:, :3]), imageloss["gradient_map_sr_rgb"], **TOL)


def test_gradient_profile_loss_is_the_gp_term(imageloss: dict[str, torch.Tensor]) -> None:
    sr, hr = imageloss["sr"], imageloss["hr"]
    gp = GradientProfileLoss()
    torch.testing.assert_close(gp(sr, hr), imageloss["gp_term"], **TOL)  # 'rgb' drops the mask
    assert GradientProfileLoss(channels="all")(sr, hr).item() != pytest.approx(float(imageloss["gp_term"]), abs=1e-4)


# ---------------------------------------------------------------- hand-computed values


def _const(value: float, c: int = 3) -> torch.Tensor:
    return torch.full((1, c, 2, 2), value)


def test_pixel_losses_on_known_input() -> None:
    sr, hr = _const(0.0), _const(0.5)
    assert L1Loss()(sr, hr).item() == pytest.approx(0.5)
    assert L2Loss()(sr, hr).item() == pytest.approx(0.25)
    assert CharbonnierLoss()(sr, hr).item() == pytest.approx(math.sqrt(0.25 + 1e-6), rel=1e-6)
    assert CharbonnierLoss(eps=0.5)(hr, hr).item() == pytest.approx(0.5)  # the eps floor


def test_tv_on_known_input() -> None:
    x = torch.tensor([[0.0, 1.0], [2.0, 3.0]]).expand(1, 3, 2, 2)  # rows differ by 2, columns by 1
    assert TVLoss()(x, x).item() == pytest.approx(4.0 + 1.0)
    assert TVLoss(power=1)(x, x).item() == pytest.approx(2.0 + 1.0)
    assert TVLoss()(_const(0.3), _const(0.0)).item() == 0.0  # flat image, HR ignored


def test_gradient_profile_on_known_input() -> None:
    # On a 2x2 constant c with zero padding every pixel sees c on one side and 0 on the other
    # in both directions: magnitude sqrt((c/2)^2 + (c/2)^2 + 1e-6).
    m = gradient_map(_const(1.0))
    torch.testing.assert_close(m, torch.full_like(m, math.sqrt(0.5 + 1e-6)))
    expected = math.sqrt(0.5 + 1e-6) - math.sqrt(1e-6)
    assert GradientProfileLoss()(_const(1.0), _const(0.0)).item() == pytest.approx(expected, rel=1e-6)


def test_tsrn_loss_weights_combine_terms() -> None:
    sr, hr = _const(1.0, c=4), _const(0.0, c=4)
    gp = math.sqrt(0.5 + 1e-6) - math.sqrt(1e-6)
    assert TSRNLoss()(sr, hr).item() == pytest.approx(1.0 + 1e-4 * gp, rel=1e-6)
    assert TSRNLoss(mse_weight=0.0, gp_weight=1.0)(sr, hr).item() == pytest.approx(gp, rel=1e-6)


# ---------------------------------------------------------------- named parts


CASES = [
    (L1Loss, {}, {"l1"}),
    (L2Loss, {}, {"mse"}),
    (CharbonnierLoss, {}, {"charbonnier"}),
    (TVLoss, {}, {"tv"}),
    (GradientProfileLoss, {}, {"gp"}),
    (TSRNLoss, {}, {"mse", "gp", "loss"}),
]


@pytest.mark.parametrize(("cls", "kwargs", "keys"), CASES, ids=[c[0].__name__ for c in CASES])
def test_parts_name_the_terms(cls: type, kwargs: dict, keys: set[str]) -> None:
    """The generic contract (scalar, gradient, finite parts) is tests/core/test_loss_contract.py's."""
    g = torch.Generator().manual_seed(0)
    crit = cls(**kwargs)
    assert crit.parts == {}
    crit(torch.rand(2, 4, 8, 16, generator=g), torch.rand(2, 4, 8, 16, generator=g))
    assert set(crit.parts) == keys
    assert all(type(v) is float and math.isfinite(v) for v in crit.parts.values())


def test_shape_mismatch_rejected() -> None:
    with pytest.raises(ValueError, match="same shape"):
        L1Loss()(torch.rand(1, 3, 4, 4), torch.rand(1, 4, 4, 4))


# ---------------------------------------------------------------- registration


def test_registered_losses() -> None:
    specs = {s.name: s for s in register_losses()}
    assert set(specs) == {"l1", "l2", "charbonnier", "tv", "gradient_profile", "tsrn_loss",
                          "perceptual", "srresnet_loss", "text_prior"}
    for spec in specs.values():
        with pytest.raises(ValidationError):
            spec.params(not_a_param=1)
    assert specs["charbonnier"].params().model_dump() == {"eps": 1e-3}
    assert specs["tsrn_loss"].params().model_dump() == {"mse_weight": 1.0, "gp_weight": 1e-4, "scale": 1.0}
    # The core's construction path, for every loss that needs no user file.
    for name in ("l1", "l2", "charbonnier", "tv", "gradient_profile", "tsrn_loss"):
        spec = specs[name]
        crit = resolve_target(spec.target)(**spec.params().model_dump())
        assert isinstance(crit, torch.nn.Module)
        assert crit(_const(0.2, 4), _const(0.1, 4)).dim() == 0
