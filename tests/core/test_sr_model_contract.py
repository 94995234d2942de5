"""The timm-style contract (``tzbench.testing.check_sr_model``) for every installed SR model.

The list comes from the catalog, so a newly registered model is checked without anyone adding
it here. Backward through the full 23-RRDB / 32-block models takes from seconds to over a minute
on a loaded 2-core machine: the default run checks their forward at full depth and their
backward on the same blocks at reduced depth (the code path is identical); the full-depth
backward is a slow test in tests/plugins/test_baselines_contract.py.
"""

from __future__ import annotations

from typing import Any

import pytest

import tzbench
from tzbench.testing import check_sr_model

_CATALOG = tzbench.get_catalog()
NAMES = _CATALOG.names("sr-models")
# Parameters that scale 2 never uses: LapSRN's x4 pyramid level, kept for strict loading.
UNUSED_AT_X2 = {"lapsrn": ("convt_I2.", "convt_R2.", "convt_F2.")}
# TATT: layers the official TSRN_TL_TRANS builds (and its checkpoints hold) but never calls, and its
# prior generator, which reads the LR image and feeds the SR network a detached prior (the official
# loop), so only tpgsr_loss's distillation term reaches it.
_TATT_DEC = "sr.infoGen.transformer.decoder.layers."
UNUSED = {**UNUSED_AT_X2, "tatt": ("sr.infoGen.fc_feature_in.", *(f"{_TATT_DEC}{i}.{m}." for i in (0, 1)
                                                                  for m in ("self_attn", "norm1")), "tpg.")}
HEAVY_REDUCED = {"rrdb": {"num_blocks": 2}, "edsr": {"num_blocks": 2}}


def _cases() -> list[Any]:
    cases = []
    for name in NAMES:
        if name in HEAVY_REDUCED:
            cases.append(pytest.param(name, {}, False, id=f"{name}-full-forward"))
            cases.append(pytest.param(name, HEAVY_REDUCED[name], True, id=f"{name}-reduced-backward"))
        else:
            cases.append(pytest.param(name, {}, True, id=name))
    return cases


def test_builtin_models_are_covered() -> None:
    assert {"bicubic", "srcnn", "srresnet", "rrdb", "edsr", "lapsrn", "tsrn", "tsrn_srb", "tsrn_srb_align",
            "tbsrn"} <= set(NAMES)


@pytest.mark.parametrize(("name", "params", "backward"), _cases())
def test_sr_model_contract(name: str, params: dict[str, Any], backward: bool) -> None:
    check_sr_model(name, _CATALOG, params=params, backward=backward, unused=UNUSED.get(name, ()))

