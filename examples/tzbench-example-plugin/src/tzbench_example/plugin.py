"""Registers the example components with tzbench: an SR model, a judge and a dataset.

Only torch-free modules are imported here: targets are "module:attr" strings that tzbench
imports when a component is built, so `tzbench list` stays cheap.
"""

from tzbench import DatasetSpec, RecognizerSpec, SRModelSpec, hookimpl
from tzbench_example.params import BarsParams, ColumnJudgeParams, ESPCNParams


@hookimpl
def register_sr_models() -> list[SRModelSpec]:
    return [
        SRModelSpec(
            name="espcn",
            target="tzbench_example.espcn:ESPCN",
            params=ESPCNParams,
            summary="ESPCN: efficient sub-pixel convolution (example third-party plugin)",
            paper="Shi et al., CVPR 2016",
            default_loss="l2",
            in_channels=None,  # follows the `mask` param
        )
    ]


@hookimpl
def register_recognizers() -> list[RecognizerSpec]:
    return [
        RecognizerSpec(
            name="column_judge",
            target="tzbench_example.column_judge:ColumnJudge",
            params=ColumnJudgeParams,
            summary="example judge: a seeded, untrained CTC reader of digits (shows the contract)",
            charset="0123456789",
            needs_weights=False,  # True would make the runner look for `weights` files and pass the path
        )
    ]


@hookimpl
def register_datasets() -> list[DatasetSpec]:
    return [
        DatasetSpec(
            name="bars",
            target="tzbench_example.bars:Bars",
            params=BarsParams,
            summary="example dataset: digits drawn as bars, generated offline and deterministically",
            splits=("train", "val", "test"),
            subsets=("easy", "medium", "hard"),
        )
    ]
