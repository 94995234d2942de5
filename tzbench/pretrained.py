"""Pretrained SR weights shipped inside plugin packages (timm's ``pretrained=True``).

A plugin lists its shipped files in :attr:`tzbench.specs.SRModelSpec.pretrained`. Each is a
tzbench checkpoint inside an installed package, located without importing the package, checked
against its pinned sha256, and loaded with the checkpoint's own model params and strict keys.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from tzbench.catalog import Catalog
from tzbench.specs import PretrainedWeights
from tzbench.weights import WeightsError, sha256_file

__all__ = ["pick_pretrained", "pretrained_path", "create_pretrained_sr_model", "export_pretrained"]


def pick_pretrained(catalog: Catalog, model: str, tag: str | bool | None = True) -> PretrainedWeights:
    """The shipped weights of ``model``: the first listed, or the one tagged ``tag``."""
    spec = catalog.spec("sr-models", model)
    shipped = list(getattr(spec, "pretrained", ()))
    if not shipped:
        raise WeightsError(f"{model} has no pretrained weights (tzbench list sr-models shows which models do)")
    if tag is True or tag is None:
        return shipped[0]
    for w in shipped:
        if w.tag == tag:
            return w
    raise WeightsError(f"{model} has no pretrained weights tagged {tag!r}; it has: {', '.join(w.tag for w in shipped)}")


def pretrained_path(weights: PretrainedWeights, verify: bool = True) -> Path:
    """The installed file of ``weights``; with ``verify`` its sha256 must be the pinned one."""
    package, _, rel = weights.resource.partition(":")
    spec = importlib.util.find_spec(package)
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in roots:
        path = Path(root) / rel
        if path.is_file():
            if verify:
                actual = sha256_file(path)
                if actual != weights.sha256:
                    raise WeightsError(f"{path}: sha256 {actual} differs from the pinned {weights.sha256} "
                                       "(a modified or truncated file; reinstall the package)")
            return path
    raise WeightsError(f"pretrained weights {weights.resource!r} not found (package {package!r} at "
                       f"{', '.join(roots) or 'not installed'})")


def create_pretrained_sr_model(catalog: Catalog, model: str, tag: str | bool | None = True,
                               **params: Any) -> Any:
    """Build ``model`` with the shipped weights loaded (strict keys and shapes).

    The architecture params come from the checkpoint; ``params`` may repeat them but not
    contradict them (other weights would not fit).
    """
    from tzbench.runner.checkpoint import load_sr_checkpoint, read_checkpoint_meta

    path = pretrained_path(pick_pretrained(catalog, model, tag))
    recorded = dict(read_checkpoint_meta(path).get("params") or {})
    clash = {k: (v, recorded[k]) for k, v in params.items() if k in recorded and recorded[k] != v}
    if clash:
        shown = ", ".join(f"{k}={a!r} (weights: {b!r})" for k, (a, b) in clash.items())
        raise WeightsError(f"{model} pretrained weights were trained with other params: {shown}")
    net = catalog.create("sr-models", model, {**recorded, **params})
    load_sr_checkpoint(path, net, model)
    return net


def export_pretrained(store: Any, run_id: int, out: str | Path, half: bool = False) -> tuple[Path, str, dict[str, Any]]:
    """Write training run ``run_id``'s best checkpoint as a file to ship, with its provenance.

    ``run_id`` is an SR training run (``tzbench train``) or a judge's (``tzbench
    train-recognizer``). The header gains ``provenance``: dataset, recipe, steps, run id,
    commit, versions and the test scores: of every finished eval of that checkpoint
    (``parent_id`` = the run) for an SR model, of the run's own HR / bicubic-LR test for a judge.
    ``half`` stores floating tensors as float16 (half the bytes; they load into float32
    networks, and the scores to quote are those measured with the written file). Returns
    ``(weights path, sha256, provenance)``; the sha256 is what a plugin pins.
    """
    from safetensors.torch import load_file

    from tzbench.runner.checkpoint import read_checkpoint_meta, save_checkpoint

    run = store.get_run(run_id)
    if run.kind not in ("train", "train-recognizer") or run.status != "finished" or not run.checkpoint:
        raise WeightsError(f"run {run_id} is not a finished training run with a checkpoint "
                           f"(kind {run.kind}, status {run.status})")
    target = Path(out).with_suffix("")
    if target.with_suffix(".safetensors").exists() or target.with_suffix(".json").exists():
        raise WeightsError(f"{target}.safetensors or .json exists already; choose another --out (nothing written)")
    meta = read_checkpoint_meta(run.checkpoint)
    if run.kind == "train":
        evals = [r.id for r in store.list_runs(kind="eval", sr_model=run.sr_model, limit=100_000)
                 if r.parent_id == run_id and r.status == "finished"]
        kind = "model"
    else:  # a judge scores itself on the test splits at the end of its training run
        evals, kind = [run_id], meta.get("kind", "recognizer")
    scores = _test_scores(store, evals, test_only=run.kind != "train")
    config = run.config or {}
    state = load_file(run.checkpoint)
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    provenance = {
        "run_id": run_id, "eval_run_ids": evals if run.kind == "train" else [], "benchmark": run.benchmark,
        "benchmark_version": run.benchmark_version, "dataset_params": _dataset_params(config),
        "recipe": config.get("recipe"), "steps": meta.get("step"), "selected_by": meta.get("selection"),
        "git_commit": run.git_commit, "tzbench_version": run.tzbench_version, "torch_version": run.torch_version,
        "dtype": "float16" if half else "float32", "test_scores": scores,
    }
    path = save_checkpoint(target, state, {**meta, "kind": kind, "provenance": provenance})
    return path, sha256_file(path), provenance


def _test_scores(store: Any, run_ids: list[int], test_only: bool) -> dict[str, dict[str, float]]:
    """``{metric[/judge]: {subset: value}}`` of those runs' final results (``test_only``: not
    the val/train curves a training run also records)."""
    scores: dict[str, dict[str, float]] = {}
    for rid in run_ids:
        for res in store.results(rid):
            if test_only and res.subset in ("val", "train"):
                continue
            key = res.metric if res.recognizer == "-" else f"{res.metric}/{res.recognizer}"
            scores.setdefault(key, {})[res.subset] = round(float(res.value), 6)
    return scores


def _dataset_params(config: dict[str, Any]) -> dict[str, Any]:
    data = config.get("data")
    if isinstance(data, dict):  # an SR run's DataConfig
        return data.get("params", {})
    return config.get("data_params", {})  # a judge's: per dataset
