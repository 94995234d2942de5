"""The shared upsampling stage: official key names, x2 per stage, scales that are not powers of two refused."""

from __future__ import annotations

import pytest
import torch

from tzbench.layers.upsample import UpsampleBlock, upsample_stages


@pytest.mark.parametrize(("scale", "stages"), [(1, 0), (2, 1), (4, 2), (8, 3)])
def test_stages_are_the_log2_of_the_scale(scale: int, stages: int) -> None:
    assert upsample_stages(scale) == stages


@pytest.mark.parametrize("scale", [0, 3, 6, -2])
def test_a_scale_that_is_not_a_power_of_two_is_refused(scale: int) -> None:
    with pytest.raises(ValueError, match=f"power of two, got {scale}"):
        upsample_stages(scale)


def test_a_block_doubles_height_and_width_with_the_official_keys() -> None:
    block = UpsampleBlock(8, 2)
    assert set(block.state_dict()) == {"conv.weight", "conv.bias"}
    assert block(torch.rand(2, 8, 5, 7)).shape == (2, 8, 10, 14)
