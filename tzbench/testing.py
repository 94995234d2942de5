"""Contract checks for plugin authors: ``check_sr_model``, ``check_recognizer``, ``check_loss``, ``check_dataset``.

Each check builds one component the way the runner builds it (params validated by the spec's
model, target imported lazily), feeds it a tiny CPU batch and asserts every runtime contract
the runner relies on (docs/hooks.md lists them). A broken contract raises ``AssertionError``
whose message starts with the component (``sr model 'espcn': ...``) and names the contract, so a
plugin's test suite needs one line per component::

    from tzbench.testing import check_sr_model
    from tzbench_mymodel.plugin import register_sr_models

    def test_mymodel_contract():
        check_sr_model(register_sr_models()[0])

A component is given by its spec (what the plugin's hook returns, so the plugin need not be
installed) or by its name in ``catalog`` (default: every installed plugin). The built-in
components run through the same checks (tests/core/test_*_contract.py). torch is imported
inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tzbench.catalog import Catalog
from tzbench.specs import ComponentSpec, DatasetSpec, LossSpec, RecognizerSpec, SRModelSpec, resolve_target

if TYPE_CHECKING:
    import torch

__all__ = ["check_sr_model", "check_recognizer", "check_loss", "check_dataset", "sr_input_channels"]

#: Item keys every dataset sample carries (the runner's collate reads all four).
SAMPLE_KEYS = ("lr", "hr", "label", "index")


def _spec(kind: str, spec_type: type[ComponentSpec], spec_or_name: ComponentSpec | str,
          catalog: Catalog | None) -> Any:
    if isinstance(spec_or_name, str):
        if catalog is None:
            from tzbench.api import get_catalog

            catalog = get_catalog()
        return catalog.spec(kind, spec_or_name)
    assert isinstance(spec_or_name, spec_type), (
        f"expected a {spec_type.__name__} or a component name, got {type(spec_or_name).__name__}")
    return spec_or_name


def _build(spec: ComponentSpec, params: Mapping[str, Any] | None, what: str) -> tuple[Any, dict[str, Any]]:
    """``(component, validated params)``, built as ``Catalog.create`` builds it."""
    from pydantic import ValidationError

    try:
        validated = spec.params(**dict(params or {})).model_dump()
    except ValidationError as exc:
        raise AssertionError(f"{what}: params {dict(params or {})} rejected by {spec.params.__name__}: {exc}") from exc
    return resolve_target(spec.target)(**validated), validated


def sr_input_channels(spec: SRModelSpec, params: Mapping[str, Any]) -> int:
    """The channel count the runner feeds a model: ``spec.in_channels``, or 4 with ``mask`` true when it is None."""
    if spec.in_channels is not None:
        return spec.in_channels
    return 4 if params.get("mask") else 3


# ------------------------------------------------------------------------------------------ SR models


def check_sr_model(spec: SRModelSpec | str, catalog: Catalog | None = None, *,
                   params: Mapping[str, Any] | None = None, batch: int = 2, backward: bool = True,
                   unused: Sequence[str] = ()) -> None:
    """Check an SR model against the runner's contract (raises ``AssertionError``).

    * the ``in_channels`` rule: ``in_channels=None`` needs a ``mask`` param (the runner reads
      only that); a fixed ``in_channels`` with a ``mask`` param would silently ignore it;
    * train mode: ``(batch, C, 16, 64)`` float32 in ``[0, 1]`` -> finite float32
      ``(batch, C, 16 * scale, 64 * scale)``, C from :func:`sr_input_channels`;
    * ``trainable``: gradients reach every trainable parameter but those named by the prefixes
      in ``unused``; a non-trainable model has no trainable parameters;
    * eval mode is deterministic (validation and eval runs are repeatable).

    ``params``: the model's params (defaults otherwise; pass smaller ones for a quick check).
    ``backward=False`` skips the gradient check (for very deep models on a slow machine).
    """
    import torch

    spec = _spec("sr-models", SRModelSpec, spec, catalog)
    what = f"sr model {spec.name!r}"
    fields = spec.params.model_fields
    if spec.in_channels is None:
        assert "mask" in fields, (f"{what}: in_channels=None means 'follows the mask param', but "
                                  f"{spec.params.__name__} has no 'mask' field: the runner would always feed 3 channels")
    else:
        assert "mask" not in fields, (f"{what}: in_channels={spec.in_channels} is fixed, so its 'mask' param is "
                                      "ignored by the runner: set in_channels=None to let the channels follow it")
    model, validated = _build(spec, params, what)
    assert isinstance(model, torch.nn.Module), f"{what}: target returned {type(model).__name__}, not an nn.Module"
    c = sr_input_channels(spec, validated)
    x = torch.rand(batch, c, 16, 64, generator=torch.Generator().manual_seed(0))
    model.train()
    with torch.set_grad_enabled(backward and spec.trainable):
        y = model(x)
    want = (batch, c, 16 * spec.scale, 64 * spec.scale)
    assert isinstance(y, torch.Tensor) and tuple(y.shape) == want, (
        f"{what}: forward of {tuple(x.shape)} gave {getattr(y, 'shape', type(y).__name__)}, expected {want} "
        f"(scale {spec.scale}, {c} channels)")
    assert y.dtype == torch.float32, f"{what}: output dtype {y.dtype}, expected torch.float32 for float32 input"
    assert bool(torch.isfinite(y).all()), f"{what}: output has NaN or inf on inputs in [0, 1]"
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not spec.trainable:
        assert not trainable, (f"{what}: trainable=False but it has trainable parameters "
                               f"{[n for n, _ in trainable][:3]}")
    elif backward:
        _check_grads(what, y, trainable, tuple(unused))
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x)), f"{what}: two eval-mode forwards of one batch differ"


def _check_grads(what: str, y: torch.Tensor, params: list[tuple[str, torch.Tensor]], unused: tuple[str, ...]) -> None:
    import torch

    assert params, f"{what}: trainable=True but it has no trainable parameters (set trainable=False)"
    y.float().square().mean().backward()
    for name, p in params:
        if name.startswith(unused):
            continue
        assert p.grad is not None, f"{what}: parameter {name!r} gets no gradient (unused in forward?)"
        assert bool(torch.isfinite(p.grad).all()), f"{what}: parameter {name!r} has a non-finite gradient"
    assert any(float(p.grad.abs().sum()) > 0 for _, p in params if p.grad is not None), (
        f"{what}: every gradient is zero: the output does not depend on the parameters")


# ------------------------------------------------------------------------------------------ recognizers


def _charset(spec: RecognizerSpec, judge: Any) -> set[str] | None:
    """The symbols the judge may output: its ``charset`` attribute, else the spec's; None when
    the spec's is a description (``"(6,623 symbols ...)"``) and the object has none."""
    own = getattr(judge, "charset", None)
    if isinstance(own, str | list | tuple) and len(own) > 0:
        return set(own)
    if spec.charset and not spec.charset.startswith("("):
        return set(spec.charset)
    return None


