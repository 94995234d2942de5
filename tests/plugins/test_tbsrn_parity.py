"""TBSRN against the official scene-text-telescope code (tests/reference/tbsrn, its README).

State-dict layout and parameter counts, strict loading with and without ``module.``, the 2-D
positional encoding, eval outputs under rule-A weights (1e-5), train-mode outputs (STN, batch
BN, dropout drawn from a fixed seed) for the 4-channel STN model and the 3-channel model
without STN, and the plugin registration.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from reference_cases import NATURAL_STN_KEEP, ModelReference, apply_rule_a, max_diff, state_dict_layout, stn_tol
from tzbench.specs import resolve_target
from tzbench.weights import WeightsError
from tzbench_successors.params import TBSRNParams
from tzbench_successors.plugin import SUCCESSOR_SPECS, register_sr_models
from tzbench_successors.tbsrn import TBSRN, load_official_tbsrn, load_tbsrn_state_dict, positional_encoding_2d

REFERENCE = ModelReference("tbsrn")
REF = REFERENCE.path
NATURAL_KEEP = NATURAL_STN_KEEP
#: name -> constructor kwargs of the reference case
CASES = {"tbsrn": {"stn": True, "mask": True}, "tbsrn_nostn_nomask": {"stn": False, "mask": False}}


@pytest.fixture(scope="module", autouse=True)
def _single_thread(single_thread: None) -> None:
    """Every test here on one thread (see reference_cases.single_thread)."""


def _no_dropout(model: torch.nn.Module) -> torch.nn.Module:
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.eval()
    return model


@pytest.mark.parametrize("name", sorted(CASES))
def test_state_dict_layout_and_counts_match_official(name: str) -> None:
    model = TBSRN(**CASES[name])
    got = state_dict_layout(model)
    assert got == REFERENCE.keys(name)
    assert sum(p.numel() for p in model.parameters()) == REFERENCE.counts()[name]["params"]


def test_parameter_counts_of_all_four_variants() -> None:
    counts = REFERENCE.counts()
    for stn in (True, False):
        for mask in (True, False):
            n = sum(p.numel() for p in TBSRN(stn=stn, mask=mask).parameters())
            assert n == counts[f"tbsrn(STN={stn}, mask={mask})"]
    assert counts["tbsrn(STN=True, mask=True)"] == 3_220_992
    assert counts["tbsrn(STN=False, mask=True)"] == 1_365_944


def test_positional_encoding_matches_official() -> None:
    with np.load(REF / "tbsrn_posenc.npz") as z:
        want = z["pe"]
    assert max_diff(positional_encoding_2d(64, 16, 64), want) == 0.0
    with pytest.raises(ValueError, match="divisible by 4"):
        positional_encoding_2d(30, 16, 64)


def test_input_is_the_reference_input() -> None:
    g = torch.Generator().manual_seed(0)
    assert np.array_equal(torch.rand((2, 4, 16, 64), generator=g).numpy(), REFERENCE.case("tbsrn")["input"])


@pytest.mark.parametrize("name", sorted(CASES))
def test_eval_output_parity(name: str) -> None:
    case = REFERENCE.case(name)
    model = apply_rule_a(TBSRN(**CASES[name])).eval()
    x = torch.from_numpy(case["input"])
    with torch.no_grad():
        assert max_diff(model(x), case["out_eval"]) < 1e-5
        feat1 = model.block1(x)
        assert max_diff(feat1[:1], case["eval_block1_sample0"]) < 1e-5
        assert max_diff(model.block2(feat1)[:1], case["eval_block2_sample0"]) < 1e-5


@pytest.mark.parametrize(("name", "suffix"), [("tbsrn", ""), ("tbsrn", "_naturalstn"), ("tbsrn_nostn_nomask", "")])
def test_train_mode_parity(name: str, suffix: str) -> None:
    """Train mode: the STN (4-channel model), batch-statistics BN, and dropout. Dropout draws
    from torch's global generator in the official order, so the seeded run matches too."""
    case = REFERENCE.case(name)
    model = apply_rule_a(TBSRN(**CASES[name]), keep_keys=NATURAL_KEEP if suffix else ()).train()
    x = torch.from_numpy(case["input"])
    tol = stn_tol(1e-5, 3e-3) if suffix else 1e-5  # the natural STN moves the grid (1.2e-3 on an AMD EPYC)
    with torch.no_grad():
        torch.manual_seed(0)
        assert max_diff(model(x), case[f"out_train{suffix}"]) < tol
        _no_dropout(model)
        assert max_diff(model(x), case[f"out_train_nodropout{suffix}"]) < tol
        if model.stn:
            rectified, ctrl = model.rectify(x)
            assert max_diff(ctrl, case[f"train_ctrl_points{suffix}"]) < 1e-5
            assert max_diff(rectified, case[f"train_rectified{suffix}"]) < 2e-3


