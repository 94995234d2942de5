"""The example plugin's components pass tzbench's contract checks.

Run from the plugin folder with `python -m pytest tests` once the plugin is installed (or its
src/ is on PYTHONPATH). The specs come straight from the hooks, so the checks see exactly what
tzbench registers.
"""

from tzbench.testing import check_dataset, check_loss, check_recognizer, check_sr_model
from tzbench_example.bars import Bars
from tzbench_example.plugin import register_datasets, register_recognizers, register_sr_models


def test_espcn_contract() -> None:
    (spec,) = register_sr_models()
    check_sr_model(spec, params={"features": 8})
    check_sr_model(spec, params={"features": 8, "mask": True})  # in_channels=None: 4 channels with mask


def test_column_judge_contract() -> None:
    (spec,) = register_recognizers()
    readings = check_recognizer(spec)
    assert all(set(s) <= set("0123456789") for s in readings)


def test_bars_dataset_contract() -> None:
    (spec,) = register_datasets()
    check_dataset(spec, params={"n_train": 4, "n_val": 2, "n_test": 2})


def test_bars_label_is_in_the_hr_image() -> None:
    """Digit d is d + 1 bars two pixels apart, digits five apart: the HR image gives the label back."""
    ds = Bars(n_train=8).load("train", None)
    for item in (ds[i] for i in range(len(ds))):
        bars = [x for x, v in enumerate(item["hr"][0, 16].tolist()) if v < 128]
        groups = [1]
        for a, b in zip(bars, bars[1:]):
            groups[-1:] = [groups[-1] + 1] if b - a == 2 else [groups[-1], 1]
        assert "".join(str(g - 1) for g in groups) == item["label"]
    assert Bars(n_train=8).load("train", None)[3]["label"] == ds[3]["label"]  # deterministic


def test_espcn_trains_with_a_loss_that_passes_the_contract() -> None:
    """The espcn spec names the built-in l2 as its default loss; it is checked from the catalog."""
    (spec,) = register_sr_models()
    check_loss(spec.default_loss)
