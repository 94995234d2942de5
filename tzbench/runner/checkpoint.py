"""tzbench checkpoints: safetensors weights + a JSON sidecar, each written atomically.

``<stem>.safetensors`` holds the tensors and, in its header, the metadata (model name, params,
step, metrics, config, versions) as JSON under the key ``tzbench``. A single ``os.replace`` of
that one file is therefore the commit point: a process killed at any instant leaves either the
previous checkpoint or the new one, never weights from one step with metadata of another.
``<stem>.json`` is a readable copy of the same metadata plus the sha256 of the weights file,
written right after.

Two kinds exist:

* model checkpoints (``best``): the SR model's state dict under its own keys;
* training states (``last``, ``kind = "training-state"``): ``model.*`` weights, ``optim.*``
  optimizer tensors and ``rng.*`` generator states; the JSON side carries the optimizer's
  scalars, the python/numpy RNG states, the step, the best score and the config, so a run
  resumes exactly where it stopped.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from tzbench.errors import CheckpointError
from tzbench.weights import check_dtype, sha256_file

__all__ = [
    "CheckpointError",
    "new_run_dir",
    "TRAINING_STATE",
    "CHECKPOINT_FORMAT",
    "atomic_write_bytes",
    "checkpoint_paths",
    "save_checkpoint",
    "read_checkpoint_meta",
    "read_embedded_meta",
    "load_sr_checkpoint",
    "optimizer_to_flat",
    "optimizer_from_flat",
    "rng_snapshot",
    "capture_rng",
    "restore_rng",
    "load_training_state",
]

#: ``kind`` of a resumable training-state checkpoint.
TRAINING_STATE = "training-state"
#: ``format`` of the metadata of the SR checkpoints tzbench writes (``best`` and ``last``); bump it, here only,
#: when a change of the layout means old readers would misread the new files.
CHECKPOINT_FORMAT = "tzbench-checkpoint-2"
_HEADER_KEY = "tzbench"


# CheckpointError is defined in tzbench.errors (torch-free) and re-exported here.


def _umask_mode() -> int:
    """The mode ``open()`` would give a new file (mkstemp's are 0600: unreadable for the team
    that reads the 0644 database beside them)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder, fsync, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, _umask_mode())
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def new_run_dir(parent: str | Path, stem: str) -> Path:
    """Create and return a run folder no other run uses: ``parent/stem``, else ``stem-2``, ...

    Run ids are per database, so two databases sharing ``runs/`` (or an id freed by ``runs
    delete``) name the same ``<id>-<model>``; ``mkdir`` without ``exist_ok`` is atomic, so a
    folder that exists, whoever made it, is never written into. The caller records the path in
    the run's row.
    """
    base = Path(parent).resolve()
    base.mkdir(parents=True, exist_ok=True)
    for k in range(1, 10_000):
        candidate = base / (stem if k == 1 else f"{stem}-{k}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise CheckpointError(f"{base}: 9,999 folders named {stem}* exist already; choose another out_dir")


def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    """``(weights, meta)`` for a checkpoint given as stem, ``.safetensors`` or ``.json``."""
    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (".safetensors", ".json") else p
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


def _json_dumps(obj: Any, indent: int | None = None) -> str:
    return json.dumps(obj, indent=indent, sort_keys=True, default=str)


def save_checkpoint(path: str | Path, state: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write ``state`` (tensors) with ``meta`` (JSON-able) atomically; returns the weights path."""
    weights, meta_path = checkpoint_paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=weights.parent, prefix=f".{weights.name}.", suffix=".tmp")
    os.close(fd)
    try:
        # safetensors refuses shared/non-contiguous storage: give it plain copies.
        tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}
        save_file(tensors, tmp, metadata={_HEADER_KEY: _json_dumps(meta)})
        os.chmod(tmp, _umask_mode())  # after save_file, which writes a file of its own
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, weights)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    side = {**meta, "weights_file": weights.name, "weights_sha256": sha256_file(weights)}
    atomic_write_bytes(meta_path, _json_dumps(side, indent=2).encode())
    return weights


def read_embedded_meta(weights: str | Path) -> dict[str, Any] | None:
    """The metadata stored in a tzbench safetensors header (None for a foreign file)."""
    try:
        with safe_open(str(weights), framework="pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{weights}: not a readable safetensors file ({exc})") from exc
    raw = header.get(_HEADER_KEY)
    if raw is None:
        return None
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{weights}: its {_HEADER_KEY!r} header is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{weights}: its {_HEADER_KEY!r} header holds a {type(meta).__name__}, "
                              "not a JSON object")
    return meta


def read_checkpoint_meta(path: str | Path) -> dict[str, Any]:
    """The metadata of a checkpoint; errors name the file.

    The header copy inside the weights file is authoritative; the JSON sidecar is used for
    files written before headers carried it, and must then exist.
    """
    weights, meta_path = checkpoint_paths(path)
    if not weights.is_file():
        raise CheckpointError(f"checkpoint weights not found: {weights}")
    embedded = read_embedded_meta(weights)
    if embedded is not None:
        return embedded
    if not meta_path.is_file():
        raise CheckpointError(f"checkpoint metadata not found: {meta_path} (incomplete checkpoint?)")
    try:
        return json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{meta_path}: not valid JSON ({exc})") from exc


def _check_sidecar(weights: Path, meta_path: Path) -> str:
    """sha256 of ``weights``; refuses a sidecar that records another file's hash."""
    actual = sha256_file(weights)
    if meta_path.is_file():
        try:
            recorded = json.loads(meta_path.read_text(encoding="utf-8")).get("weights_sha256")
        except json.JSONDecodeError:
            recorded = None
        if recorded and recorded != actual and read_embedded_meta(weights) is None:
            raise CheckpointError(f"{weights}: sha256 {actual[:12]}… differs from the recorded {recorded[:12]}…")
    return actual


def load_sr_checkpoint(path: str | Path, model: nn.Module, expected_model: str) -> dict[str, Any]:
    """Load a tzbench SR checkpoint (model or training state) into ``model`` strictly.

    Refuses a checkpoint made for another model, a weights file that does not match its
    recorded sha256, and any key/shape mismatch. Returns the metadata, with the actual
    ``weights_sha256``.
    """
    weights, meta_path = checkpoint_paths(path)
    meta = read_checkpoint_meta(path)
    got = meta.get("sr_model")
    if got != expected_model:
        raise CheckpointError(f"{weights} is a checkpoint of {got!r}, not of {expected_model!r}")
    actual = _check_sidecar(weights, meta_path)
    state = load_file(weights)
    if meta.get("kind") == TRAINING_STATE:
        state = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(f"{weights} does not fit {expected_model}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for k, v in state.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise CheckpointError(f"{weights}: {k} has shape {tuple(v.shape)}, model expects {tuple(own[k].shape)}")
        check_dtype(k, v, own[k], str(weights))
    model.load_state_dict(state, strict=True)
    meta["weights_sha256"] = actual
    return meta


# ---------------------------------------------------------------------------------------------
# training state


def optimizer_to_flat(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer state dict into ``optim.<param>.<name>`` tensors and JSON scalars."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"optim.{pid}.{k}"] = v
            else:
                scalars[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_flat(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Inverse of :func:`optimizer_to_flat`; tensors follow the parameters' device."""
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        _, pid, name = key.split(".", 2)
        state.setdefault(int(pid), {})[name] = v
    for key, v in meta["scalars"].items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    groups = [dict(g) for g in meta["param_groups"]]
    for g in groups:
        if isinstance(g.get("betas"), list):
            g["betas"] = tuple(g["betas"])
    opt.load_state_dict({"state": state, "param_groups": groups})


def rng_snapshot() -> tuple[Any, ...]:
    """A cheap copy of every generator state (torch CPU/CUDA, python, numpy), taken each step
    so that a checkpoint can record the state *before* that step's work."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    return torch.get_rng_state(), cuda, random.getstate(), np.random.get_state()


def capture_rng(snapshot: tuple[Any, ...] | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Generator states (now, or of a :func:`rng_snapshot`): torch as tensors, python
    ``random`` and numpy as JSON."""
    cpu, cuda, py, npy = snapshot if snapshot is not None else rng_snapshot()
    tensors = {"rng.torch": cpu}
    for i, s in enumerate(cuda):
        tensors[f"rng.cuda.{i}"] = s
    version, mt, gauss = py
    name, keys, pos, has_gauss, cached = npy
    js = {"python": [version, list(mt), gauss], "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]}
    return tensors, js


def restore_rng(tensors: dict[str, torch.Tensor], js: dict[str, Any] | None) -> None:
    """Restore what :func:`capture_rng` captured (CUDA states only when devices match)."""
    if "rng.torch" in tensors:
        torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k.rsplit(".", 1)[1]))]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    if js:
        version, mt, gauss = js["python"]
        random.setstate((version, tuple(mt), gauss))
        name, keys, pos, has_gauss, cached = js["numpy"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


def load_training_state(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], Path]:
    """``(tensors, meta, weights_path)`` of a training-state checkpoint; refuses anything else."""
    weights, _ = checkpoint_paths(path)
    meta = read_checkpoint_meta(weights)
    if meta.get("kind") != TRAINING_STATE:
        raise CheckpointError(
            f"{weights} is not a training-state checkpoint (resume from the run's last.safetensors or its run id)"
        )
    return load_file(weights), meta, weights