def check_recognizer(spec: RecognizerSpec | str, catalog: Catalog | None = None, *,
                     params: Mapping[str, Any] | None = None, images: torch.Tensor | None = None) -> list[str]:
    """Check a judge against the runner's contract (raises ``AssertionError``); returns its readings.

    * ``recognize(images)`` on ``(B, 3, 32, 128)`` floats in ``[0, 1]`` returns ``B`` strings,
      every character in the judge's charset (its ``charset`` attribute, else the spec's);
    * it is deterministic, and a batch is read like its parts (the first image alone, the
      first two) — batch independence: padding or batch statistics must not change a reading;
    * a 4th (mask) channel is ignored: the runner passes SR output, which may carry one.

    ``images``: what to read (default: 4 seeded noise images; pass rendered words to test
    accuracy yourself). ``params``: e.g. ``{"weights": path}`` for a judge that needs weights;
    judges whose ``needs_weights`` is true get that param from the runner.
    """
    import torch

    spec = _spec("recognizers", RecognizerSpec, spec, catalog)
    what = f"recognizer {spec.name!r}"
    judge, _ = _build(spec, params, what)
    assert callable(getattr(judge, "recognize", None)), f"{what}: target returned an object without recognize()"
    if images is None:
        images = torch.rand(4, 3, 32, 128, generator=torch.Generator().manual_seed(0))
    n = images.shape[0]
    first = judge.recognize(images)
    assert isinstance(first, list) and len(first) == n, (
        f"{what}: recognize() of {n} images returned {type(first).__name__} of length "
        f"{len(first) if hasattr(first, '__len__') else '?'}, expected a list of {n} strings")
    assert all(isinstance(s, str) for s in first), f"{what}: recognize() returned non-strings {first!r}"
    allowed = _charset(spec, judge)
    if allowed is not None:
        extra = sorted({ch for s in first for ch in s} - allowed)
        assert not extra, f"{what}: output characters {extra} are outside its charset"
    assert judge.recognize(images) == first, f"{what}: two readings of one batch differ (not deterministic)"
    for k in sorted({1, 2} & set(range(1, n))):  # n itself was read above
        assert judge.recognize(images[:k]) == first[:k], (
            f"{what}: the first {k} image(s) read alone differ from the same images in the batch "
            "(batch independence: padding or batch statistics leak between images)")
    masked = torch.cat([images[:2], torch.ones_like(images[:2, :1])], 1)
    assert judge.recognize(masked) == first[:2], f"{what}: a 4th (mask) channel changed its reading; use images[:, :3]"
    return first


