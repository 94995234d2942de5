"""The text-prior generator shared by TPGSR and TATT: a CTC recognizer made through the core
catalog (``crnn_tz`` by default, the official ``crnn`` with its weights), read as per-frame
37-class probabilities laid out (B, 37, 1, T), the input of both SR networks' prior branch."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from tzbench.weights import WeightsError, sha256_file

__all__ = ["PRIOR_CLASSES", "PRIOR_FRAMES", "layout_probs", "make_prior_generator", "probs_to_prior"]

#: Frames of the CRNN prior (width 100 -> 26) and its classes (blank + 0-9a-z).
PRIOR_FRAMES, PRIOR_CLASSES = 26, 37


def probs_to_prior(logits: Tensor) -> Tensor:
    """CTC logits (T, B, classes) -> the (B, classes, 1, T) softmax probabilities TSRN_TL reads."""
    return layout_probs(torch.softmax(logits, -1))


def layout_probs(probs: Tensor) -> Tensor:
    """(T, B, classes) probabilities -> (B, classes, 1, T)."""
    return probs.permute(1, 2, 0).unsqueeze(2)


def make_prior_generator(prior: str, weights: str | None, field: str = "prior_weights", owner: str = "TPGSR",
                         ) -> tuple[Any, dict[str, str | None]]:
    """The recognizer object for ``prior`` (made through the core catalog: no plugin imports
    another) and what it was built from: ``{"prior", "weights", "sha256"}``. ``field`` names the
    parameter that gives the weights and ``owner`` the model, for the error when they are missing."""
    from tzbench.api import get_catalog
    from tzbench.home import find_weights, weights_dir

    catalog = get_catalog()
    spec = catalog.spec("recognizers", prior)
    params: dict[str, Any] = {"device": "cpu"}
    if "mode" in spec.params.model_fields:
        params["mode"] = "legacy"  # TPGSR's parse_crnn_data: bicubic 32x100 gray in [0, 1]
    if weights is None and spec.needs_weights:
        files = [w.filename for w in spec.weights]
        found = next((p for p in (find_weights(prior, f) for f in files) if p is not None), None)
        if found is None:
            raise WeightsError(f"{owner} {field.split('_')[0]} {prior!r} needs its weights: set {field} or put "
                               f"{files[0] if files else 'the weights file'} at {weights_dir(prior)} "
                               f"(tzbench weights add {prior} PATH); crnn_tz needs none")
        weights = str(found)
    if weights is not None:
        params["weights"] = weights
    rec = catalog.create("recognizers", prior, params)
    if not callable(getattr(rec, "ctc_logits", None)):
        raise TypeError(f"{owner} prior {prior!r} has no ctc_logits (a CTC recognizer such as crnn_tz is needed)")
    path = getattr(rec, "model_path", None) or rec.weights_path
    return rec, {"prior": prior, "weights": str(path) if path else None,
                 "sha256": sha256_file(path) if path else None}
