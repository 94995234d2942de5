"""What reaches the model, the loss, the metrics and the judges, checked by spies inside a real
train + eval: LR/HR in [0, 1] with a binary mask channel, the loss sees the raw (tanh-range)
output, metrics and judges see RGB clamped to [0, 1] and never the mask."""

from __future__ import annotations

from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict

from tzbench.api import get_catalog
from tzbench.config import ComponentRef, DataConfig, TrainConfig
from tzbench.db.store import Store
from tzbench.hookspecs import hookimpl
from tzbench.metrics import psnr_per_image
from tzbench.runner.train import train
from tzbench.specs import LossSpec, RecognizerSpec, SRModelSpec

SEEN: dict[str, list[torch.Tensor]] = {"model_in": [], "loss_sr": [], "loss_hr": [], "judge": []}


class _NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TanhMaskModel(torch.nn.Module):
    """RGB + mask in, RGB + mask out through a tanh (like TSRN): outputs reach [-1, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 4, 3, padding=1)
        with torch.no_grad():
            self.conv.bias.fill_(-0.5)  # pushes part of the output below 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        SEEN["model_in"].append(x.detach().clone())
        return torch.tanh(self.conv(torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")) * 3)


class SpyLoss(torch.nn.Module):
    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        SEEN["loss_sr"].append(sr.detach().clone())
        SEEN["loss_hr"].append(hr.detach().clone())
        return ((sr - hr) ** 2).mean()


class SpyJudge:
    name = "spyjudge"
    mode = "native"

    def recognize(self, images: torch.Tensor) -> list[str]:
        SEEN["judge"].append(images.detach().clone())
        return ["x"] * images.shape[0]


class _Plugin:
    @hookimpl
    def register_sr_models(self) -> list[SRModelSpec]:
        return [SRModelSpec(name="tanhmask", target="test_value_ranges:TanhMaskModel", params=_NoParams,
                            default_loss="spyloss", in_channels=4)]

    @hookimpl
    def register_losses(self) -> list[LossSpec]:
        return [LossSpec(name="spyloss", target="test_value_ranges:SpyLoss", params=_NoParams)]

    @hookimpl
    def register_recognizers(self) -> list[RecognizerSpec]:
        return [RecognizerSpec(name="spyjudge", target="test_value_ranges:SpyJudge", params=_NoParams,
                               needs_weights=False)]


def test_ranges_reaching_model_loss_metrics_and_judge(tmp_path: Path) -> None:
    for v in SEEN.values():
        v.clear()
    store = Store(f"sqlite:///{tmp_path / 'tz.db'}")
    cfg = TrainConfig(model=ComponentRef(name="tanhmask"),
                      data=DataConfig(params={"n_train": 40, "n_test": 8}, batch_size=8, eval_batch_size=8),
                      steps=2, val_every=2, val_max_samples=8, selection_judge="spyjudge", judges=["spyjudge"],
                      out_dir=str(tmp_path / "runs"))
    out = train(cfg, store, get_catalog(extra_plugins=[_Plugin()]), progress=False)
    assert out.status == "finished" and out.eval_run_id is not None

    x = torch.cat(SEEN["model_in"])
    assert x.shape[1] == 4 and x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert set(torch.unique(x[:, 3]).tolist()) <= {0.0, 1.0}  # the mask channel is binary

    sr, hr = torch.cat(SEEN["loss_sr"]), torch.cat(SEEN["loss_hr"])
    assert float(sr.min()) < 0.0  # the loss sees the raw tanh output (no clamp in training)
    assert hr.shape[1] == 4 and 0.0 <= float(hr.min()) and float(hr.max()) <= 1.0
    assert set(torch.unique(hr[:, 3]).tolist()) <= {0.0, 1.0}

    seen = torch.cat(SEEN["judge"])
    assert seen.shape[1] == 3  # the judge never gets the mask
    assert 0.0 <= float(seen.min()) and float(seen.max()) <= 1.0  # clamped before reading

    # the recorded PSNR is RGB-only on the clamped output (mask excluded)
    from tzbench.runner.checkpoint import load_sr_checkpoint
    from tzbench.runner.context import build_dataset, fetch

    net = TanhMaskModel()
    load_sr_checkpoint(out.best_checkpoint, net, "tanhmask")
    provider, _ = build_dataset(get_catalog(), "synth", {"n_train": 40, "n_test": 8}, 4)
    batch = fetch(provider.load("test", "easy"), torch.arange(8))
    with torch.no_grad():
        want = float(psnr_per_image(net.eval()(batch["lr"])[:, :3].clamp(0, 1), batch["hr"][:, :3]).mean())
    got = {r.subset: r.value for r in store.results(out.eval_run_id) if r.metric == "psnr"}
    assert abs(got["easy"] - want) < 1e-3