# ------------------------------------------------------------------------------------------ losses


def check_loss(spec: LossSpec | str, catalog: Catalog | None = None, *, params: Mapping[str, Any] | None = None,
               channels: Sequence[int] = (3, 4), labels: Sequence[str] = ("hello", "world")) -> None:
    """Check a training loss against the runner's contract (raises ``AssertionError``).

    For each channel count (3 RGB, 4 RGB + mask) on a ``(2, C, 32, 128)`` pair in ``[0, 1]``:
    ``loss(sr, hr)`` (plus ``labels=`` when the loss sets ``needs_labels = True``) is a finite
    scalar tensor whose backward gives ``sr`` a finite, non-zero gradient; ``.parts``, when
    present, is a mapping of names to finite numbers after the call.
    """
    import torch

    spec = _spec("losses", LossSpec, spec, catalog)
    what = f"loss {spec.name!r}"
    loss, _ = _build(spec, params, what)
    assert isinstance(loss, torch.nn.Module), f"{what}: target returned {type(loss).__name__}, not an nn.Module"
    needs_labels = getattr(loss, "needs_labels", False)
    assert isinstance(needs_labels, bool), f"{what}: needs_labels must be a bool, got {needs_labels!r}"
    g = torch.Generator().manual_seed(0)
    for c in channels:
        sr = torch.rand(len(labels), c, 32, 128, generator=g).requires_grad_(True)
        hr = torch.rand(len(labels), c, 32, 128, generator=g)
        value = loss(sr, hr, labels=list(labels)) if needs_labels else loss(sr, hr)
        where = f"{what} on {c} channels"
        assert isinstance(value, torch.Tensor) and value.dim() == 0, (
            f"{where}: returned {getattr(value, 'shape', type(value).__name__)}, expected a scalar tensor")
        assert bool(torch.isfinite(value)), f"{where}: value {float(value)} is not finite"
        assert value.requires_grad, f"{where}: the value does not depend on sr (no grad_fn): nothing to train"
        value.backward()
        assert sr.grad is not None and bool(torch.isfinite(sr.grad).all()), f"{where}: sr's gradient is missing or not finite"
        assert float(sr.grad.abs().sum()) > 0, f"{where}: sr's gradient is zero everywhere"
        _check_parts(where, getattr(loss, "parts", None))


def _check_parts(where: str, parts: Any) -> None:
    if parts is None:
        return
    assert isinstance(parts, Mapping), f"{where}: .parts is {type(parts).__name__}, expected a mapping name -> number"
    for k, v in parts.items():
        assert isinstance(k, str), f"{where}: .parts key {k!r} is not a string"
        assert math.isfinite(float(v)), f"{where}: .parts[{k!r}] = {v} is not finite"


# ------------------------------------------------------------------------------------------ datasets


