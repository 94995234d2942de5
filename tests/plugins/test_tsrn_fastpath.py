"""The fast CPU path of TSRN computes the same maths as the straightforward implementation.

The straightforward implementation is ``NaiveTSRN`` of tests/bench/test_bench_tsrn.py (the
one the speed benchmark compares against), imported here by path. Outputs agree to 1e-5 in
train mode with the STN active (also when the GRU scan is cut into many chunks), and so do
the parameter gradients up to float32 reduction-order noise (tolerances below).
"""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import tzbench_tsrn.gru as gru_module
from reference_cases import apply_rule_a, load_case
from tzbench_tsrn.gru import bigru_2d
from tzbench_tsrn.tsrn import TSRN, subpixel_conv_weight

BENCH_FILE = Path(__file__).resolve().parents[1] / "bench" / "test_bench_tsrn.py"



@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    """These tensors are tiny: on a busy 2-core machine, OpenMP barriers between two threads
    cost more than the work (results differ from 2 threads only by ~1e-6)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tsrn_bench_reference", BENCH_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def test_naive_reference_is_the_official_maths(bench: ModuleType) -> None:
    case = load_case("tsrn")
    model = TSRN()
    apply_rule_a(model)
    naive = bench.NaiveTSRN()
    naive.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        out = naive.eval()(torch.from_numpy(case["input"]))
    assert np.abs(out.numpy() - case["out_eval"]).max() <= 1e-5


@pytest.mark.parametrize("chunk_rows", [gru_module.CHUNK_ROWS, 100])
def test_fast_training_step_equals_naive(bench: ModuleType, monkeypatch: pytest.MonkeyPatch, chunk_rows: int) -> None:
    monkeypatch.setattr(gru_module, "CHUNK_ROWS", chunk_rows)  # 100: a chunk of 1 or 6 steps
    torch.manual_seed(0)
    fast = TSRN().train()
    naive = bench.NaiveTSRN().train()
    naive.load_state_dict(fast.state_dict(), strict=True)
    assert fast._use_fast(torch.zeros(1))  # CPU input: the fast path is the default
    x = torch.rand(3, 4, 16, 64)
    target = torch.rand(3, 4, 32, 128) * 2 - 1
    outs = {}
    for name, model in (("fast", fast), ("naive", naive)):
        out = model(x)
        F.mse_loss(out, target).backward()
        outs[name] = out.detach()
    assert float((outs["fast"] - outs["naive"]).abs().max()) <= 1e-5
    naive_grads = {k: p.grad for k, p in naive.named_parameters()}
    scale = max(float(g.abs().max()) for g in naive_grads.values())
    for key, param in fast.named_parameters():
        want = naive_grads[key]
        # Relative to each tensor's largest gradient, plus a floor of 1e-5 x the model's largest
        # gradient for conv biases in front of a train-mode BN (their true gradient is 0, so
        # both values are rounding noise). Both float32 implementations are ~1e-2 away from a
        # float64 run here (the TPS is badly conditioned); from each other, ~1e-5 in the SR body
        # and ~1e-4 in the STN head, whose gradient passes through the TPS sampling.
        rel = 1e-3 if key.startswith("stn_head.") else 5e-5
        diff = float((param.grad - want).abs().max())
        assert diff <= rel * float(want.abs().max()) + 1e-5 * scale, key
    for key, value in naive.state_dict().items():  # BN running statistics updated alike
        assert torch.allclose(fast.state_dict()[key].float(), value.float(), atol=1e-6), key


def test_fast_eval_equals_reference_path() -> None:
    torch.manual_seed(1)
    model = TSRN(mask=False).eval()
    x = torch.rand(2, 3, 16, 64)
    with torch.no_grad():
        model.fast_path = True
        fast = model(x)
        model.fast_path = False
        ref = model(x)
    assert float((fast - ref).abs().max()) <= 1e-5
    assert fast.is_contiguous()


@pytest.mark.parametrize("seq_dim", [2, 3])
@pytest.mark.parametrize("channels_last", [False, True])
def test_bigru_2d_equals_nn_gru(bench: ModuleType, monkeypatch: pytest.MonkeyPatch, seq_dim: int,
                                channels_last: bool) -> None:
    monkeypatch.setattr(gru_module, "CHUNK_ROWS", 40)
    torch.manual_seed(2)
    block = bench.NaiveGruBlock(16, 16)
    x = torch.randn(2, 16, 5, 7)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    grad = torch.randn(2, 16, 5, 7)
    if seq_dim == 3:
        ref = block(x)
    else:
        ref = block(x.transpose(-1, -2)).transpose(-1, -2)
    ref_grads = torch.autograd.grad(ref, [x, *block.parameters()], grad)
    got = bigru_2d(x, block.conv1, block.gru, seq_dim)
    got_grads = torch.autograd.grad(got, [x, *block.parameters()], grad)
    assert float((got - ref).abs().max()) <= 1e-6
    for a, b in zip(got_grads, ref_grads, strict=True):
        assert _rel_diff(a, b) <= 1e-5


def test_subpixel_conv_weight_equals_conv_after_shuffle() -> None:
    torch.manual_seed(3)
    for kernel, r in ((9, 2), (3, 2), (5, 3), (9, 4)):
        inp = torch.randn(2, 3 * r * r, 5, 6)
        conv = nn.Conv2d(3, 2, kernel, padding=kernel // 2)
        want = conv(F.pixel_shuffle(inp, r))
        weight, bias, pad = subpixel_conv_weight(conv.weight, conv.bias, r)
        got = F.pixel_shuffle(F.conv2d(inp, weight, bias, padding=pad), r)
        assert float((got - want).abs().max()) <= 1e-5, (kernel, r)


def test_second_backward_through_fast_path_is_refused() -> None:
    model = TSRN(stn=False).train()
    out = model(torch.rand(2, 4, 16, 64)).sum()
    out.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="single backward pass"):
        out.backward()
    model.fast_path = False  # the reference path supports it
    out = model(torch.rand(2, 4, 16, 64)).sum()
    out.backward(retain_graph=True)
    out.backward()


def test_tracing_uses_reference_path() -> None:
    model = TSRN(stn=False).eval()
    x = torch.rand(1, 4, 16, 64)
    traced = torch.jit.trace(copy.deepcopy(model), (x,), check_trace=False)
    assert "aten::gru" in str(traced.inlined_graph)
    with torch.no_grad():
        assert float((traced(x) - model(x)).abs().max()) <= 1e-5
