"""The text-focus loss and its transformer recognizer against the official scene-text-telescope
code (tests/reference/tbsrn, its README): key layout and count, recognizer outputs, the
confusion weight table, every loss term and the gradient for ``ce_on`` = sr and hr, under
rule-A and rule-B recognizer weights; the missing-weights errors and the runner's label path.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import tzbench
from tzbench.errors import TzbenchError
from reference_cases import rule_a_state_dict, rule_b_state_dict, state_dict_layout
from tzbench.weights import WeightsError
from tzbench_successors.text_focus_loss import TextFocusLoss, confusion_weights, encode_labels, load_confusion
from tzbench_successors.text_focus_transformer import TextFocusTransformer, load_text_focus_transformer

REF = Path(__file__).resolve().parents[1] / "reference" / "tbsrn"
CASES = ["text_focus", "text_focus_ruleB"]


def _case(name: str) -> tuple[dict[str, np.ndarray], dict]:
    with np.load(REF / f"{name}.case0.npz") as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, json.loads((REF / f"{name}.case0.json").read_text())


def _rule_b(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The reference README's rule B, plus LayerNorm gains 1 + randn*0.1 and ``pe.pe`` kept."""
    state = rule_b_state_dict(model, keep_keys=("pe.pe",))
    for key, value in state.items():
        if key.endswith("a_2"):
            g = torch.Generator().manual_seed(int(hashlib.sha256(key.encode()).hexdigest()[:8], 16))
            state[key] = 1 + torch.randn(tuple(value.shape), generator=g) * 0.1
    return state


@pytest.fixture(scope="module")
def readers() -> dict[str, TextFocusTransformer]:
    out = {}
    for name, rule in (("text_focus", rule_a_state_dict), ("text_focus_ruleB", _rule_b)):
        model = TextFocusTransformer()
        model.load_state_dict(rule(model), strict=True)
        out[name] = model.eval()
    return out


def test_recognizer_layout_and_count_match_official() -> None:
    model = TextFocusTransformer()
    want = [(k, tuple(s), d) for k, s, d in json.loads((REF / "text_focus_transformer.keys.json").read_text())]
    got = state_dict_layout(model)
    assert got == want
    counts = json.loads((REF / "param_counts.json").read_text())
    assert sum(p.numel() for p in model.parameters()) == counts["text_focus_transformer"]["params"] == 62_314_951


@pytest.mark.parametrize("prefix", ["", "module."])
def test_recognizer_loads_official_file_strictly(tmp_path: Path, prefix: str, readers: dict) -> None:
    source = readers["text_focus_ruleB"]
    path = tmp_path / "pretrain_transformer.pth"
    torch.save({prefix + k: v for k, v in source.state_dict().items()}, path)
    model = load_text_focus_transformer(TextFocusTransformer(), path)
    assert torch.equal(model.state_dict()["pe.pe"], source.state_dict()["pe.pe"])
    bad = {k: v for k, v in source.state_dict().items() if not k.startswith("decoder.pff")}
    with pytest.raises(WeightsError, match="decoder.pff"):
        load_text_focus_transformer(TextFocusTransformer(), bad)


def test_label_encoding_matches_official() -> None:
    arrays, scalars = _case("text_focus")
    lengths, text_input, targets = encode_labels(scalars["labels"], torch.device("cpu"))
    assert lengths.tolist() == arrays["length"].tolist()
    assert text_input.tolist() == arrays["text_input"].tolist()
    assert targets.tolist() == arrays["text_gt"].tolist()


