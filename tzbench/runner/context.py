"""What a run needs around the model: device, seeding, provenance, components, judges."""

from __future__ import annotations

import os
import random
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

import tzbench
from tzbench.catalog import Catalog, CatalogError
from tzbench.data import collate
from tzbench.errors import RunError
from tzbench.home import find_weights, weights_dir
from tzbench.registry import Registry, load_registry
from tzbench.weights import is_safetensors_file, sha256_file

__all__ = [
    "RunError",
    "pick_device",
    "seed_everything",
    "git_commit",
    "provenance",
    "SRModelInfo",
    "build_sr_model",
    "check_subsets",
    "check_finite",
    "Judge",
    "build_judges",
    "build_dataset",
    "comparability",
    "make_progress",
    "fetch",
]


# RunError is defined in tzbench.errors (torch-free) and re-exported here.


def pick_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA when present, else CPU; anything else is passed to ``torch.device``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise RunError(f"device {name!r} is not a torch device (auto, cpu, cuda, cuda:1, ...): {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RunError(f"device {name!r} requested but CUDA is not available")
    return dev


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch (all devices); optionally force deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


def git_commit(path: Path | None = None) -> str | None:
    """HEAD of the git checkout holding tzbench (or ``path``), when there is one."""
    where = path or Path(tzbench.__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def provenance(device: torch.device) -> dict[str, Any]:
    """Versions and environment recorded on every run."""
    return {
        "tzbench_version": tzbench.__version__,
        "torch_version": torch.__version__,
        "git_commit": git_commit(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
    }


@dataclass
class SRModelInfo:
    """A constructed SR model with what the runner needs to feed it."""

    name: str
    module: torch.nn.Module
    params: dict[str, Any]
    in_channels: int
    trainable: bool
    default_loss: str
    default_loss_params: dict[str, Any]
    provider: str
    n_params: int


def _dist_of(plugin_name: str, catalog: Catalog) -> str:
    for info in catalog.pm.tzbench_loaded.infos:  # type: ignore[attr-defined]
        if info.name == plugin_name:
            return f"{info.dist} {info.version}"
    return plugin_name


def build_sr_model(catalog: Catalog, name: str, params: dict[str, Any]) -> SRModelInfo:
    """Validate params, build the model and work out its channel count."""
    entry = catalog.entry("sr-models", name)
    spec = entry.spec
    validated = catalog.validate_params("sr-models", name, params).model_dump()
    module = catalog.create("sr-models", name, params)
    in_ch = spec.in_channels if spec.in_channels is not None else (4 if validated.get("mask") else 3)
    return SRModelInfo(
        name=name,
        module=module,
        params=validated,
        in_channels=in_ch,
        trainable=spec.trainable,
        default_loss=spec.default_loss or load_registry().default_loss,
        default_loss_params=dict(spec.default_loss_params),
        provider=_dist_of(entry.plugin, catalog),
        n_params=sum(p.numel() for p in module.parameters()),
    )


def check_finite(sr: torch.Tensor, where: str) -> torch.Tensor:
    """``sr`` unchanged, or a RunError when the model put NaN/inf in it (broken weights).

    Clipping would turn NaN into black images that score 0 and are recorded as a result;
    stopping at the first such batch says what is wrong and records nothing false.
    """
    if not bool(torch.isfinite(sr).all()):
        bad = int((~torch.isfinite(sr)).flatten(1).any(1).sum())
        raise RunError(f"the SR model output NaN or inf for {bad} of {sr.shape[0]} images in {where}: "
                       "its weights are broken (non-finite or diverged); nothing was recorded for them")
    return sr


@dataclass
class Judge:
    """A recognizer ready to read SR outputs, with the weights it uses."""

    name: str
    recognizer: Any
    weights_sha256: str | None
    mode: str
    #: The weights are a tzbench checkpoint (trained here), not a released file: the registry's
    #: judges are the released networks, so results read with these are not comparable.
    trained_here: bool = False


def build_judges(catalog: Catalog, names: list[str], device: torch.device,
                 threads: int | None = None) -> list[Judge]:
    """Build each judge; judges needing weights find them in the tzbench home folder.

    ``threads``: the thread count given to judges whose params have a ``threads`` field (the
    onnxruntime ones), for judges that will read side by side; None leaves their default.
    """
    judges: list[Judge] = []
    for name in names:
        spec = catalog.spec("recognizers", name)
        params: dict[str, Any] = {}
        if threads is not None and "threads" in spec.params.model_fields:
            params["threads"] = threads
        sha: str | None = None
        trained_here = False
        if spec.needs_weights:
            files = [w.filename for w in spec.weights]
            found = next((p for p in (find_weights(name, f) for f in files) if p is not None), None)
            if found is None:
                where = weights_dir(name) / (files[0] if files else "<weights file>")
                raise RunError(
                    f"judge {name!r} needs its weights: put {files[0] if files else 'the weights file'} at "
                    f"{where} (tzbench weights add {name} PATH)"
                )
            params["weights"] = str(found)
            sha = sha256_file(found)
            # Released judge weights are pickles; safetensors are what train-recognizer writes.
            trained_here = is_safetensors_file(found)
        rec = catalog.create("recognizers", name, params)
        if hasattr(rec, "to"):
            rec = rec.to(device) or rec
        if sha is None and hasattr(rec, "model_path"):
            sha = sha256_file(rec.model_path)
        judges.append(Judge(name, rec, sha, str(getattr(rec, "mode", "native")), trained_here))
    return judges


def check_subsets(provider: Any, dataset: str, subsets: list[str], split: str = "test") -> None:
    """RunError naming ``data.subsets`` when ``dataset``'s ``split`` lacks one of ``subsets``
    (checked before a run row exists, so a typo records nothing)."""
    have = list(provider.subsets(split))
    unknown = [s for s in subsets if s not in have]
    if unknown:
        raise RunError(f"data.subsets: dataset {dataset!r} has no {split} subset {', '.join(map(repr, unknown))} "
                       f"(it has {', '.join(have) or 'none'})")


def build_dataset(catalog: Catalog, name: str, params: dict[str, Any], in_channels: int) -> tuple[Any, dict[str, Any]]:
    """Build a dataset provider whose samples carry the channels the model expects."""
    spec_params = catalog.spec("datasets", name).params
    merged = dict(params)
    if "mask" in spec_params.model_fields:
        if "mask" in merged and bool(merged["mask"]) != (in_channels == 4):
            raise RunError(
                f"data.params.mask={merged['mask']} conflicts with the model's {in_channels} input channels"
            )
        merged["mask"] = in_channels == 4
    elif in_channels == 4:
        raise RunError(f"dataset {name!r} cannot provide the mask channel this model needs")
    try:
        provider = catalog.create("datasets", name, merged)
    except CatalogError:
        raise
    return provider, merged


def comparability(
    registry: Registry | None,
    dataset: str,
    data_params: dict[str, Any],
    subset_sizes: dict[str, int],
    judges: list[Judge],
    protocol: str,
    max_samples: int | None,
) -> tuple[str, str, bool, str]:
    """``(benchmark, version, comparable, reason)`` of an eval run under registry.yaml.

    ``data_params`` are the user's dataset params (before the runner adds the mask flag).
    """
    registry = registry or load_registry()
    found = registry.benchmark_for_dataset(dataset)
    if found is None:
        return dataset, "", False, f"dataset {dataset!r} is not a registered benchmark"
    bench, entry = found
    reasons: list[str] = []
    if protocol not in registry.protocols:
        reasons.append(f"protocol {protocol!r} not registered")
    if max_samples is not None or data_params.get("max_samples") is not None:
        reasons.append("max_samples limits the test set")
    for key in entry.fixed_params:
        if data_params.get(key) is not None:
            reasons.append(f"data param {key!r} overridden")
    for subset, expected in entry.subsets.items():
        if subset in subset_sizes and expected is not None and subset_sizes[subset] != expected:
            reasons.append(f"subset {subset} has {subset_sizes[subset]} samples, registry expects {expected}")
    for j in judges:
        jentry = registry.judges.get(j.name)
        if jentry is None:
            reasons.append(f"judge {j.name!r} not registered")
        elif jentry.weights_sha256 and j.weights_sha256 and jentry.weights_sha256 != j.weights_sha256:
            reasons.append(f"judge {j.name!r} weights differ from the registered ones")
        elif j.trained_here:
            reasons.append(f"judge {j.name!r} reads with weights trained by tzbench, not the released ones")
    return bench, entry.version, not reasons, "; ".join(reasons)


def make_progress(disable: bool = False) -> Progress:
    """The rich progress display used by train and eval."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=disable or os.environ.get("TZBENCH_NO_PROGRESS") == "1",
    )


def fetch(ds: Any, idx: torch.Tensor) -> dict[str, Any]:
    """One collated batch of ``ds`` at the indices ``idx``.

    tzbench datasets gather a batch from their uint8 cache in one vectorised call
    (``get_batch``); any other map-style dataset is read item by item and collated.
    """
    batch_fn = getattr(ds, "get_batch", None)
    if batch_fn is not None:
        return batch_fn(idx)
    return collate([ds[int(i)] for i in idx.tolist()])
