"""Registers the successors' models and losses (imports only pydantic params and spec types).

* ``tbsrn``: TSRN's skeleton with self-attention blocks over the 16x64 positions (Scene Text
  Telescope, CVPR 2021), trained with ``text_focus`` by default.
* ``text_focus``: its loss (needs the official transformer recognizer and confusion matrix;
  without them ``text_focus=false`` gives the MSE-only variant the official code also offers).
* ``pcan``: TSRN's skeleton with parallel horizontal/vertical BiGRU blocks, squeeze-excitation
  fusion and a texture attention module (ACM MM 2021), trained with ``pcan_loss`` by default.
* ``pcan_loss``: its loss, MSE + edge guidance (+ TextZoom's gradient prior on request).
* ``tpgsr``: TSRN_TL, TSRN with a CRNN's text prior on the LR image concatenated into every block
  (TIP 2023); the prior generator comes from the catalog (``crnn_tz`` or ``crnn``).
* ``tpgsr_loss``: its loss, per stage image loss + distillation from a frozen teacher CRNN.
* ``tatt``: TSRN_TL_TRANS, TSRN with a CRNN's text prior turned into a spatial text map by a
  transformer over the LR features (CVPR 2022), trained with ``tatt_loss`` by default.
* ``tatt_loss``: ``tpgsr_loss``'s image + distillation terms + the rotation structure-consistency term.
"""

from __future__ import annotations

from tzbench.hookspecs import hookimpl
from tzbench.specs import LossSpec, SRModelSpec

from tzbench_successors.params import TRANSFORMER_FILE, PCANLossParams, PCANParams, TBSRNParams, TextFocusLossParams
from tzbench_successors.tatt_params import TATTLossParams, TATTParams
from tzbench_successors.tpgsr_params import TPGSRLossParams, TPGSRParams

__all__ = ["register_sr_models", "register_losses", "SUCCESSOR_SPECS"]

_TELESCOPE = "Chen et al., Scene Text Telescope: Text-Focused Scene Image Super-Resolution, CVPR 2021"
_PCAN = ("Zhao et al., Scene Text Image Super-Resolution via Parallelly Contextual Attention Network, "
         "ACM MM 2021")
_TPGSR = "Ma, Guo, Zhang, Text Prior Guided Scene Text Image Super-Resolution, IEEE TIP 2023"
_TATT = ("Ma, Liang, Zhang, A Text Attention Network for Spatial Deformation Robust Scene Text Image "
         "Super-resolution, CVPR 2022")

SUCCESSOR_SPECS: tuple[SRModelSpec, ...] = (
    SRModelSpec(
        name="tbsrn",
        target="tzbench_successors.tbsrn:TBSRN",
        params=TBSRNParams,
        summary=("TBSRN: TSRN skeleton with self-attention blocks and a 2-D positional encoding, TPS-STN "
                 "(training only), text-focus loss (3,210,335 params; 3,220,992 with mask)"),
        paper=_TELESCOPE,
        default_loss="text_focus",
        in_channels=None,
    ),
    SRModelSpec(
        name="pcan",
        target="tzbench_successors.pcan:PCAN",
        params=PCANParams,
        summary=("PCAN: TSRN skeleton with parallel row/column BiGRU blocks, SE fusion, dense connections and a "
                 "texture attention module, TPS-STN (training only), edge-guidance loss (4,100,173 params with mask)"),
        paper=_PCAN,
        default_loss="pcan_loss",
        in_channels=None,
    ),
    SRModelSpec(
        name="tpgsr",
        target="tzbench_successors.tpgsr:TPGSR",
        params=TPGSRParams,
        summary=("TPGSR (TSRN_TL): a CRNN's 37-class probabilities on the LR image, turned into a feature map "
                 "concatenated into every block; prior generator fine-tuned jointly; multi-stage "
                 "(3,545,869 SR params with STN and mask, + 8,331,301 per CRNN)"),
        paper=_TPGSR,
        default_loss="tpgsr_loss",
        in_channels=None,
    ),
    SRModelSpec(
        name="tatt",
        target="tzbench_successors.tatt:TATT",
        params=TATTParams,
        summary=("TATT (TSRN_TL_TRANS): a CRNN's 37-class probabilities on the LR image, turned by a transformer "
                 "over the LR features into a text map concatenated into every block (7,608,334 SR params with "
                 "STN and mask, 4,906,177 of them the TP interpreter; + 8,331,301 CRNN)"),
        paper=_TATT,
        default_loss="tatt_loss",
        in_channels=None,
    ),
)


@hookimpl
def register_sr_models() -> list[SRModelSpec]:
    """TBSRN, PCAN, TPGSR and TATT."""
    return list(SUCCESSOR_SPECS)


@hookimpl
def register_losses() -> list[LossSpec]:
    """The text-focus loss of Scene Text Telescope, PCAN's edge-guidance image loss, TPGSR's and TATT's losses."""
    return [
        LossSpec(name="text_focus", target="tzbench_successors.text_focus_loss:TextFocusLoss",
                 params=TextFocusLossParams, paper=_TELESCOPE,
                 summary=("MSE + 10 x attention-map L1 + 0.0005 x confusion-weighted CE of a frozen transformer "
                          "recognizer (needs its official weights unless text_focus=false)"),
                 weights_file=TRANSFORMER_FILE, params_without_weights={"text_focus": False}),
        LossSpec(name="pcan_loss", target="tzbench_successors.pcan_loss:PCANLoss", params=PCANLossParams, paper=_PCAN,
                 summary="MSE + 1e-4 x Sobel edge-guidance L1 on RGB (+ 1e-4 x TextZoom's gradient prior if gradient=true)"),
        LossSpec(name="tpgsr_loss", target="tzbench_successors.tpgsr_loss:TPGSRLoss", params=TPGSRLossParams,
                 paper=_TPGSR,
                 summary=("per stage of a tpgsr model: TextZoom's image loss + distillation (L1 + KL) of a frozen "
                          "teacher CRNN's HR reading into the prior generator's LR reading")),
        LossSpec(name="tatt_loss", target="tzbench_successors.tatt_loss:TATTLoss", params=TATTLossParams, paper=_TATT,
                 summary=("for a tatt model: tpgsr_loss's image + distillation terms + 0.1 x (1 - TRI_SSIM) between the "
                          "rotated SR, the SR of the rotated LR and the rotated HR (rotation structure consistency)")),
    ]
