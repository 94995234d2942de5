"""Registers the successors' models and losses (imports only pydantic params and spec types).

* ``tbsrn``: TSRN's skeleton with self-attention blocks over the 16x64 positions (Scene Text
  Telescope, CVPR 2021), trained with ``text_focus`` by default.
* ``text_focus``: its loss (needs the official transformer recognizer and confusion matrix;
  without them ``text_focus=false`` gives the MSE-only variant the official code also offers).
"""

from __future__ import annotations

from tzbench.hookspecs import hookimpl
from tzbench.specs import LossSpec, SRModelSpec

from tzbench_successors.params import TRANSFORMER_FILE, TBSRNParams, TextFocusLossParams

__all__ = ["register_sr_models", "register_losses", "SUCCESSOR_SPECS"]

_TELESCOPE = "Chen et al., Scene Text Telescope: Text-Focused Scene Image Super-Resolution, CVPR 2021"

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
)


@hookimpl
def register_sr_models() -> list[SRModelSpec]:
    """TBSRN."""
    return list(SUCCESSOR_SPECS)


@hookimpl
def register_losses() -> list[LossSpec]:
    """The text-focus loss of Scene Text Telescope."""
    return [
        LossSpec(name="text_focus", target="tzbench_successors.text_focus_loss:TextFocusLoss",
                 params=TextFocusLossParams, paper=_TELESCOPE,
                 summary=("MSE + 10 x attention-map L1 + 0.0005 x confusion-weighted CE of a frozen transformer "
                          "recognizer (needs its official weights unless text_focus=false)"),
                 weights_file=TRANSFORMER_FILE, params_without_weights={"text_focus": False}),
    ]
