"""TSRN throughput: the optimised model against a straightforward implementation of the same maths.

Outside the default run (the pytest config ignores tests/bench). Run with

    python -m pytest tests/bench/test_bench_tsrn.py --benchmark-only -p no:cacheprovider -o addopts=""

At batch 64 (LR 4x16x64) it measures, for ``tsrn`` (``tzbench_tsrn.tsrn.TSRN``) and for
:class:`NaiveTSRN` below:

* forward: eval mode, no grad (inference);
* train step: train mode (STN active, batch-statistics BN), forward + MSE + backward.

``test_speedup[*]`` time the two implementations alternately within one benchmark, so both
see the same machine load, and report the ratio of their median step times (and of their
best ones); each result carries ``samples_per_s`` (and ``speedup``) in ``extra_info``, and a
summary (from the median and from the best round) is printed at the end.
Environment knobs: ``TZBENCH_BENCH_THREADS`` pins torch's thread count,
``TZBENCH_BENCH_BATCH`` changes the batch (64), ``TZBENCH_TSRN_MIN_SPEEDUP`` the smallest
training speed-up the run accepts (1.2: a regression guard with margin for a shared machine;
measured figures are in docs/models/tsrn.md).

:class:`NaiveTSRN` is written the way the official TextZoom code computes TSRN (``nn.GRU``
on permuted contiguous copies, mish as ``x * tanh(softplus(x))``, PixelShuffle then the 9x9
conv, NCHW memory), with the same state-dict keys, so the same weights load into both.
``tests/plugins/test_tsrn_fastpath.py`` imports it to check that the fast path computes the
same outputs and gradients.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

BATCH = int(os.environ.get("TZBENCH_BENCH_BATCH", "64"))
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
if os.environ.get("TZBENCH_BENCH_THREADS"):
    torch.set_num_threads(int(os.environ["TZBENCH_BENCH_THREADS"]))


# ----------------------------------------------------------------------------------------------
# The straightforward implementation.


def naive_mish(x: Tensor) -> Tensor:
    return x * torch.tanh(F.softplus(x))


class NaiveMish(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return naive_mish(x)


class NaiveGruBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=1)
        self.gru = nn.GRU(out_channels, out_channels // 2, bidirectional=True, batch_first=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        x = x.permute(0, 2, 3, 1).contiguous()
        b, h, w, c = x.size()
        x = x.view(b * h, w, c)
        x, _ = self.gru(x)
        x = x.view(b, h, w, c)
        return x.permute(0, 3, 1, 2).contiguous()


class NaiveSRB(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.gru1 = NaiveGruBlock(channels, channels)
        self.prelu = NaiveMish()
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)
        self.gru2 = NaiveGruBlock(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        residual = self.conv1(x)
        residual = self.bn1(residual)
        residual = self.prelu(residual)
        residual = self.conv2(residual)
        residual = self.bn2(residual)
        residual = self.gru1(residual.transpose(-1, -2)).transpose(-1, -2)
        return self.gru2(x + residual)


class NaiveUpsample(nn.Module):
    def __init__(self, channels: int, up_scale: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels * up_scale**2, kernel_size=3, padding=1)
        self.pixel_shuffle = nn.PixelShuffle(up_scale)
        self.prelu = NaiveMish()

    def forward(self, x: Tensor) -> Tensor:
        return self.prelu(self.pixel_shuffle(self.conv(x)))


class NaiveSTNHead(nn.Module):
    def __init__(self, in_planes: int, num_ctrlpoints: int = 20) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_planes
        for i, width in enumerate([32, 64, 128, 256, 256, 256]):
            layers.append(nn.Sequential(nn.Conv2d(prev, width, 3, 1, 1), nn.BatchNorm2d(width), nn.ReLU(True)))
            if i < 5:
                layers.append(nn.MaxPool2d(2, 2))
            prev = width
        self.stn_convnet = nn.Sequential(*layers)
        self.stn_fc1 = nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(True))
        self.stn_fc2 = nn.Linear(512, num_ctrlpoints * 2)
        self.num_ctrlpoints = num_ctrlpoints

    def forward(self, x: Tensor) -> Tensor:
        x = self.stn_convnet(x)
        x = self.stn_fc1(x.view(x.size(0), -1))
        return self.stn_fc2(0.1 * x).view(-1, self.num_ctrlpoints, 2)


class NaiveTPS(nn.Module):
    """Holds the four TPS buffers (values come from a loaded state dict)."""

    def __init__(self, height: int, width: int, n: int = 20) -> None:
        super().__init__()
        self.height, self.width = height, width
        self.register_buffer("inverse_kernel", torch.zeros(n + 3, n + 3))
        self.register_buffer("padding_matrix", torch.zeros(3, 2))
        self.register_buffer("target_coordinate_repr", torch.zeros(height * width, n + 3))
        self.register_buffer("target_control_points", torch.zeros(n, 2))

    def forward(self, x: Tensor, ctrl: Tensor, align_corners: bool) -> Tensor:
        y = torch.cat([ctrl, self.padding_matrix.expand(ctrl.size(0), 3, 2)], 1)
        source = torch.matmul(self.target_coordinate_repr, torch.matmul(self.inverse_kernel, y))
        grid = torch.clamp(source.view(-1, self.height, self.width, 2), 0, 1)
        return F.grid_sample(x, 2.0 * grid - 1.0, align_corners=align_corners)


class NaiveTSRN(nn.Module):
    """TSRN as the official code computes it (same state-dict keys as the plugin's TSRN)."""

    def __init__(self, srb_nums: int = 5, hidden_units: int = 32, mask: bool = True, stn: bool = True,
                 grid_sample_align_corners: bool = False) -> None:
        super().__init__()
        planes = 4 if mask else 3
        c = 2 * hidden_units
        self.srb_nums, self.stn, self.align_corners = srb_nums, stn, grid_sample_align_corners
        self.block1 = nn.Sequential(nn.Conv2d(planes, c, kernel_size=9, padding=4), nn.PReLU())
        for i in range(srb_nums):
            setattr(self, f"block{i + 2}", NaiveSRB(c))
        setattr(self, f"block{srb_nums + 2}", nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)))
        setattr(self, f"block{srb_nums + 3}", nn.Sequential(NaiveUpsample(c, 2), nn.Conv2d(c, planes, 9, padding=4)))
        if stn:
            self.tps = NaiveTPS(16, 64)
            self.stn_head = NaiveSTNHead(planes)

    def forward(self, x: Tensor) -> Tensor:
        if self.stn and self.training:
            x = F.interpolate(x, (32, 64), mode="bilinear", align_corners=True)
            x = self.tps(x, self.stn_head(x), self.align_corners)
        block = {"1": self.block1(x)}
        for i in range(self.srb_nums + 1):
            block[str(i + 2)] = getattr(self, f"block{i + 2}")(block[str(i + 1)])
        last = self.srb_nums + 3
        block[str(last)] = getattr(self, f"block{last}")(block["1"] + block[str(last - 1)])
        return torch.tanh(block[str(last)])


