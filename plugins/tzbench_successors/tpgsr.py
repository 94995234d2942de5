"""TPGSR: Text Prior Guided Super-Resolution (Ma, Guo, Zhang, "Text Prior Guided Scene Text Image
Super-Resolution", IEEE TIP 2023), the TSRN variant ``TSRN_TL`` with the official state-dict layout.

Architecture (scale 2, 16x64 -> 32x128, C = 4 with the mask channel, h = 32, t = 32)::

    prior: a CRNN's per-frame class probabilities on the LR image, softmax of (T=26, B, 37)
           logits, laid out (B, 37, 1, T)  (the recognizer reads bicubic 32x100 gray of lr[:, :3])
    [train only] x -> STNHead (on the 16x64 input itself) -> 20 points -> TPS -> (16x64)
    infoGen: 4 x [ConvTranspose3x3 (no bias) + BN + ReLU], 37 -> 512 -> 128 -> 64 -> t channels,
             strides 2, 2, 2 and (2, 1): (1, 26) -> (1, 203); bilinear (align_corners=True) to x's HxW
    block1  = Conv9x9(C -> 2h) + PReLU
    block2..block{n+1}: n text-guided recurrent residual blocks
        r = BN(conv3x3(mish(BN(conv3x3(x)))))
        r = gru1(cat[r, text map] with H and W swapped)   (a GRU block 2h + t -> 2h, down the columns)
        out = gru2(x + r)                                  (a GRU block along the rows)
    block{n+2} = Conv3x3 + BN
    block{n+3} = [Conv3x3(2h -> 8h) + PixelShuffle(2) + mish] * log2(scale) + Conv9x9(2h -> C)
    y = tanh(block{n+3}(block1 + block{n+2}))

Multi-stage (the official ``tsrn_tl_cascade``): stage i runs its prior generator on the previous
stage's output (stage 0 on the LR image) and the SR network on the *LR image* with that prior.

:class:`TSRNTL` is the SR network alone, with the prior as an explicit input, so it is testable
without a recognizer. :class:`TPGSR` is what the runner builds: TSRN_TL plus the prior
generator(s) made through the core catalog (``crnn_tz`` by default, ``crnn`` with official
weights), both trained by the runner's loss unless ``finetune_prior=False``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tzbench.layers.recurrent import Mish, RowBiGRU
from tzbench.layers.tps import STNHead, TPSSpatialTransformer
from tzbench.layers.upsample import UpsampleBlock, upsample_stages
from tzbench.weights import load_state_dict_file, load_strict
from tzbench_successors.text_prior import PRIOR_CLASSES, PRIOR_FRAMES, layout_probs, make_prior_generator, probs_to_prior

__all__ = ["TPGSR", "TSRNTL", "InfoGen", "StageReadings", "load_official_tsrn_tl", "load_tsrn_tl_state_dict",
           "make_prior_generator", "probs_to_prior", "semantic_loss"]

_Mish = Mish


GruBlock = RowBiGRU


class TextGuidedResidualBlock(nn.Module):
    """TSRN's SRB with the text map concatenated before the column GRU (official
    ``RecurrentResidualBlockTL``): its ``gru1`` reads 2h + t channels."""

    def __init__(self, channels: int, text_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.gru1 = GruBlock(channels + text_channels, channels)
        self.prelu = _Mish()  # the official attribute name; a mish, without parameters
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)
        self.gru2 = GruBlock(channels, channels)

    def forward(self, x: Tensor, text_map: Tensor) -> Tensor:
        residual = self.bn2(self.conv2(self.prelu(self.bn1(self.conv1(x)))))
        residual = torch.cat([residual, text_map], 1)
        residual = self.gru1(residual.transpose(-1, -2)).transpose(-1, -2)
        return self.gru2(x + residual)


class InfoGen(nn.Module):
    """The text-prior encoder: (B, classes, 1, T) probabilities -> (B, t, 1, 8T - 5) features."""

    def __init__(self, text_classes: int = PRIOR_CLASSES, out_channels: int = 32) -> None:
        super().__init__()
        self.tconv1 = nn.ConvTranspose2d(text_classes, 512, 3, 2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(512)
        self.tconv2 = nn.ConvTranspose2d(512, 128, 3, 2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(128)
        self.tconv3 = nn.ConvTranspose2d(128, 64, 3, 2, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(64)
        self.tconv4 = nn.ConvTranspose2d(64, out_channels, 3, (2, 1), padding=(1, 0), bias=False)
        self.bn4 = nn.BatchNorm2d(out_channels)

    def forward(self, prior: Tensor) -> Tensor:
        x = F.relu(self.bn1(self.tconv1(prior)))
        x = F.relu(self.bn2(self.tconv2(x)))
        x = F.relu(self.bn3(self.tconv3(x)))
        return F.relu(self.bn4(self.tconv4(x)))


@dataclass(frozen=True)
class StageReadings:
    """What a training forward of :class:`TPGSR` leaves on its output for ``tpgsr_loss``:
    every stage's SR output (the last is the returned tensor) and its prior generator's
    (T, B, 37) probabilities on that stage's input, before prior dropout."""

    outputs: tuple[Tensor, ...]
    probs: tuple[Tensor, ...]


