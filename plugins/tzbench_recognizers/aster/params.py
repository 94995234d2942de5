"""Torch-free metadata of the ASTER judge, ready for a ``RecognizerSpec``.

Imports only pydantic and :mod:`tzbench.specs` so that plugin listing never imports torch.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tzbench.specs import WeightsFile

__all__ = [
    "ASTERParams",
    "CHARSET",
    "VOC_ALL",
    "EOS_TOKEN",
    "PADDING_TOKEN",
    "UNKNOWN_TOKEN",
    "EOS",
    "PADDING",
    "UNKNOWN",
    "NUM_CLASSES",
    "WEIGHTS",
    "TARGET",
    "SUMMARY",
    "PAPER",
]

#: The official voc type 'all': digits, lower, upper, then string.punctuation (94 symbols).
VOC_ALL = (
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
)
# The three specials follow the symbols. Their *names* are what the official id->char table
# holds: PADDING decodes to the token 'PADDING', which the official normalisation drops whole.
EOS_TOKEN = "EOS"
PADDING_TOKEN = "PADDING"
UNKNOWN_TOKEN = "UNKNOWN"
EOS = len(VOC_ALL)  # 94
PADDING = EOS + 1  # 95
UNKNOWN = EOS + 2  # 96
NUM_CLASSES = EOS + 3  # 97

#: What the judge outputs after get_str_list's normalisation (lower-case alphanumerics).
CHARSET = "0123456789abcdefghijklmnopqrstuvwxyz"

#: The official file TextZoom loads (``torch.load(path)['state_dict']``, no prefix).
WEIGHTS = WeightsFile(
    filename="demo.pth.tar",
    sha256=None,
    source="aster.pytorch (ayumiymk) demo model, as linked from the TextZoom README",
)

TARGET = "tzbench_recognizers.aster.judge:ASTERRecognizer"
SUMMARY = "ASTER (TPS-STN + ResNet/BiLSTM + attention GRU, beam 5, voc 'all'), the TextZoom judge"
PAPER = (
    "Shi, Yang, Wang, Lyu, Yao, Bai. ASTER: An Attentional Scene Text Recognizer with "
    "Flexible Rectification. TPAMI 2018"
)


class ASTERParams(BaseModel):
    """Hyper-parameters of the ASTER judge.

    The network is fixed to TextZoom's ``RecognizerBuilder(arch='ResNet_ASTER',
    rec_num_classes=97, sDim=512, attDim=512, max_len_labels=100, eos=94, STN_ON=True)``;
    inference is its beam search with width 5 over up to 100 steps, by default stopped per sample
    as soon as the official search's top beam is decided (``beam_early_stop``).
    """

    model_config = ConfigDict(extra="forbid")

    mode: Literal["legacy", "native"] = Field(
        default="legacy",
        description="legacy: TextZoom's parse_aster_data (sr[:, :3]*2-1, no resize); "
        "native: aster.pytorch's Normalize(0.5, 0.5), the same [-1,1] range",
    )
    grid_sample_align_corners: bool = Field(
        default=True,
        description=(
            "align_corners of the TPS grid_sample, implicit in the official code: True is torch<=1.2 "
            "(the behaviour the released weights were trained under), False is torch>=1.3"
        ),
    )
    beam_width: int = Field(default=5, ge=1, description="beam width (TextZoom: 5)")
    max_len_labels: int = Field(default=100, ge=1, description="decoding steps (TextZoom: 100)")
    beam_early_stop: bool = Field(
        default=True,
        description="stop a sample's beam search once its top beam is provably final (the same strings as "
        "the official search, many times faster); False runs all max_len_labels steps as the official code",
    )
    weights: str | None = Field(default=None, description="path of demo.pth.tar (loaded strictly, weights_only)")
    device: str | None = Field(default=None, description="torch device; None picks CUDA when available")
    batch_size: int | None = Field(default=None, ge=1, description="max images per forward pass")
