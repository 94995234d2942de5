"""Registers TSRN and its Table 3 ablations (imports only pydantic params and spec types).

* ``tsrn``: 5 SRBs + TPS-STN alignment, trained with ``tsrn_loss`` (MSE over all channels
  + 1e-4 x gradient-profile loss on RGB), the full model of the paper.
* ``tsrn_srb_align``: the same architecture trained with plain L2 (Table 3, "+ align").
* ``tsrn_srb``: 5 SRBs without the alignment module, L2 (Table 3, "5 x SRB").

The channel count follows ``mask`` (4 = RGB + binary mask by default, as in the paper).
"""

from __future__ import annotations

from tzbench.hookspecs import hookimpl
from tzbench.specs import PretrainedWeights, SRModelSpec

from tzbench_tsrn.params import TSRNParams, TSRNSRBAlignParams, TSRNSRBParams

__all__ = ["register_sr_models", "TSRN_SPECS"]

_PAPER = "Wang et al., Scene Text Image Super-Resolution in the Wild, ECCV 2020"
_TARGET = "tzbench_tsrn.tsrn:TSRN"

TSRN_SPECS: tuple[SRModelSpec, ...] = (
    SRModelSpec(
        name="tsrn",
        target=_TARGET,
        params=TSRNParams,
        summary=(
            "TSRN: 5 sequential residual blocks (conv + BiGRU along columns and rows) + TPS-STN "
            "alignment (training only), mask channel, gradient-profile loss (2,681,677 params)."
        ),
        paper=_PAPER,
        default_loss="tsrn_loss",
        in_channels=None,
        pretrained=(
            PretrainedWeights(
                tag="wild-cpu",
                resource="tzbench_tsrn:weights/tsrn-wild-cpu.safetensors",
                sha256="d8e0dfd5df3fde50fdc306b3bba0cfc618569949d47d69c5e1c28dcace6fa976",
                summary=("cpu recipe on wild (6,000 steps x 16, stn_at_test), run 1; wild test: PSNR 23.83 "
                         "(bicubic 22.57), ppocr 59.5% (62.7%), ppocrv2 43.9% (31.9%)"),
            ),
            PretrainedWeights(
                tag="wild-cpu-text",
                resource="tzbench_tsrn:weights/tsrn-wild-cpu-text.safetensors",
                sha256="633485c220b0fb4db32caac8ac346515adf9e2016f4fcc84a0dcba07231e4553",
                summary=("cpu_text recipe on wild (5,000 steps, tsrn_loss + 0.01 x crnn_tz text prior), run 5; "
                         "wild test: PSNR 23.53 (bicubic 22.57), ppocr 61.5% (62.7%), ppocrv2 42.9% (31.9%); "
                         "its crnn_tz column (46.2%) is not independent"),
            ),
        ),
    ),
    SRModelSpec(
        name="tsrn_srb_align",
        target=_TARGET,
        params=TSRNSRBAlignParams,
        summary="TSRN ablation (Table 3): 5 x SRB + alignment, plain L2 loss (2,681,677 params).",
        paper=_PAPER,
        default_loss="l2",
        in_channels=None,
    ),
    SRModelSpec(
        name="tsrn_srb",
        target=_TARGET,
        params=TSRNSRBParams,
        summary="TSRN ablation (Table 3): 5 x SRB, no alignment module, plain L2 loss (826,629 params).",
        paper=_PAPER,
        default_loss="l2",
        in_channels=None,
    ),
)


@hookimpl
def register_sr_models() -> list[SRModelSpec]:
    """TSRN and its two ablations."""
    return list(TSRN_SPECS)
