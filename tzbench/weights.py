"""Loading foreign (official) checkpoints safely and strictly.

Official TextZoom-era files are pickles. They are only ever opened with
``torch.load(weights_only=True)``, which refuses arbitrary objects, so a malicious file is
rejected rather than executed.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import nn

from tzbench.errors import WeightsError

__all__ = ["WeightsError", "check_dtype", "is_safetensors_file", "load_state_dict_file", "strip_prefix", "load_strict", "sha256_file"]


# WeightsError is defined in tzbench.errors (torch-free) and re-exported here.


def is_safetensors_file(path: str | Path) -> bool:
    """Whether ``path`` starts like a safetensors file (8-byte header length, then JSON ``{``)."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return head[8:9] == b"{" and 0 < n < (1 << 30)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def load_state_dict_file(path: str | Path, key: str | None = None) -> dict[str, torch.Tensor]:
    """Read a ``.pth``/``.pth.tar`` state dict with ``weights_only=True``.

    ``key`` selects a nested entry (``'state_dict'`` for ASTER, ``'state_dict_G'`` for TSRN);
    when ``None`` and the file holds one of those well-known keys, it is used.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # the unpickler's refusal or a corrupt file
        raise WeightsError(f"refused to load {path}: not a plain tensor checkpoint ({exc})") from exc
    if key is None and isinstance(obj, Mapping):
        for candidate in ("state_dict_G", "state_dict", "model"):
            if candidate in obj and isinstance(obj[candidate], Mapping):
                key = candidate
                break
    if key is not None:
        if not isinstance(obj, Mapping) or key not in obj:
            raise WeightsError(f"{path}: expected a dict with key {key!r}")
        obj = obj[key]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path}: does not hold a state dict of tensors")
    return dict(obj)


def strip_prefix(state: Mapping[str, torch.Tensor], prefix: str = "module.") -> dict[str, torch.Tensor]:
    """Drop a DataParallel ``module.`` prefix when every key carries it."""
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return dict(state)


def check_dtype(key: str, value: torch.Tensor, ref: torch.Tensor, source: str) -> None:
    """Refuse integer or boolean values for a floating-point parameter (``load_state_dict``
    would cast them silently: truncated weights that run and score nothing)."""
    if ref.is_floating_point() and not value.is_floating_point():
        raise WeightsError(f"{source}: key {key!r} holds {value.dtype} values, the model expects floating point "
                           f"({ref.dtype})")


def load_strict(
    model: nn.Module,
    state: Mapping[str, torch.Tensor],
    source: str = "<state dict>",
    optional_suffixes: Iterable[str] = ("num_batches_tracked",),
    fill_missing: Mapping[str, torch.Tensor] | None = None,
    expected: str = "",
) -> nn.Module:
    """Load ``state`` into ``model`` with strict key and shape checks.

    Keys ending with one of ``optional_suffixes`` may be absent (old BN checkpoints);
    ``fill_missing`` supplies values for other keys that may be absent (e.g. TPS buffers
    that are regenerated from constructor values). Anything else missing or unexpected,
    or a shape mismatch, raises WeightsError naming the keys and ``source``, and ending
    ``(expected <expected>)`` when given: what the file should have been, for the user.
    """
    try:
        return _load_strict(model, state, source, optional_suffixes, fill_missing)
    except WeightsError as exc:
        if not expected:
            raise
        raise WeightsError(f"{exc} (expected {expected})") from exc


def _load_strict(model: nn.Module, state: Mapping[str, torch.Tensor], source: str,
                 optional_suffixes: Iterable[str], fill_missing: Mapping[str, torch.Tensor] | None) -> nn.Module:
    state = strip_prefix(state)
    own = model.state_dict()
    fill = dict(fill_missing or {})
    suffixes = tuple(optional_suffixes)
    missing = [k for k in own if k not in state and k not in fill and not k.endswith(suffixes)]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise WeightsError(
            f"{source} does not fit {type(model).__name__}: "
            f"missing keys {missing[:8]}{'...' if len(missing) > 8 else ''}, "
            f"unexpected keys {unexpected[:8]}{'...' if len(unexpected) > 8 else ''}"
        )
    merged: dict[str, torch.Tensor] = {}
    for k, ref in own.items():
        value = state.get(k, fill.get(k, ref))
        if tuple(value.shape) != tuple(ref.shape):
            raise WeightsError(
                f"{source}: key {k!r} has shape {tuple(value.shape)}, the model expects {tuple(ref.shape)}"
            )
        check_dtype(k, value, ref, source)
        merged[k] = value
    model.load_state_dict(merged, strict=True)
    return model