def test_eval_mode_skips_the_stn_unless_asked() -> None:
    model = apply_rule_a(TBSRN(stn=True, mask=True)).eval()
    x = torch.from_numpy(REFERENCE.case("tbsrn")["input"])
    with torch.no_grad():
        plain = model(x)
        model.stn_at_test = True
        rectified = model(x)
    assert not torch.allclose(plain, rectified)


@pytest.mark.parametrize("prefix", ["", "module."])
def test_official_checkpoint_loads_strictly(tmp_path: Path, prefix: str) -> None:
    source = apply_rule_a(TBSRN(stn=True, mask=True))
    state = {prefix + k: v for k, v in source.state_dict().items()}
    path = tmp_path / "model_best.pth"
    torch.save({"state_dict_G": state, "iters": 1}, path)
    model = load_official_tbsrn(TBSRN(stn=True, mask=True), path)
    for k, v in source.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


def test_mismatched_checkpoint_is_refused_with_keys() -> None:
    state = TBSRN(stn=True, mask=True).state_dict()
    with pytest.raises(WeightsError, match="stn_head|tps") as refused:
        load_tbsrn_state_dict(TBSRN(stn=False, mask=True), state)
    # The message ends with what the file should have been, for the architecture asked for.
    assert str(refused.value).endswith("(expected an official TBSRN checkpoint for TBSRN(mask=True, stn=False, "
                                       "srb_nums=5))")
    del state["block2.feature_enhancer.linear.weight"]
    with pytest.raises(WeightsError, match="block2.feature_enhancer.linear.weight"):
        load_tbsrn_state_dict(TBSRN(stn=True, mask=True), state)


def test_unused_official_modules_are_frozen_and_the_rest_learns() -> None:
    model = TBSRN(stn=False, mask=False, srb_nums=1, hidden_units=8).train()
    model(torch.rand(2, 3, 16, 64)).square().mean().backward()
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith(("conv.", "bn.")) or ".gru" in n or "compress_attention" in n for n in frozen)
    for n, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and p.grad.abs().sum() > 0, n


def test_ci_sized_model_runs_any_even_width() -> None:
    model = TBSRN(stn=True, mask=True, srb_nums=1, hidden_units=8).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 4, 16, 64)).shape == (1, 4, 32, 128)
    with pytest.raises(ValueError, match="even"):
        TBSRN(hidden_units=7)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        TBSRN(mask=False, stn=False)(torch.rand(1, 4, 16, 64))


def test_plugin_registers_tbsrn() -> None:
    assert "tbsrn" in [s.name for s in register_sr_models()]
    spec = SUCCESSOR_SPECS[0]
    assert resolve_target(spec.target) is TBSRN and spec.default_loss == "text_focus" and spec.in_channels is None
    params = TBSRNParams()
    assert params.stn and not params.mask  # the official README's command: --STN, no --mask
    model = TBSRN(**params.model_dump())
    assert sum(p.numel() for p in model.parameters()) == 3_210_335
    with pytest.raises(ValueError):
        TBSRNParams(hidden_units=7)
    with pytest.raises(ValueError):
        TBSRNParams(heads=4)  # type: ignore[call-arg]



def test_fused_attention_path_equals_the_written_out_one() -> None:
    """``need_weights=False`` (what TBSRN asks for) runs fused where no dropout is drawn: the same
    output to float rounding, masks included; with dropout it keeps the official draw order."""
    from tzbench_successors.attention import MultiHeadedAttention, subsequent_mask

    torch.manual_seed(0)
    att = MultiHeadedAttention(h=4, d_model=32, dropout=0.1)
    x = torch.randn(3, 40, 32)
    att.eval()
    for mask in (None, subsequent_mask(40).expand(3, -1, -1)):
        ref, weights = att(x, x, x, mask=mask)
        out, none = att(x, x, x, mask=mask, need_weights=False)
        assert weights is not None and none is None
        assert float((out - ref).abs().max()) < 1e-6
    att.train()
    torch.manual_seed(1)
    ref, _ = att(x, x, x)
    torch.manual_seed(1)
    out, _ = att(x, x, x, need_weights=False)
    assert torch.equal(out, ref), "training with dropout must keep the written-out path and its draws"
    assert not torch.equal(out, att.eval()(x, x, x)[0]), "dropout was not drawn in training"
