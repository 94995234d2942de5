"""Hyper-parameters of TATT (imports only pydantic, so listing is cheap)."""

from __future__ import annotations

from pydantic import Field

from tzbench_successors.prior_params import TextPriorLossParams, TextPriorSRParams

__all__ = ["TATTLossParams", "TATTParams"]


class TATTParams(TextPriorSRParams):
    """TATT: a TSRN_TL_TRANS super-resolution network fed the text prior of a CRNN on its LR
    input through a transformer (the TP interpreter).

    Defaults are the official training command (``train_TATT.sh``: ``--arch tatt --STN --mask
    --sr_share --stu_iter=1 --use_distill --gradient``; ``out_text_channels=64`` = 2 * hidden_units, CRNN prior generator).
    """

    hidden_units: int = Field(
        default=32, ge=2, multiple_of=2,
        description="feature width 2 * hidden_units, also the TP transformer's (4 heads) and the text map's",
    )
    finetune_prior: bool = Field(
        default=True, description="train the prior generator by tpgsr_loss's distillation (official); off: frozen"
    )
    rotate_train: float = Field(
        default=5.0, ge=0, le=90,
        description="training only: max angle (degrees) of the rotated second pass for tatt_loss's structure-consistency "
                    "term (official --rotate_train=5); 0: no second pass",
    )


class TATTLossParams(TextPriorLossParams):
    """``tatt_loss``: ``tpgsr_loss``'s image and distillation terms (one stage) + TATT's rotation
    structure-consistency term. Defaults: the official script (``--gradient --use_distill
    --tssim_loss``, weights 100 : 100 : 10 = 1 : 1 : 0.1)."""

    tssim_weight: float = Field(
        default=0.1, ge=0, description="weight of 1 - TRI_SSIM(rotate(sr), sr of rotated lr, rotate(hr)); 0: off"
    )
