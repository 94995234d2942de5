"""tzbench checkpoints: safetensors weights + a JSON sidecar, both written atomically.

``<stem>.safetensors`` holds the model's state dict; ``<stem>.json`` holds the model name, its
params, the step, metrics, config and versions, plus the sha256 of the weights file so a
mismatched pair is detected. The JSON is written last: a checkpoint without it is incomplete.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from tzbench.weights import sha256_file

__all__ = ["CheckpointError", "atomic_write_bytes", "save_checkpoint", "read_checkpoint_meta", "load_sr_checkpoint",
           "checkpoint_paths"]


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, incomplete or belongs to another model."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    """``(weights, meta)`` for a checkpoint given as stem, ``.safetensors`` or ``.json``."""
    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (".safetensors", ".json") else p
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


def save_checkpoint(path: str | Path, state: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write ``state`` (tensors) and ``meta`` (JSON-able) atomically; returns the weights path."""
    weights, meta_path = checkpoint_paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=weights.parent, prefix=f".{weights.name}.", suffix=".tmp")
    os.close(fd)
    try:
        # safetensors refuses shared/non-contiguous storage: give it plain copies.
        save_file({k: v.detach().cpu().contiguous().clone() for k, v in state.items()}, tmp)
        os.replace(tmp, weights)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    meta = {**meta, "weights_file": weights.name, "weights_sha256": sha256_file(weights)}
    atomic_write_bytes(meta_path, json.dumps(meta, indent=2, sort_keys=True, default=str).encode())
    return weights


def read_checkpoint_meta(path: str | Path) -> dict[str, Any]:
    """The JSON sidecar of a checkpoint; errors name the file."""
    weights, meta_path = checkpoint_paths(path)
    if not weights.is_file():
        raise CheckpointError(f"checkpoint weights not found: {weights}")
    if not meta_path.is_file():
        raise CheckpointError(f"checkpoint metadata not found: {meta_path} (incomplete checkpoint?)")
    try:
        return json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{meta_path}: not valid JSON ({exc})") from exc


def load_sr_checkpoint(path: str | Path, model: nn.Module, expected_model: str) -> dict[str, Any]:
    """Load a tzbench SR checkpoint into ``model`` strictly; returns its metadata.

    Refuses a checkpoint made for another model, a weights file that does not match its
    recorded sha256, and any key/shape mismatch.
    """
    weights, _ = checkpoint_paths(path)
    meta = read_checkpoint_meta(path)
    got = meta.get("sr_model")
    if got != expected_model:
        raise CheckpointError(f"{weights} is a checkpoint of {got!r}, not of {expected_model!r}")
    recorded = meta.get("weights_sha256")
    actual = sha256_file(weights)
    if recorded and recorded != actual:
        raise CheckpointError(f"{weights}: sha256 {actual[:12]}… differs from the recorded {recorded[:12]}…")
    state = load_file(weights)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(f"{weights} does not fit {expected_model}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for k, v in state.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise CheckpointError(f"{weights}: {k} has shape {tuple(v.shape)}, model expects {tuple(own[k].shape)}")
    model.load_state_dict(state, strict=True)
    meta["weights_sha256"] = actual
    return meta