@pytest.mark.parametrize("name", CASES)
def test_recognizer_outputs_match_official(name: str, readers: dict) -> None:
    arrays, _ = _case(name)
    hr = torch.from_numpy(arrays["hr"])
    gray = 0.299 * hr[:, 0:1] + 0.587 * hr[:, 1:2] + 0.114 * hr[:, 2:3]
    with torch.no_grad():
        logits, attention = readers[name](gray, torch.from_numpy(arrays["text_input"]))
    per_char = torch.cat([logits[i, :n] for i, n in enumerate(arrays["length"].tolist())])
    np.testing.assert_allclose(per_char.numpy(), arrays["transformer_probs_hr"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(attention.numpy(), arrays["transformer_attention_hr"], rtol=1e-5, atol=1e-7)


def test_confusion_weight_table_matches_official(tmp_path: Path) -> None:
    arrays, _ = _case("text_focus")
    assert np.array_equal(confusion_weights(arrays["confuse"]).numpy(), arrays["weight_table"])
    # the released file is a pickled numpy array: read without unpickling anything else
    pkl = tmp_path / "confuse.pkl"
    pkl.write_bytes(pickle.dumps(arrays["confuse"]))
    assert np.array_equal(load_confusion(pkl), arrays["confuse"])
    np.save(tmp_path / "confuse.npy", arrays["confuse"])
    assert np.array_equal(load_confusion(tmp_path / "confuse.npy"), arrays["confuse"])
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(Path("x")))
    with pytest.raises(WeightsError, match="evil.pkl"):
        load_confusion(evil)
    np.save(tmp_path / "small.npy", np.ones((3, 3)))
    with pytest.raises(WeightsError, match="62x62"):
        load_confusion(tmp_path / "small.npy")


#: rule B / ce_on=sr (the informative case) runs by default; the backward passes through the
#: 62M-parameter recognizer of the other three take several seconds of CPU each.
LOSS_CASES = [pytest.param("text_focus_ruleB", "sr")] + [
    pytest.param(name, ce_on, marks=pytest.mark.slow)
    for name, ce_on in (("text_focus_ruleB", "hr"), ("text_focus", "sr"), ("text_focus", "hr"))
]


@pytest.mark.parametrize(("name", "ce_on"), LOSS_CASES)
def test_loss_terms_and_gradient_match_official(name: str, ce_on: str, readers: dict) -> None:
    arrays, scalars = _case(name)
    loss_fn = TextFocusLoss(ce_on=ce_on, transformer=readers[name], confusion_counts=arrays["confuse"])
    sr = torch.from_numpy(arrays["sr"]).requires_grad_(True)
    loss = loss_fn(sr, torch.from_numpy(arrays["hr"]), scalars["labels"])
    loss.backward()
    parts = loss_fn.parts
    for term in ("loss", "mse", "attention", "recognition"):
        want = scalars[f"{term}_ce_{ce_on}"]
        assert parts[term] == pytest.approx(want, rel=1e-5, abs=1e-9), term
    grad = arrays[f"grad_sr_ce_{ce_on}"]
    np.testing.assert_allclose(sr.grad.numpy(), grad, rtol=1e-4, atol=1e-5 * float(np.abs(grad).max()))


@pytest.mark.slow
def test_ce_on_hr_gives_the_sr_network_no_recognition_gradient(readers: dict) -> None:
    """The reported flaw of the first release: its CE term does not depend on SR."""
    arrays, scalars = _case("text_focus_ruleB")
    grads = {}
    for ce_on in ("sr", "hr"):
        loss_fn = TextFocusLoss(ce_on=ce_on, mse_weight=0.0, attention_weight=0.0, recognition_weight=1.0,
                                transformer=readers["text_focus_ruleB"], confusion_counts=arrays["confuse"])
        sr = torch.from_numpy(arrays["sr"]).requires_grad_(True)
        loss = loss_fn(sr, torch.from_numpy(arrays["hr"]), scalars["labels"])
        grads[ce_on] = torch.autograd.grad(loss, sr)[0]
    assert not grads["hr"].any()
    assert grads["sr"].abs().sum() > 0


def test_recognizer_is_frozen_and_not_saved(readers: dict) -> None:
    arrays, _ = _case("text_focus")
    loss_fn = TextFocusLoss(transformer=readers["text_focus"], confusion_counts=arrays["confuse"])
    assert list(loss_fn.parameters()) == [] and loss_fn.state_dict() == {}
    assert all(not p.requires_grad for p in readers["text_focus"].parameters())


def test_text_focus_off_is_the_mse_and_needs_no_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZBENCH_HOME", str(tmp_path))
    arrays, scalars = _case("text_focus")
    loss_fn = tzbench.get_catalog().create("losses", "text_focus", {"text_focus": False})
    value = loss_fn(torch.from_numpy(arrays["sr"]), torch.from_numpy(arrays["hr"]), scalars["labels"])
    assert float(value) == pytest.approx(scalars["loss_text_focus_off"], rel=1e-6)


def test_missing_weights_are_a_one_line_error_naming_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZBENCH_HOME", str(tmp_path))
    with pytest.raises(WeightsError, match="pretrain_transformer.pth") as exc:
        TextFocusLoss()
    assert "\n" not in str(exc.value) and "transformer_weights" in str(exc.value)
    torch.save({}, tmp_path / "t.pth")
    with pytest.raises(WeightsError, match="t.pth"):
        TextFocusLoss(transformer_weights=str(tmp_path / "t.pth"))
    with pytest.raises(WeightsError, match="confuse.pkl"):
        TextFocusLoss(transformer=TextFocusTransformer())


def test_bad_params_and_labels_are_refused(readers: dict) -> None:
    arrays, _ = _case("text_focus")
    with pytest.raises(TzbenchError, match="ce_on"):
        tzbench.get_catalog().validate_params("losses", "text_focus", {"ce_on": "lr"})
    loss_fn = TextFocusLoss(transformer=readers["text_focus"], confusion_counts=arrays["confuse"])
    sr = torch.rand(2, 3, 32, 128)
    with pytest.raises(ValueError, match="one label per image"):
        loss_fn(sr, sr, ["a"])
    with pytest.raises(ValueError, match="same shape"):
        loss_fn(sr, sr[:1], ["a"])