# ----------------------------------------------------------------------------------------------
# Benchmarks.

_RESULTS: dict[str, tuple[float, float]] = {}  # name -> (from the median, from the best round)


def _sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def _models() -> dict[str, nn.Module]:
    from tzbench_tsrn.tsrn import TSRN

    fast = TSRN()
    naive = NaiveTSRN()
    naive.load_state_dict(fast.state_dict(), strict=True)
    return {"naive": naive.to(DEVICE), "tsrn": fast.to(DEVICE)}


def _input() -> Tensor:
    x = torch.rand(BATCH, 4, 16, 64, generator=torch.Generator().manual_seed(0))
    x[:, 3:] = (x[:, 3:] > 0.5).float()
    return x.to(DEVICE)


def _step(model: nn.Module, x: Tensor, train: bool) -> Callable[[], None]:
    model.train(train)
    target = torch.rand(BATCH, 4, 32, 128, generator=torch.Generator().manual_seed(1)).to(DEVICE) * 2 - 1

    def forward() -> None:
        with torch.no_grad():
            model(x)
        _sync()

    def train_step() -> None:
        model.zero_grad(set_to_none=True)
        F.mse_loss(model(x), target).backward()
        _sync()

    return train_step if train else forward


@pytest.fixture(scope="module", autouse=True)
def _summary(request: pytest.FixtureRequest):
    yield
    if not _RESULTS:
        return
    lines = [f"TSRN throughput, batch {BATCH}, {DEVICE}, {torch.get_num_threads()} threads (samples/s):"]
    lines += [f"  {key:44s} {median:9.2f} {best:9.2f}" for key, (median, best) in _RESULTS.items()]
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if capture is None:
        print("\n".join(lines))
        return
    with capture.global_and_fixture_disabled():  # print past pytest's output capture
        print("\n" + "\n".join(lines))


@pytest.mark.parametrize("impl", ["naive", "tsrn"])
@pytest.mark.parametrize("mode", ["forward", "train"])
def test_bench_tsrn(benchmark, impl: str, mode: str) -> None:
    model = _models()[impl]
    step = _step(model, _input(), train=mode == "train")
    benchmark.group = f"tsrn-{mode}"
    benchmark.pedantic(step, rounds=3, warmup_rounds=1, iterations=1)
    samples_per_s = BATCH / benchmark.stats.stats.median
    best = BATCH / benchmark.stats.stats.min
    benchmark.extra_info.update(batch=BATCH, device=str(DEVICE), threads=torch.get_num_threads(),
                                samples_per_s=round(samples_per_s, 2), best_samples_per_s=round(best, 2))
    _RESULTS[f"{mode} {impl} (median, best)"] = (samples_per_s, best)


@pytest.mark.parametrize("mode", ["forward", "train"])
def test_speedup(benchmark, mode: str) -> None:
    """Alternate naive and tsrn steps; the ratio of their medians is the speed-up."""
    models = _models()
    x = _input()
    steps = {name: _step(model, x, train=mode == "train") for name, model in models.items()}
    times: dict[str, list[float]] = {name: [] for name in steps}

    def pair() -> None:
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)

    benchmark.group = f"tsrn-speedup-{mode}"
    benchmark.pedantic(pair, rounds=5, warmup_rounds=1, iterations=1)
    # the warm-up round is not recorded by pytest-benchmark but did append: drop it
    median = {name: statistics.median(values[1:]) for name, values in times.items()}
    best = {name: min(values[1:]) for name, values in times.items()}
    speedup = median["naive"] / median["tsrn"]
    benchmark.extra_info.update(
        batch=BATCH, device=str(DEVICE), threads=torch.get_num_threads(), speedup=round(speedup, 3),
        best_speedup=round(best["naive"] / best["tsrn"], 3),
        naive_samples_per_s=round(BATCH / median["naive"], 2), tsrn_samples_per_s=round(BATCH / median["tsrn"], 2),
    )
    for name in ("naive", "tsrn"):
        _RESULTS[f"{mode} {name} interleaved (median, best)"] = (BATCH / median[name], BATCH / best[name])
    _RESULTS[f"{mode} speed-up tsrn/naive (x)"] = (speedup, best["naive"] / best["tsrn"])
    if mode == "train" and DEVICE.type == "cpu":
        minimum = float(os.environ.get("TZBENCH_TSRN_MIN_SPEEDUP", "1.2"))
        assert speedup >= minimum, f"TSRN training step only {speedup:.2f}x faster than the naive one"
