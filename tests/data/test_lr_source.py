"""lr_source='bicubic' on synth and wild: LR is exactly PIL-bicubic x2 of the HR (paper section 5.4)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import tzbench
from tzbench.data import LR_SIZE


@pytest.mark.parametrize("name,params", [("synth", {"n_train": 20, "n_test": 4}), ("wild", {"max_samples": 6})])
def test_bicubic_lr_is_bicubic_of_hr(name: str, params: dict) -> None:
    real = tzbench.create_dataset(name, cache=False, **params).load("train")
    bic = tzbench.create_dataset(name, cache=False, lr_source="bicubic", **params).load("train")
    assert len(real) == len(bic)
    for i in range(3):
        a, b = real[i], bic[i]
        assert np.array_equal(a["hr"].numpy(), b["hr"].numpy()) and a["label"] == b["label"]
        hr = Image.fromarray(b["hr"].permute(1, 2, 0).numpy())
        expected = np.asarray(hr.resize(LR_SIZE, Image.BICUBIC))
        assert np.array_equal(b["lr"].permute(1, 2, 0).numpy(), expected)
        assert not np.array_equal(a["lr"].numpy(), b["lr"].numpy())


def test_bad_lr_source_is_refused() -> None:
    with pytest.raises(Exception, match="lr_source"):
        tzbench.create_dataset("synth", lr_source="bilinear")
