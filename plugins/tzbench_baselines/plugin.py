"""Registers the TextZoom baselines: bicubic and the seven SR networks of the paper's Table 4.

Imports only pydantic params and spec types, so ``tzbench list`` never imports torch models.
Default losses are those of TextZoom's Table 4. What the reference implementation fixes about
training is stated in each summary: the baselines are trained without ``--mask`` (3-channel
input), except SRResNet, whose channel count follows its ``mask`` parameter.
"""

from __future__ import annotations

from tzbench.hookspecs import hookimpl
from tzbench.specs import PretrainedWeights, SRModelSpec

from tzbench_baselines.params import (
    BicubicParams,
    EDSRParams,
    LapSRNParams,
    RDNParams,
    RRDBParams,
    SRCNNParams,
    SRResNetParams,
    VDSRParams,
)

__all__ = ["register_sr_models", "BASELINE_SPECS"]

_RGB_ONLY = "Takes RGB only (official runs without --mask)."
_STN_NOTE = "stn=true adds TextZoom's TPS-STN, applied in training only."

BASELINE_SPECS: tuple[SRModelSpec, ...] = (
    SRModelSpec(
        name="bicubic",
        target="tzbench_baselines.bicubic:Bicubic",
        params=BicubicParams,
        summary="Bicubic x2 interpolation clamped to [0,1]; no parameters, any channel count.",
        paper="Keys, Cubic convolution interpolation for digital image processing, IEEE TASSP 1981",
        default_loss="l2",
        in_channels=3,
        trainable=False,
    ),
    SRModelSpec(
        name="srcnn",
        target="tzbench_baselines.srcnn:SRCNN",
        params=SRCNNParams,
        summary=f"SRCNN 9-1-5 convs on the nearest-x2 input (20,099 params). {_RGB_ONLY} {_STN_NOTE}",
        paper="Dong et al., Learning a Deep Convolutional Network for Image Super-Resolution, ECCV 2014",
        default_loss="l2",
        in_channels=3,
        pretrained=(
            PretrainedWeights(
                tag="wild-cpu",
                resource="tzbench_baselines:weights/srcnn-wild-cpu.safetensors",
                sha256="3f5fb7087727fc5f80613000888eace71a704cac2766f8be867a4a2e8a171f37",
                summary=("cpu recipe on wild (20,000 steps x 16, best at step 6,000 by ppocr on val), run 4; wild "
                         "test: PSNR 23.13 (bicubic 22.57), ppocr 58.9% (62.7%), ppocrv2 34.6% (31.9%), "
                         "crnn_tz 40.8% (41.7%)"),
            ),
        ),
    ),
    SRModelSpec(
        name="vdsr",
        target="tzbench_baselines.vdsr:VDSR",
        params=VDSRParams,
        summary=f"VDSR, 20 bias-free convs, residual to the nearest-x2 input (667,008 params). {_RGB_ONLY} {_STN_NOTE}",
        paper="Kim et al., Accurate Image Super-Resolution Using Very Deep Convolutional Networks, CVPR 2016",
        default_loss="l2",
        in_channels=3,
    ),
    SRModelSpec(
        name="srresnet",
        target="tzbench_baselines.srresnet:SRResNet",
        params=SRResNetParams,
        summary=(
            "SRResNet, 5 residual blocks, sub-pixel x2, tanh output in [-1,1] (596,875 params with "
            f"mask). Channels follow mask (4 by default, as the reference constructs it). {_STN_NOTE}"
        ),
        paper="Ledig et al., Photo-Realistic Single Image Super-Resolution Using a GAN, CVPR 2017",
        default_loss="srresnet_loss",
        in_channels=None,
        pretrained=(
            PretrainedWeights(
                tag="wild-cpu",
                resource="tzbench_baselines:weights/srresnet-wild-cpu.safetensors",
                sha256="c76af59e92fb5b28275397cb4dfaa85c4bb345d6d3fcb891cb4be9ed8cee1ec9",
                summary=("cpu recipe on wild (6,000 steps x 16, best at step 2,000 by ppocr on val; MSE + TV, "
                         "no VGG19 term), run 8; wild test: PSNR 23.24 (bicubic 22.57), ppocr 60.0% (62.7%), "
                         "ppocrv2 40.2% (31.9%), crnn_tz 43.7% (41.7%)"),
            ),
        ),
    ),
    SRModelSpec(
        name="rrdb",
        target="tzbench_baselines.rrdb:RRDBNet",
        params=RRDBParams,
        summary=f"RRDBNet (ESRGAN generator), 23 RRDBs, nearest x2 + conv (16,661,059 params). {_RGB_ONLY}",
        paper="Wang et al., ESRGAN: Enhanced Super-Resolution Generative Adversarial Networks, ECCVW 2018",
        default_loss="l1",
        in_channels=3,
    ),
    SRModelSpec(
        name="edsr",
        target="tzbench_baselines.edsr:EDSR",
        params=EDSRParams,
        summary=(
            "EDSR, 32 blocks x 256 features, sub-pixel x2 (40,711,704 params, 24 of them the frozen "
            f"mean-shift convs). {_RGB_ONLY}"
        ),
        paper="Lim et al., Enhanced Deep Residual Networks for Single Image Super-Resolution, CVPRW 2017",
        default_loss="l1",
        in_channels=3,
    ),
    SRModelSpec(
        name="rdn",
        target="tzbench_baselines.rdn:RDN",
        params=RDNParams,
        summary=f"RDN, 3 residual dense blocks x 6 layers, sub-pixel x2 (1,033,091 params). {_RGB_ONLY}",
        paper="Zhang et al., Residual Dense Network for Image Super-Resolution, CVPR 2018",
        default_loss="l1",
        in_channels=3,
        pretrained=(
            PretrainedWeights(
                tag="wild-cpu",
                resource="tzbench_baselines:weights/rdn-wild-cpu.safetensors",
                sha256="0806005b05edd2b9e97b350c61cdaca6e8952b9dcb91eda6e94f808ec854facb",
                summary=("cpu recipe on wild (6,000 steps x 16, best at step 1,000 by ppocr on val), run 1 of "
                         "the 2026-12-02 database; wild test: PSNR 23.69 (bicubic 22.57), ppocr 60.1% (62.7%), "
                         "ppocrv2 41.7% (31.9%), crnn_tz 43.5% (41.7%)"),
            ),
        ),
    ),
    SRModelSpec(
        name="lapsrn",
        target="tzbench_baselines.lapsrn:LapSRN",
        params=LapSRNParams,
        summary=(
            "LapSRN, one x2 pyramid level of a colour LapSRN (873,824 params, the unused x4 level "
            f"included). {_RGB_ONLY} {_STN_NOTE}"
        ),
        paper="Lai et al., Deep Laplacian Pyramid Networks for Fast and Accurate Super-Resolution, CVPR 2017",
        default_loss="charbonnier",
        in_channels=3,
        pretrained=(
            PretrainedWeights(
                tag="wild-cpu",
                resource="tzbench_baselines:weights/lapsrn-wild-cpu.safetensors",
                sha256="5c82d5976aa23a2241ecc9c5f172f5594a7bb5e44449dd869408d1850a9e754f",
                summary=("cpu recipe on wild (6,000 steps x 16, per-channel convT init, best at step 500 by ppocr "
                         "on val), run 11; wild test: PSNR 23.38 (bicubic 22.57), ppocr 60.6% (62.7%), "
                         "ppocrv2 37.4% (31.9%), crnn_tz 42.5% (41.7%)"),
            ),
        ),
    ),
)


@hookimpl
def register_sr_models() -> list[SRModelSpec]:
    """The bicubic baseline and the seven SR baselines of TextZoom (scale 2)."""
    return list(BASELINE_SPECS)
