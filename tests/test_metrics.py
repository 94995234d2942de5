"""tzbench.metrics: TextZoom parity of the legacy metrics, the clean per-image metrics against
a plain per-image loop, the accuracy rule and the accumulator."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view

from tzbench.metrics import (
    METRICS,
    MetricAccumulator,
    gaussian_window,
    macro_accuracy,
    metric_direction,
    psnr_legacy_batch,
    psnr_per_image,
    ssim_legacy_batch,
    ssim_per_image,
    weighted_accuracy,
    word_accuracy,
    word_match,
)
from reference_cases import load_case, load_case_json

TOL = {"atol": 1e-5, "rtol": 1e-5}  # reference README section 6: loss and metrics


@pytest.fixture(scope="module")
def case() -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v) for k, v in load_case("metrics").items()}


# ---------------------------------------------------------------- legacy parity (official code)


def test_window_matches_official(case: dict[str, torch.Tensor]) -> None:
    w = gaussian_window(11, 1.5, 3)
    assert w.shape == (3, 1, 11, 11) and w.dtype == torch.float32
    torch.testing.assert_close(w, case["ssim_window_3ch"], **TOL)
    assert math.isclose(float(w[0].sum()), 1.0, abs_tol=1e-6)


@pytest.mark.parametrize("pair", ["a", "b"])
def test_legacy_psnr_ssim_match_official(case: dict[str, torch.Tensor], pair: str) -> None:
    sr = case["sr"] if pair == "a" else case["sr_b"]
    hr = case["hr"]
    psnr, ssim = psnr_legacy_batch(sr, hr), ssim_legacy_batch(sr, hr)
    assert isinstance(psnr, float) and isinstance(ssim, float)
    assert psnr == pytest.approx(float(case[f"psnr_{pair}"]), **{"abs": 1e-5, "rel": 1e-5})
    assert ssim == pytest.approx(float(case[f"ssim_{pair}"]), **{"abs": 1e-5, "rel": 1e-5})
    # The JSON companion repeats the scalars; both must agree with us.
    assert psnr == pytest.approx(load_case_json("metrics")[f"psnr_{pair}"], abs=1e-5)


def test_legacy_ignores_mask_channel(case: dict[str, torch.Tensor]) -> None:
    sr, hr = case["sr_b"], case["hr"]
    sr4 = torch.cat([sr, torch.zeros_like(sr[:, :1])], 1)
    hr4 = torch.cat([hr, torch.ones_like(hr[:, :1])], 1)
    assert psnr_legacy_batch(sr4, hr4) == psnr_legacy_batch(sr, hr)
    assert ssim_legacy_batch(sr4, hr4) == ssim_legacy_batch(sr, hr)


def test_legacy_psnr_inf_when_identical(case: dict[str, torch.Tensor]) -> None:
    hr = case["hr"]
    value = psnr_legacy_batch(hr.clone(), hr)
    assert type(value) is float and value == math.inf
    assert ssim_legacy_batch(hr.clone(), hr) == pytest.approx(1.0, abs=1e-6)


# ---------------------------------------------------------------- clean per-image metrics


def _loop_psnr(sr: np.ndarray, hr: np.ndarray) -> list[float]:
    out = []
    for a, b in zip(sr, hr):
        mse = float(np.mean((a[:3].astype(np.float64) - b[:3].astype(np.float64)) ** 2))
        out.append(math.inf if mse == 0 else 20 * math.log10(1.0 / math.sqrt(mse)))
    return out


def _loop_ssim(sr: np.ndarray, hr: np.ndarray) -> list[float]:
    """Textbook SSIM, one image at a time, float64, explicit windows over a zero-padded image."""
    x = np.arange(11) - 5
    g = np.exp(-(x**2) / (2 * 1.5**2))
    g /= g.sum()
    w = np.outer(g, g)
    c1, c2 = 0.01**2, 0.03**2

    def filt(img: np.ndarray) -> np.ndarray:
        padded = np.pad(img, 5)
        return np.einsum("hwij,ij->hw", sliding_window_view(padded, (11, 11)), w)

    out = []
    for a, b in zip(sr.astype(np.float64), hr.astype(np.float64)):
        maps = []
        for ch in range(3):
            p, q = a[ch], b[ch]
            mu1, mu2 = filt(p), filt(q)
            s11 = filt(p * p) - mu1**2
            s22 = filt(q * q) - mu2**2
            s12 = filt(p * q) - mu1 * mu2
            maps.append(((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s11 + s22 + c2)))
        out.append(float(np.mean(maps)))
    return out


def test_per_image_matches_plain_loop(case: dict[str, torch.Tensor]) -> None:
    g = torch.Generator().manual_seed(1)
    hr = torch.rand(5, 4, 32, 128, generator=g)
    noise = torch.rand(5, 4, 32, 128, generator=g)
    mix = torch.tensor([0.0, 0.05, 0.2, 0.5, 1.0]).view(5, 1, 1, 1)
    sr = (1 - mix) * hr + mix * noise  # one exact copy, then increasingly different
    psnr = psnr_per_image(sr, hr)
    ssim = ssim_per_image(sr, hr)
    assert psnr.shape == (5,) and ssim.shape == (5,)
    ref_p = _loop_psnr(sr.numpy(), hr.numpy())
    ref_s = _loop_ssim(sr.numpy(), hr.numpy())
    assert psnr[0].item() == math.inf and ref_p[0] == math.inf
    np.testing.assert_allclose(psnr[1:].numpy(), ref_p[1:], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(ssim.numpy(), ref_s, atol=1e-5)
    assert ssim[0].item() == pytest.approx(1.0, abs=1e-6)
    # Strictly ordered by the amount of corruption.
    assert bool((psnr[1:].diff() < 0).all()) and bool((ssim.diff() < 0).all())


def test_per_image_is_batch_independent(case: dict[str, torch.Tensor]) -> None:
    sr, hr = case["sr_b"], case["hr"]
    whole = ssim_per_image(sr, hr)
    single = torch.cat([ssim_per_image(sr[i : i + 1], hr[i : i + 1]) for i in range(2)])
    torch.testing.assert_close(whole, single, atol=1e-6, rtol=0)
    # The legacy batch value is the mean of the per-image SSIMs (same image sizes), while the
    # legacy PSNR is not the mean of per-image PSNRs (log of the mean vs mean of the log).
    assert ssim_legacy_batch(sr, hr) == pytest.approx(float(whole.mean()), abs=1e-6)
    hr2 = torch.zeros(2, 3, 8, 8)
    sr2 = torch.stack([torch.full((3, 8, 8), 0.1), torch.full((3, 8, 8), 0.01)])  # mse 1e-2, 1e-4
    assert psnr_per_image(sr2, hr2).tolist() == pytest.approx([20.0, 40.0], abs=1e-4)
    assert psnr_legacy_batch(sr2, hr2) == pytest.approx(-10 * math.log10((1e-2 + 1e-4) / 2), abs=1e-4)


def test_clamp_only_affects_out_of_range() -> None:
    hr = torch.full((1, 3, 16, 16), 1.0)
    sr = torch.full((1, 3, 16, 16), 1.5)  # overshoot, e.g. an un-clipped network output
    assert psnr_per_image(sr, hr).item() == pytest.approx(-10 * math.log10(0.25), abs=1e-4)
    assert psnr_per_image(sr, hr, clamp=True).item() == math.inf
    inside = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(psnr_per_image(inside, hr[:1].expand(2, -1, -1, -1), clamp=True),
                               psnr_per_image(inside, hr[:1].expand(2, -1, -1, -1)))


def test_bad_shapes_rejected() -> None:
    with pytest.raises(ValueError, match="same shape"):
        psnr_per_image(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))
    with pytest.raises(ValueError, match="3 channels"):
        ssim_per_image(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))


# ---------------------------------------------------------------- word accuracy


def test_accuracy_rule_ignores_case_and_punctuation() -> None:
    preds = ["Hello", "world!", "c-a-t", "d0g", "", "STREET"]
    labels = ["hello", "World", "CAT", "dog", "!!", "Street."]
    assert word_accuracy(preds, labels) == [True, True, True, False, True, True]


def test_val_rule_does_not_filter_prediction() -> None:
    # TextZoom's in-training validation compares the raw prediction with the filtered label.
    assert word_match("hello", "Hello!", rule="val")
    assert not word_match("Hello", "hello", rule="val")
    assert word_match("Hello", "hello", rule="test")
    with pytest.raises(ValueError):
        word_match("a", "a", rule="other")  # type: ignore[arg-type]


def test_accuracy_length_mismatch() -> None:
    with pytest.raises(ValueError, match="2 predictions for 1 labels"):
        word_accuracy(["a", "b"], ["a"])


def test_weighted_vs_macro_accuracy() -> None:
    counts = {"easy": (80, 100), "medium": (10, 50), "hard": (0, 10)}
    assert weighted_accuracy(counts) == pytest.approx(90 / 160)
    assert macro_accuracy(counts) == pytest.approx((0.8 + 0.2 + 0.0) / 3)
    assert math.isnan(weighted_accuracy({}))
    with pytest.raises(ValueError, match="hard"):
        weighted_accuracy({"hard": (11, 10)})


def test_metric_directions() -> None:
    for name in ("accuracy", "psnr", "ssim"):
        assert metric_direction(name) == "higher"
        assert METRICS[name].better(2.0, 1.0)
    with pytest.raises(KeyError, match="known"):
        metric_direction("fid")


# ---------------------------------------------------------------- accumulator


def test_accumulator_matches_whole_set() -> None:
    g = torch.Generator().manual_seed(2)
    hr = torch.rand(7, 3, 32, 128, generator=g)
    sr = (0.7 * hr + 0.3 * torch.rand(7, 3, 32, 128, generator=g)) * 1.1  # some values above 1
    acc = MetricAccumulator()
    batches = [(0, 3), (3, 6), (6, 7)]
    for a, b in batches:
        acc.update_images(sr[a:b], hr[a:b])
    acc.update_text(["Ab", "x"], ["ab", "y"], recognizer="crnn")
    acc.update_text(["q!"], ["Q"], recognizer="crnn")
    acc.update_text(["ab"], ["ab"], recognizer="aster")
    s = acc.summary()
    assert s.n_images == 7
    assert s.psnr == pytest.approx(float(psnr_per_image(sr, hr, clamp=True).double().mean()), abs=1e-5)
    assert s.ssim == pytest.approx(float(ssim_per_image(sr, hr, clamp=True).double().mean()), abs=1e-6)
    legacy_p = [psnr_legacy_batch(sr[a:b], hr[a:b]) for a, b in batches]
    legacy_s = [ssim_legacy_batch(sr[a:b], hr[a:b]) for a, b in batches]
    assert s.psnr_legacy == round(sum(legacy_p) / 3, 6)
    assert s.ssim_legacy == round(sum(legacy_s) / 3, 6)
    # Legacy values are on the raw (unclipped) output, so they differ from the clean ones.
    assert s.psnr_legacy != pytest.approx(s.psnr, abs=1e-3)
    assert s.correct == {"crnn": 2, "aster": 1} and s.n_text == {"crnn": 3, "aster": 1}
    assert s.accuracy == {"crnn": pytest.approx(2 / 3), "aster": 1.0}


def test_accumulator_empty_and_without_legacy() -> None:
    s = MetricAccumulator(keep_legacy=False).summary()
    assert s.n_images == 0 and math.isnan(s.psnr) and s.psnr_legacy is None and s.accuracy == {}


def test_accumulator_totals_summed_over_processes_give_the_whole_sets_summary() -> None:
    """Validation all-reduces MetricAccumulator.totals: two shares' summed totals must summarise
    exactly as one accumulator fed both shares (legacy: the per-batch values of both)."""
    g = torch.Generator().manual_seed(3)
    hr = torch.rand(10, 3, 32, 128, generator=g)
    sr = (0.6 * hr + 0.4 * torch.rand(10, 3, 32, 128, generator=g)) * 1.2
    preds, labels = ["ab", "x", "c", "d!", "e", "f", "gg", "h", "i", "j"], ["AB", "y", "c", "D", "e", "q", "gg", "h", "z", "j"]
    whole, shares = MetricAccumulator(rule="val"), [MetricAccumulator(rule="val"), MetricAccumulator(rule="val")]
    for k, (a, b) in enumerate([(0, 3), (3, 6), (6, 8), (8, 10)]):
        for acc in (whole, shares[k % 2]):
            acc.update_images(sr[a:b], hr[a:b])
            acc.update_text(preds[a:b], labels[a:b], "crnn")
    summed = [x + y for x, y in zip(shares[0].totals(["crnn", "aster"]), shares[1].totals(["crnn", "aster"]), strict=True)]
    got = MetricAccumulator.summary_of_totals(summed, ["crnn", "aster"])
    want = whole.summary()
    assert got.n_images == want.n_images == 10
    assert got.psnr == pytest.approx(want.psnr, rel=1e-15) and got.ssim == pytest.approx(want.ssim, rel=1e-15)
    assert got.psnr_legacy == want.psnr_legacy and got.ssim_legacy == want.ssim_legacy  # both rounded to 6 places
    assert got.correct["crnn"] == want.correct["crnn"] == 6 and got.n_text["crnn"] == 10
    assert got.accuracy["crnn"] == want.accuracy["crnn"] and math.isnan(got.accuracy["aster"])  # never fed
    alone = MetricAccumulator.summary_of_totals(whole.totals(["crnn"]), ["crnn"])
    assert (alone.psnr, alone.ssim, alone.psnr_legacy, alone.accuracy) == (want.psnr, want.ssim, want.psnr_legacy,
                                                                          want.accuracy)
    empty = MetricAccumulator.summary_of_totals(MetricAccumulator(keep_legacy=False).totals(), keep_legacy=False)
    assert empty.n_images == 0 and math.isnan(empty.psnr) and empty.psnr_legacy is None
