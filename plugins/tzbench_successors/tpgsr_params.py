"""Hyper-parameters of TPGSR (imports only pydantic, so listing is cheap)."""

from __future__ import annotations

from pydantic import Field

from tzbench_successors.prior_params import PRIORS, TextPriorLossParams, TextPriorSRParams

__all__ = ["PRIORS", "TPGSRLossParams", "TPGSRParams"]


class TPGSRParams(TextPriorSRParams):
    """TPGSR: a TSRN_TL super-resolution network fed the text prior of a CRNN on its LR input.

    Defaults are the official TPGSR-TSRN training command (``train_TPGSR-TSRN.sh``: ``--STN
    --mask --sr_share --stu_iter=1``, CRNN prior generator, fine-tuned jointly).
    """

    hidden_units: int = Field(default=32, gt=0, description="feature width is 2 * hidden_units (even)")
    text_channels: int = Field(default=32, ge=2, multiple_of=2, description="channels of the text feature map")
    finetune_prior: bool = Field(
        default=True, description="train the prior generator jointly with the SR network (official); off: frozen"
    )
    stages: int = Field(default=1, ge=1, le=5, description="multi-stage: each stage re-reads the previous SR output")
    share_sr: bool = Field(default=True, description="one SR network for every stage (official --sr_share)")
    share_prior: bool = Field(default=False, description="one prior generator for every stage (official --tpg_share)")
    prior_dropout: float = Field(
        default=0.25, ge=0, lt=1,
        description="training only: the prior of the first floor(B * p) samples of a batch is zeroed (official B // 4)",
    )


class TPGSRLossParams(TextPriorLossParams):
    """``tpgsr_loss``: per stage, TextZoom's image loss + the distillation of a frozen teacher's
    HR reading into the prior generator's LR reading. Defaults: the official script
    (``--gradient --use_distill``, weights 1 / 1e-4 and 100 : 100)."""