def check_dataset(spec: DatasetSpec | str, catalog: Catalog | None = None, *,
                  params: Mapping[str, Any] | None = None, max_items: int = 2) -> None:
    """Check a dataset provider against the runner's contract (raises ``AssertionError``).

    * ``subsets("train") == subsets("val") == []``; ``subsets("test")`` lists the spec's subsets;
    * ``load("train", None)``, ``load("val", None)`` (what training reads) and
      ``load("test", s)`` for each subset are non-empty map-style datasets; ``bad_samples``,
      where present, is a list;
    * items are ``{lr, hr, label, index}``: uint8 ``(C, 16, 64)`` and ``(C, 32, 128)``, a str
      label, ``index`` the item's position; C is 3, or 4 when the provider's ``mask`` param
      (which the runner sets from the model's channels) is true, the 4th channel in {0, 255};
    * two providers built from the same params give the same first training item (resume).

    ``params``: the provider's params (pass small sizes); ``mask``, when the params model has it,
    is checked both ways whatever ``params`` says. ``max_items``: items looked at per split/subset.
    """
    spec = _spec("datasets", DatasetSpec, spec, catalog)
    what = f"dataset {spec.name!r}"
    has_mask = "mask" in spec.params.model_fields
    base = {k: v for k, v in dict(params or {}).items() if k != "mask"}  # both values are checked
    first: Any = None
    for mask in (False, True) if has_mask else (False,):
        provider, _ = _build(spec, {**base, "mask": mask} if has_mask else base, what)
        _check_provider(f"{what} (mask=True)" if mask else what, spec, provider, 4 if mask else 3, max_items)
        first = provider if first is None else first
    again = _build(spec, {**base, "mask": False} if has_mask else base, what)[0]
    a, b = first.load("train", None)[0], again.load("train", None)[0]
    assert a["label"] == b["label"] and _equal(a["hr"], b["hr"]) and _equal(a["lr"], b["lr"]), (
        f"{what}: two providers with the same params give different first training items (not deterministic)")


def _equal(a: Any, b: Any) -> bool:
    import torch

    return bool(torch.equal(a, b))


def _check_provider(what: str, spec: DatasetSpec, provider: Any, channels: int, max_items: int) -> None:
    for split in ("train", "val"):
        got = list(provider.subsets(split))
        assert got == [], f"{what}: subsets({split!r}) = {got}, expected [] (the runner loads {split} whole)"
    tests = list(provider.subsets("test"))
    assert tests and all(isinstance(s, str) for s in tests), f"{what}: subsets('test') = {tests}, expected subset names"
    assert tests == list(spec.subsets), f"{what}: subsets('test') = {tests} but the spec declares {list(spec.subsets)}"
    loads = [("train", None), ("val", None)] + [("test", s) for s in tests]
    for split, subset in loads:
        where = f"{what} load({split!r}, {subset!r})"
        ds = provider.load(split, subset)
        assert len(ds) > 0, f"{where} is empty (with these params)"
        bad = getattr(ds, "bad_samples", [])
        assert isinstance(bad, list), f"{where}: bad_samples is {type(bad).__name__}, expected a list"
        for i in range(min(max_items, len(ds))):
            _check_item(f"{where}[{i}]", ds[i], i, channels)


def _check_item(where: str, item: Any, i: int, channels: int) -> None:
    import torch

    assert isinstance(item, Mapping), f"{where}: item is {type(item).__name__}, expected a dict"
    missing = [k for k in SAMPLE_KEYS if k not in item]
    assert not missing, f"{where}: item lacks {missing} (items are dicts {{lr, hr, label, index}})"
    for key, (h, w) in (("lr", (16, 64)), ("hr", (32, 128))):
        t = item[key]
        want = (channels, h, w)
        assert isinstance(t, torch.Tensor) and t.dtype == torch.uint8, (
            f"{where}: {key} is {getattr(t, 'dtype', type(t).__name__)}, expected a uint8 tensor")
        assert tuple(t.shape) == want, f"{where}: {key} shape {tuple(t.shape)}, expected {want}"
        if channels == 4:
            values = set(torch.unique(t[3]).tolist())
            assert values <= {0, 255}, f"{where}: {key}'s mask channel has values {sorted(values)[:5]}, expected 0/255"
    assert isinstance(item["label"], str), f"{where}: label is {type(item['label']).__name__}, expected str"
    assert int(item["index"]) == i, f"{where}: index {item['index']}, expected {i} (its position)"
