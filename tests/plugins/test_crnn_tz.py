"""crnn_tz: the CRNN judge with the weights tzbench trained and ships.

The shipped file is found through the package, matches the sha256 pinned in the plugin and in
registry.yaml, reads exactly as the ``crnn`` judge does with the same file, and a changed
file is refused or, passed as ``weights=``, makes results not comparable.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import tzbench
from tzbench.registry import load_registry
from tzbench.runner.context import build_judges, comparability
from tzbench.weights import WeightsError, sha256_file
from tzbench_recognizers.checkpoints import read_recognizer_weights
from tzbench_recognizers.crnn.params import TZ_WEIGHTS
from tzbench_recognizers.crnn.tz import shipped_weights
from tzbench_recognizers.samples import CLEAN_WORDS, render_clean_words


def test_shipped_file_is_the_pinned_one_everywhere() -> None:
    path = shipped_weights()
    assert sha256_file(path) == TZ_WEIGHTS.sha256 == load_registry().judges["crnn_tz"].weights_sha256
    assert path.stat().st_size < 20 * 2**20  # float16: shipped inside the wheel
    _, meta = read_recognizer_weights(path, "crnn")
    prov = meta["provenance"]
    assert meta["recognizer"] == "crnn" and meta["params"]["mode"] == "legacy"
    assert prov["benchmark"] == "synth,wild" and prov["dtype"] == "float16" and prov["git_commit"]
    assert {"wild:easy", "wild:hard", "wild:all"} <= set(prov["test_scores"]["accuracy_hr/crnn"])
    assert "crnn_tz" in load_registry().default_judges


def test_reads_like_the_crnn_judge_with_the_same_file() -> None:
    images = render_clean_words(list(CLEAN_WORDS))
    tz = tzbench.create_recognizer("crnn_tz", device="cpu")
    crnn = tzbench.create_recognizer("crnn", device="cpu", weights=str(shipped_weights()))
    assert tz.recognize(images) == crnn.recognize(images)
    assert tz.mode == "legacy" and tz.model_path == shipped_weights()


def test_a_changed_shipped_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site" / "tzbench_recognizers"
    (site / "weights").mkdir(parents=True)
    data = bytearray(shipped_weights().read_bytes())
    data[-1] ^= 0xFF  # one flipped bit in the last tensor
    (site / "weights" / Path(TZ_WEIGHTS.resource.split(":")[1]).name).write_bytes(bytes(data))
    import copy
    import importlib.util

    real = importlib.util.find_spec

    def fake(name: str, *a, **k):  # noqa: ANN002, ANN003
        spec = real(name, *a, **k)
        if name == "tzbench_recognizers":  # a copy: find_spec returns the live module's __spec__
            spec = copy.copy(spec)
            spec.submodule_search_locations = [str(site)]
        return spec

    monkeypatch.setattr(importlib.util, "find_spec", fake)
    with pytest.raises(WeightsError, match="differs from the pinned"):
        tzbench.create_recognizer("crnn_tz", device="cpu")


def test_other_weights_read_but_are_not_comparable(tmp_path: Path) -> None:
    catalog = tzbench.get_catalog()
    (judge,) = build_judges(catalog, ["crnn_tz"], torch.device("cpu"))
    assert judge.weights_sha256 == TZ_WEIGHTS.sha256 and not judge.trained_here
    assert comparability(None, "wild", {}, {}, [judge], "clean", None)[2]

    state, _ = read_recognizer_weights(shipped_weights(), "crnn")
    from tzbench.runner.checkpoint import save_checkpoint

    other = save_checkpoint(tmp_path / "other", {k: v.float() if v.is_floating_point() else v for k, v in state.items()},
                            {"kind": "recognizer", "recognizer": "crnn", "params": {"mode": "legacy"}})
    rec = tzbench.create_recognizer("crnn_tz", device="cpu", weights=str(other))
    from tzbench.runner.context import Judge

    j = Judge("crnn_tz", rec, sha256_file(rec.model_path), "legacy")
    comparable, reason = comparability(None, "wild", {}, {}, [j], "clean", None)[2:]
    assert not comparable and "crnn_tz" in reason and "differ from the registered" in reason
    # another judge's checkpoint is refused, naming the file
    moran = save_checkpoint(tmp_path / "moran", state, {"kind": "recognizer", "recognizer": "moran"})
    with pytest.raises(WeightsError, match="judge 'moran', not of 'crnn'"):
        tzbench.create_recognizer("crnn_tz", device="cpu", weights=str(moran))
