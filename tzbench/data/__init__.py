"""tzbench's data layer: TextZoom LMDB reading/writing, synthetic pairs, cache, collate.

No model code lives here. Dataset *providers* (what ``--data textzoom|synth|wild`` names)
are in the ``tzbench_textzoom`` plugin; this package holds the pieces they are built from:

* :mod:`~tzbench.data.images`: decoding, official bicubic resizing, the mask, :func:`collate`;
* :mod:`~tzbench.data.dataset`: :class:`PairDataset` (scan, bad-sample policy, uint8 cache);
* :mod:`~tzbench.data.textzoom_lmdb`: the official LMDB layout (reader, writer, source);
* :mod:`~tzbench.data.synth` and :mod:`~tzbench.data.degrade`: the synthetic generator;
* :mod:`~tzbench.data.folder`: folders of crops with ``labels.tsv``;
* :mod:`~tzbench.data.convert`: converters (make/export/inspect LMDB, write synthetic LMDB).
"""

from tzbench.data.dataset import ConcatPairDataset, PairDataset, PairDatasetBase, PairSource, RawPair
from tzbench.data.errors import BadSample, DatasetError, SampleError, resolve_policy
from tzbench.data.images import (
    HR_SIZE,
    LR_SIZE,
    collate,
    decode_image,
    mask_channel,
    mask_from_rgb,
    resize_bicubic,
    to_float01,
)
from tzbench.data.splits import carve_val

__all__ = [
    "HR_SIZE",
    "LR_SIZE",
    "BadSample",
    "ConcatPairDataset",
    "DatasetError",
    "PairDataset",
    "PairDatasetBase",
    "PairSource",
    "RawPair",
    "SampleError",
    "carve_val",
    "collate",
    "decode_image",
    "mask_channel",
    "mask_from_rgb",
    "resize_bicubic",
    "resolve_policy",
    "to_float01",
]