class TSRNTL(nn.Module):
    """TSRN_TL, TPGSR's SR network: ``forward(lr, prior)`` -> (B, C, H*s, W*s) in [-1, 1].

    Args:
        scale_factor: upscaling factor, a power of two (2 in TextZoom).
        width, height: HR size; the TPS samples to (height/s, width/s).
        stn: build the TPS-STN (its keys are in the state dict); it runs in training only.
        srb_nums: number of text-guided residual blocks.
        mask: 4 input/output channels (RGB + binary mask) instead of 3.
        hidden_units: feature width ``2 * hidden_units``.
        text_channels: channels of the text feature map (official ``out_text_channels``).
        text_classes: classes of the prior (37: CTC blank + 0-9a-z).
        stn_at_test: also rectify in eval mode (the official code does not).
        grid_sample_align_corners: ``align_corners`` of the TPS ``grid_sample``; False is what
            the official code does under torch >= 1.3.
    """

    def __init__(self, scale_factor: int = 2, width: int = 128, height: int = 32, stn: bool = True,
                 srb_nums: int = 5, mask: bool = True, hidden_units: int = 32, text_channels: int = 32,
                 text_classes: int = PRIOR_CLASSES, stn_at_test: bool = False,
                 grid_sample_align_corners: bool = False) -> None:
        super().__init__()
        upsample_blocks = upsample_stages(scale_factor)
        in_planes = 4 if mask else 3
        channels = 2 * hidden_units
        self.in_planes = self.in_channels = in_planes
        self.srb_nums, self.stn, self.stn_at_test, self.text_classes = srb_nums, stn, stn_at_test, text_classes
        self.block1 = nn.Sequential(nn.Conv2d(in_planes, channels, kernel_size=9, padding=4), nn.PReLU())
        for i in range(srb_nums):
            setattr(self, f"block{i + 2}", TextGuidedResidualBlock(channels, text_channels))
        self.infoGen = InfoGen(text_classes, text_channels)
        setattr(self, f"block{srb_nums + 2}",
                nn.Sequential(nn.Conv2d(channels, channels, kernel_size=3, padding=1), nn.BatchNorm2d(channels)))
        tail: list[nn.Module] = [UpsampleBlock(channels, 2) for _ in range(upsample_blocks)]
        tail.append(nn.Conv2d(channels, in_planes, kernel_size=9, padding=4))
        setattr(self, f"block{srb_nums + 3}", nn.Sequential(*tail))
        if stn:
            self.tps = TPSSpatialTransformer(output_image_size=(height // scale_factor, width // scale_factor),
                                             num_control_points=20, margins=(0.05, 0.05),
                                             align_corners=grid_sample_align_corners)
            # TPGSR's head pools (1, 2) last, so it reads the 16x64 LR image itself (no resize)
            self.stn_head = STNHead(in_planes=in_planes, num_ctrlpoints=20, activation=None, last_pool=(1, 2))

    def rectify(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The alignment module on the LR input as it is: ``(rectified, control points (B, 20, 2))``."""
        if not self.stn:
            raise RuntimeError("this TSRN_TL was built with stn=False")
        _, ctrl_points = self.stn_head(x)
        rectified, _ = self.tps(x, ctrl_points)
        return rectified, ctrl_points

    def text_map(self, prior: Tensor, size: tuple[int, int]) -> Tensor:
        """The prior's feature map at ``size`` = (H, W): infoGen then bilinear, align_corners=True."""
        return F.interpolate(self.infoGen(prior), size, mode="bilinear", align_corners=True)

    def forward(self, x: Tensor, prior: Tensor | None = None) -> Tensor:
        """``x`` (B, C, h, w) in [0, 1], ``prior`` (B, 37, 1, T) probabilities or None (zeros,
        as the official code does) -> (B, C, h*s, w*s) in [-1, 1] (tanh)."""
        if x.ndim != 4 or x.shape[1] != self.in_planes:
            raise ValueError(f"TSRN_TL expects (B, {self.in_planes}, H, W) input, got {tuple(x.shape)}")
        if prior is None:
            prior = x.new_zeros((x.shape[0], self.text_classes, 1, PRIOR_FRAMES))
        elif prior.ndim != 4 or prior.shape[:3] != (x.shape[0], self.text_classes, 1):
            raise ValueError(f"TSRN_TL expects a ({x.shape[0]}, {self.text_classes}, 1, T) prior, "
                             f"got {tuple(prior.shape)}")
        if self.stn and (self.training or self.stn_at_test):
            x, _ = self.rectify(x)
        text = self.text_map(prior, (x.shape[2], x.shape[3]))
        feat1 = self.block1(x)
        feat = feat1
        for i in range(self.srb_nums):
            feat = getattr(self, f"block{i + 2}")(feat, text)
        feat = getattr(self, f"block{self.srb_nums + 2}")(feat)
        return torch.tanh(getattr(self, f"block{self.srb_nums + 3}")(feat1 + feat))


def semantic_loss(pred: Tensor, target: Tensor) -> Tensor:
    """TPGSR's distillation term between two probability tensors (official ``SemanticLoss``):
    ``mean|target - pred| + KLDivLoss(mean)(log(pred + 1e-20), target + 1e-20)``.

    The KL is averaged over every element (torch's ``reduction='mean'``, as the official code
    gets by default), not per frame. The official loop weights it by 100.
    """
    eps = 1e-20
    kl = F.kl_div(torch.log(pred + eps), target + eps, reduction="sum") / target.numel()
    return torch.abs(target - pred).mean() + kl


class TPGSR(nn.Module):
    """TPGSR as the runner builds it: ``forward(lr)`` -> SR (B, C, 2h, 2w) in [-1, 1].

    The prior generator (a CTC recognizer: ``crnn_tz`` by default, or the official ``crnn``)
    reads each stage's input; its network is a submodule (``tpg.<i>.*``), so it is trained
    with the SR network (the official joint fine-tuning) and saved in the checkpoint, unless
    ``finetune_prior=False`` freezes it (then it always runs in eval mode). ``prior_info``
    says which prior was used and the sha256 of its starting weights.

    Args: see :class:`~tzbench_successors.tpgsr_params.TPGSRParams`.
    """

    def __init__(self, scale_factor: int = 2, width: int = 128, height: int = 32, stn: bool = True,
                 srb_nums: int = 5, mask: bool = True, hidden_units: int = 32, text_channels: int = 32,
                 stn_at_test: bool = False, grid_sample_align_corners: bool = False, prior: str = "crnn_tz",
                 prior_weights: str | None = None, finetune_prior: bool = True, stages: int = 1,
                 share_sr: bool = True, share_prior: bool = False, prior_dropout: float = 0.25) -> None:
        super().__init__()
        if stages < 1:
            raise ValueError(f"stages must be >= 1, got {stages}")
        sr = TSRNTL(scale_factor, width, height, stn, srb_nums, mask, hidden_units, text_channels,
                    PRIOR_CLASSES, stn_at_test, grid_sample_align_corners)
        self.sr = nn.ModuleList([sr] + [copy.deepcopy(sr) for _ in range(0 if share_sr else stages - 1)])
        rec, self.prior_info = make_prior_generator(prior, prior_weights)
        # The recognizer object holds the preprocessing; only its network is a submodule.
        self.__dict__["_reader"] = rec
        nets = [rec.net] + [copy.deepcopy(rec.net) for _ in range(0 if share_prior else stages - 1)]
        self.tpg = nn.ModuleList(nets)
        self.tpg.requires_grad_(finetune_prior)
        self.in_planes = self.in_channels = sr.in_planes
        self.stages, self.finetune_prior, self.prior_dropout = stages, finetune_prior, prior_dropout

    def train(self, mode: bool = True) -> TPGSR:
        super().train(mode)
        if not self.finetune_prior:
            self.tpg.eval()  # a frozen prior keeps its running BN statistics
        return self

    def stage_probs(self, images: Tensor, stage: int = 0) -> Tensor:
        """Stage ``stage``'s generator on ``images``: (T, B, 37) softmax probabilities."""
        net = self.tpg[min(stage, len(self.tpg) - 1)]
        return torch.softmax(net(self._reader.preprocess(images[:, :3])), -1)

    def prior(self, images: Tensor, stage: int = 0) -> Tensor:
        """The (B, 37, 1, 26) prior of ``images`` by stage ``stage``'s generator (no dropout)."""
        return layout_probs(self.stage_probs(images, stage))

    def forward(self, lr: Tensor) -> Tensor:
        out = lr
        outputs: list[Tensor] = []
        probs: list[Tensor] = []
        for i in range(self.stages):
            p = self.stage_probs(out, i)
            prior = layout_probs(p)
            if self.training and self.prior_dropout > 0:
                # official "prior dropout": the first B // 4 samples train without a prior
                keep = torch.ones(lr.shape[0], device=lr.device, dtype=prior.dtype)
                keep[: int(lr.shape[0] * self.prior_dropout)] = 0
                prior = prior * keep.view(-1, 1, 1, 1)
            out = self.sr[min(i, len(self.sr) - 1)](lr, prior)
            outputs.append(out)
            probs.append(p)
        if self.training:
            # The runner hands its loss only (sr, hr); tpgsr_loss needs every stage's output and
            # prior probabilities (the official per-stage image and distillation terms), so they
            # travel on the returned tensor.
            out.tpgsr_stages = StageReadings(tuple(outputs), tuple(probs))  # type: ignore[attr-defined]
        return out


def load_official_tsrn_tl(model: TSRNTL, path: str | Path) -> TSRNTL:
    """Load an official TPGSR SR checkpoint (``model_best_<i>.pth``: ``{'state_dict_G': ...}``).

    Keys may carry a DataParallel ``module.`` prefix; BN buffers may lack
    ``num_batches_tracked``. Anything else missing or unexpected, or a shape mismatch, raises
    :class:`tzbench.weights.WeightsError` naming the keys. Read with ``weights_only=True``.
    The recognizer (``recognizer_best_<i>.pth``) is a plain CRNN state dict: load it into
    ``TPGSR.tpg[i]`` (or give it as ``prior_weights`` with ``prior='crnn'``).
    """
    return load_tsrn_tl_state_dict(model, load_state_dict_file(path, key="state_dict_G"), source=str(path))


def load_tsrn_tl_state_dict(model: TSRNTL, state: Mapping[str, Tensor], source: str = "<state dict>") -> TSRNTL:
    """Strictly load an official-layout TSRN_TL state dict (see :func:`load_official_tsrn_tl`)."""
    expected = f"an official TPGSR TSRN_TL checkpoint for TSRN_TL(mask={model.in_planes == 4}, stn={model.stn}, srb_nums={model.srb_nums})"
    return load_strict(model, state, source=source, expected=expected)  # type: ignore[return-value]
