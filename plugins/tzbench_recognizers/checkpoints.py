"""Judge weights written by tzbench (``train-recognizer``): safetensors + JSON sidecar.

A judge's ``weights=`` param accepts two kinds of file:

* an **official checkpoint** (``crnn.pth``, ``moran.pth``, ``demo.pth.tar``): a pickle, opened
  only with ``torch.load(weights_only=True)`` and loaded with strict key/shape checks, exactly
  as before;
* a **tzbench checkpoint** (``best.safetensors`` from ``tzbench train-recognizer``, or a copy
  of it): safetensors holds no code, so it is read directly. When the JSON sidecar is present
  The metadata tzbench stores in the safetensors header (or, for older files, the JSON
  sidecar, whose recorded sha256 must then match) must say ``kind: recognizer`` for the same
  judge, so a copy placed elsewhere (e.g. by ``tzbench weights add``) still identifies itself;
  a safetensors file without any metadata is accepted on its keys and shapes alone, strictly.

The file type is told by content (the safetensors header), not by its name, so a trained
judge copied to the official file name still loads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tzbench.weights import WeightsError, is_safetensors_file, load_state_dict_file, load_strict, sha256_file

__all__ = [
    "is_safetensors_file", "read_recognizer_weights", "read_judge_weights", "load_recognizer_checkpoint",
    "JudgeCheckpointWriter", "CHECKPOINT_FORMAT", "CHECKPOINT_KIND",
]


def _embedded_meta(path: Path) -> dict[str, Any] | None:
    """The metadata tzbench writes into the safetensors header (None when absent); the core's
    reader, its errors as :class:`~tzbench.weights.WeightsError` (what judges raise)."""
    from tzbench.runner.checkpoint import CheckpointError, read_embedded_meta

    try:
        return read_embedded_meta(path)
    except CheckpointError as exc:
        raise WeightsError(str(exc)) from None


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json") if path.suffix == ".safetensors" else path.with_name(path.name + ".json")


def read_recognizer_weights(path: str | Path, recognizer: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The state dict of a tzbench judge checkpoint and its metadata (``{}`` without sidecar).

    Raises :class:`~tzbench.weights.WeightsError` when the file is unreadable, its sidecar
    names another judge or is not a recognizer checkpoint, or the sha256 does not match.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    meta = _embedded_meta(path)
    side = _sidecar(path)
    if meta is None and side.is_file():
        # older files carry their metadata only in the sidecar: it must match the weights
        try:
            meta = json.loads(side.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise WeightsError(f"{side}: not valid JSON ({exc})") from exc
        recorded = meta.get("weights_sha256")
        if recorded and recorded != sha256_file(path):
            raise WeightsError(f"{path}: sha256 differs from the one recorded in {side.name} (file changed?)")
    meta = meta or {}
    if meta:
        kind, owner = meta.get("kind"), meta.get("recognizer")
        if kind != "recognizer" or owner is None:
            raise WeightsError(f"{path} is a tzbench checkpoint of kind {kind!r} "
                               f"({meta.get('sr_model') or owner}), not a judge checkpoint")
        if owner != recognizer:
            raise WeightsError(f"{path} holds weights of judge {owner!r}, not of {recognizer!r}")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"cannot read {path} as safetensors: {exc}") from exc
    return state, meta


def read_judge_weights(path: str | Path, recognizer: str, key: str | None = None) -> dict[str, torch.Tensor]:
    """State dict of ``path``: a tzbench checkpoint (safetensors) or an official file (``key``)."""
    if is_safetensors_file(path):
        return read_recognizer_weights(path, recognizer)[0]
    return load_state_dict_file(path, key=key)


def load_recognizer_checkpoint(rec: Any, path: str | Path) -> dict[str, Any]:
    """Load a tzbench judge checkpoint into ``rec.net`` strictly; returns its metadata."""
    state, meta = read_recognizer_weights(path, getattr(rec, "weights_owner", None) or rec.name)
    load_strict(rec.net, state, source=str(path))
    rec.net.to(rec.device)
    rec.weights_path = Path(path)
    return meta


#: What the JSON of a judge checkpoint written by ``train-recognizer`` says it is.
CHECKPOINT_FORMAT = "tzbench-checkpoint-1"
CHECKPOINT_KIND = "recognizer"


@dataclass
class JudgeCheckpointWriter:
    """Writes a training run's judge checkpoints (``best``, ``last`` in ``run_dir``) with the
    metadata a judge needs to read them back (:func:`read_recognizer_weights`).

    ``params`` are the judge's params without machine-specific ones (weights, device, batch size).
    """

    run_dir: Path
    judge: str
    params: dict[str, Any]
    charset: str
    run_id: int
    config: dict[str, Any]
    device: torch.device

    def path(self, which: str) -> Path:
        """The weights file of checkpoint ``which`` (``"best"`` or ``"last"``)."""
        from tzbench.runner.checkpoint import checkpoint_paths

        return checkpoint_paths(self.run_dir / which)[0]

    def meta(self, step: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """The checkpoint metadata at ``step`` (``extra``: e.g. the validation accuracy)."""
        from tzbench.runner.context import provenance

        return {
            "format": CHECKPOINT_FORMAT, "kind": CHECKPOINT_KIND, "recognizer": self.judge, "params": self.params,
            "charset": self.charset, "step": step, "run_id": self.run_id,
            "data": self.config["data"], "config": self.config, **provenance(self.device), **(extra or {}),
        }

    def save(self, which: str, net: torch.nn.Module, step: int, extra: dict[str, Any] | None = None) -> None:
        """Write ``net``'s weights as checkpoint ``which`` (atomically, replacing an older one)."""
        from tzbench.runner.checkpoint import save_checkpoint

        save_checkpoint(self.run_dir / which, net.state_dict(), self.meta(step, extra))
