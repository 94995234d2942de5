"""The dataset engine: sample sources, bad-sample policy, uint8 tensor cache.

Every dataset of tzbench (TextZoom LMDB, synthetic, folders of crops) is a *source* that
produces one resized RGB pair per index, wrapped by :class:`PairDataset`, which

1. scans the whole source once when built (decoding every sample, in a thread pool), so the
   bad samples are all known up front, the dataset length is stable and the policy
   ('skip' or 'error') is applied before any training step;
2. keeps the decoded, resized samples as contiguous uint8 tensors ``(N, C, H, W)`` (the
   *cache*), so every access after the scan is a tensor view: no PNG decoding, no resizing,
   and DataLoader workers share the tensors through fork;
3. optionally stores those tensors on disk (``cache_dir``), keyed by the source's
   fingerprint (LMDB size, mtime and sample count; generator parameters), so a second
   process skips even the first decode.

Items are ``{"lr": uint8 (C,16,64), "hr": uint8 (C,32,128), "label": str, "index": int}``
with C = 3, or 4 when ``mask=True`` (channel 4 = the official binary mask, 0/255); ``index``
is the item's position in the dataset. :func:`tzbench.data.images.collate` batches them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
from PIL import Image
import PIL
import torch
from torch.utils.data import Dataset

from tzbench.data.errors import BadSample, DatasetError, OnBadSample, SampleError
from tzbench.data.images import HR_SIZE, LR_SIZE, collate, mask_from_rgb, resize_bicubic, to_float01

__all__ = [
    "RawPair",
    "PairSource",
    "PairDatasetBase",
    "PairDataset",
    "ConcatPairDataset",
    "default_threads",
]

log = logging.getLogger("tzbench.data")

# Bump when the cached tensors' meaning changes (resizing, mask rule, layout).
CACHE_FORMAT = 1


class RawPair(NamedTuple):
    """One produced sample: resized RGB arrays and labels."""

    hr: np.ndarray
    """(32, 128, 3) uint8 RGB."""
    lr: np.ndarray
    """(16, 64, 3) uint8 RGB."""
    label: str
    """The label as used for scoring (filtered, e.g. ``str_filt(raw, 'all')``)."""
    raw_label: str
    """The label exactly as stored."""
    key: str
    """Where the sample comes from (LMDB key, file name), for reports."""


@runtime_checkable
class PairSource(Protocol):
    """What :class:`PairDataset` needs from a data source. ``produce`` must be thread-safe."""

    description: str

    def __len__(self) -> int: ...

    def produce(self, i: int) -> RawPair:
        """Sample ``i`` (0-based); raises :class:`~tzbench.data.errors.SampleError` when bad."""
        ...

    def problems(self) -> list[BadSample]:
        """Source-level findings (e.g. a ``num-samples`` count mismatch), checked before the scan."""
        ...

    def fingerprint(self) -> str | None:
        """A string that changes whenever the produced samples would; None = no disk cache."""
        ...


class BicubicLRSource:
    """Wraps a source so that LR is the bicubic x2 down-sample of its HR.

    The paper's synthetic-vs-real comparison (section 5.4): a model trained on LR made by
    bicubic down-sampling, evaluated on real (here: degraded) LR.
    """

    def __init__(self, inner: PairSource) -> None:
        self.inner = inner
        self.description = f"{inner.description} [LR = bicubic x2 of HR]"

    def __len__(self) -> int:
        return len(self.inner)

    def produce(self, i: int) -> RawPair:
        pair = self.inner.produce(i)
        lr = np.asarray(resize_bicubic(Image.fromarray(pair.hr), LR_SIZE), dtype=np.uint8)
        return pair._replace(lr=lr)

    def problems(self) -> list[BadSample]:
        return self.inner.problems()

    def fingerprint(self) -> str | None:
        inner = self.inner.fingerprint()
        return None if inner is None else inner + "|lr=bicubic"


def default_threads() -> int:
    """Decode threads: ``$TZBENCH_DATA_THREADS`` or min(8, CPU count)."""
    env = os.environ.get("TZBENCH_DATA_THREADS")
    if env:
        return max(1, int(env))
    return max(1, min(8, os.cpu_count() or 1))


class PairDatasetBase(Dataset):
    """Common API of tzbench datasets: items, labels, bad samples, batch iteration."""

    bad_samples: list[BadSample]
    labels: list[str]
    raw_labels: list[str]
    keys: list[str]
    channels: int

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        """Batched fetch (used by torch's DataLoader when present)."""
        return [self[int(i)] for i in indices]

    def iter_batches(
        self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None,
        drop_last: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """Collated batches without a DataLoader (the fastest single-process path)."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            yield self._batch(order[start:start + batch_size])

    def get_batch(self, indices: Sequence[int] | torch.Tensor) -> dict[str, Any]:
        """The collated batch of ``indices`` (one vectorised gather when the cache is on)."""
        idx = torch.as_tensor(indices, dtype=torch.int64).reshape(-1).cpu()
        n = len(self)
        if idx.numel() and (int(idx.min()) < -n or int(idx.max()) >= n):
            raise IndexError(f"batch indices out of range for a dataset of {n} samples")
        return self._batch(torch.where(idx < 0, idx + n, idx))

    def _batch(self, idx: torch.Tensor) -> dict[str, Any]:
        return collate(self.__getitems__(idx.tolist()))


def _check_shapes(pair: RawPair) -> None:
    if pair.hr.shape != (HR_SIZE[1], HR_SIZE[0], 3) or pair.hr.dtype != np.uint8:
        raise ValueError(f"source produced HR {pair.hr.shape} {pair.hr.dtype}, expected (32,128,3) uint8")
    if pair.lr.shape != (LR_SIZE[1], LR_SIZE[0], 3) or pair.lr.dtype != np.uint8:
        raise ValueError(f"source produced LR {pair.lr.shape} {pair.lr.dtype}, expected (16,64,3) uint8")


def _chw(rgb: np.ndarray, mask: bool) -> np.ndarray:
    out = rgb.transpose(2, 0, 1)
    if mask:
        out = np.concatenate([out, mask_from_rgb(rgb)[None]], axis=0)
    return out


class PairDataset(PairDatasetBase):
    """A scanned, policy-checked and (by default) cached dataset over a :class:`PairSource`.

    Args:
        source: the sample source.
        mask: add the binary mask as channel 4.
        on_bad_sample: 'skip' (record in ``bad_samples``) or 'error' (raise DatasetError).
        cache: keep decoded samples in memory as uint8 tensors (False: decode on every access,
            after a validating scan).
        cache_dir: also store the tensors on disk there (needs ``cache`` and a source
            fingerprint).
        threads: decode threads for the scan (default :func:`default_threads`).

    Raises:
        DatasetError: under 'error', for the first fatal bad sample (naming path and key).
    """

    def __init__(
        self,
        source: PairSource,
        *,
        mask: bool = False,
        on_bad_sample: OnBadSample = "skip",
        cache: bool = True,
        cache_dir: str | os.PathLike[str] | None = None,
        threads: int | None = None,
    ) -> None:
        if on_bad_sample not in ("skip", "error"):
            raise ValueError(f"on_bad_sample must be 'skip' or 'error', got {on_bad_sample!r}")
        self.source = source
        self.mask = mask
        self.on_bad_sample: OnBadSample = on_bad_sample
        self.cached = cache
        self.channels = 4 if mask else 3
        self.threads = threads or default_threads()
        self.bad_samples = []
        self.cache_file: Path | None = None
        self._hr: torch.Tensor | None = None
        self._lr: torch.Tensor | None = None
        self._ids: list[int] = []
        self.labels, self.raw_labels, self.keys = [], [], []

        fp = source.fingerprint() if (cache and cache_dir is not None) else None
        if fp is not None:
            digest = hashlib.sha256(
                f"{CACHE_FORMAT}|pillow={PIL.__version__}|mask={mask}|{fp}".encode()
            ).hexdigest()[:32]
            self.cache_file = Path(cache_dir) / f"pairs-{digest}.pt"  # type: ignore[arg-type]
            if self._load_cache(self.cache_file):
                return
        self._scan()
        if self.cache_file is not None:
            self._save_cache(self.cache_file)

    # -- policy -----------------------------------------------------------------------------
    def _record(self, bad: BadSample) -> None:
        if self.on_bad_sample == "error" and bad.fatal:
            raise DatasetError(
                f"bad sample in {bad.path} at key {bad.key!r}: {bad.reason} "
                "(pass on_bad_sample='skip' to skip and count bad samples)",
                bad,
            )
        log.warning("skipping bad sample: %s", bad)
        self.bad_samples.append(bad)

    # -- scan -------------------------------------------------------------------------------
    def _scan(self) -> None:
        for bad in self.source.problems():
            self._record(bad)
        n = len(self.source)
        t0 = time.perf_counter()
        h, w = HR_SIZE[1], HR_SIZE[0]
        lh, lw = LR_SIZE[1], LR_SIZE[0]
        c = self.channels
        hr = np.empty((n, c, h, w), np.uint8) if self.cached else None
        lr = np.empty((n, c, lh, lw), np.uint8) if self.cached else None
        labels: list[str | None] = [None] * n
        raw: list[str] = [""] * n
        keys: list[str] = [""] * n
        bads: dict[int, BadSample] = {}

        def work(chunk: range) -> list[tuple[int, BadSample]]:
            found = []
            for i in chunk:
                try:
                    pair = self.source.produce(i)
                except SampleError as exc:
                    found.append((i, exc.bad))
                    continue
                _check_shapes(pair)
                if hr is not None and lr is not None:
                    hr[i] = _chw(pair.hr, self.mask)
                    lr[i] = _chw(pair.lr, self.mask)
                labels[i], raw[i], keys[i] = pair.label, pair.raw_label, pair.key
            return found

        step = max(16, min(512, n // (self.threads * 4) + 1))
        chunks = [range(s, min(n, s + step)) for s in range(0, n, step)]
        if self.threads <= 1 or len(chunks) <= 1:
            results: Iterator[list[tuple[int, BadSample]]] = map(work, chunks)
            for found in results:
                for i, bad in found:
                    self._record(bad)
                    bads[i] = bad
        else:
            pool = ThreadPoolExecutor(self.threads, thread_name_prefix="tzbench-data")
            try:
                # map() yields in order, so under 'error' the first bad sample by index raises.
                for found in pool.map(work, chunks):
                    for i, bad in found:
                        self._record(bad)
                        bads[i] = bad
            finally:
                pool.shutdown(wait=True, cancel_futures=True)

        good = [i for i in range(n) if i not in bads]
        self._ids = good
        self.labels = [labels[i] for i in good]  # type: ignore[misc]
        self.raw_labels = [raw[i] for i in good]
        self.keys = [keys[i] for i in good]
        if hr is not None and lr is not None:
            sel = np.asarray(good, dtype=np.int64)
            # A contiguous copy only when something was skipped; otherwise keep the buffer.
            self._hr = torch.from_numpy(hr if len(good) == n else hr[sel])
            self._lr = torch.from_numpy(lr if len(good) == n else lr[sel])
        dt = time.perf_counter() - t0
        log.info(
            "%s: %d samples (%d bad) scanned in %.1f s (%.0f samples/s)",
            self.source.description, len(good), len(bads), dt, n / dt if dt > 0 else float("inf"),
        )

    # -- disk cache -------------------------------------------------------------------------
    def _load_cache(self, path: Path) -> bool:
        if not path.is_file():
            return False
        try:
            blob = torch.load(path, weights_only=True, map_location="cpu")
            hr, lr = blob["hr"], blob["lr"]
            if hr.dtype != torch.uint8 or tuple(hr.shape[1:]) != (self.channels, HR_SIZE[1], HR_SIZE[0]):
                raise ValueError(f"unexpected HR tensor {tuple(hr.shape)} {hr.dtype}")
            if lr.dtype != torch.uint8 or tuple(lr.shape[1:]) != (self.channels, LR_SIZE[1], LR_SIZE[0]):
                raise ValueError(f"unexpected LR tensor {tuple(lr.shape)} {lr.dtype}")
            labels, raw, keys = list(blob["labels"]), list(blob["raw_labels"]), list(blob["keys"])
            ids = [int(i) for i in blob["ids"]]
            if not (len(labels) == len(raw) == len(keys) == len(ids) == hr.shape[0] == lr.shape[0]):
                raise ValueError("inconsistent lengths")
            bad = [BadSample(k, p, r, kind) for k, p, r, kind in blob["bad"]]
        except Exception as exc:  # a stale or truncated cache is rebuilt, loudly
            log.warning("ignoring unreadable data cache %s (%s); rebuilding it", path, exc)
            return False
        for b in bad:
            self._record(b)
        self._hr, self._lr = hr, lr
        self.labels, self.raw_labels, self.keys, self._ids = labels, raw, keys, ids
        log.info("%s: %d samples loaded from cache %s", self.source.description, len(labels), path)
        return True

    def _save_cache(self, path: Path) -> None:
        assert self._hr is not None and self._lr is not None
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = {
            "hr": self._hr, "lr": self._lr, "labels": self.labels, "raw_labels": self.raw_labels,
            "keys": self.keys, "ids": self._ids,
            "bad": [[b.key, b.path, b.reason, b.kind] for b in self.bad_samples],
        }
        # Atomic: a crash mid-write never leaves a truncated cache under the final name.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pt")
        os.close(fd)
        try:
            torch.save(blob, tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    # -- access -----------------------------------------------------------------------------
    def __getitem__(self, i: int) -> dict[str, Any]:
        n = len(self.labels)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {i} out of range for a dataset of {n} samples")
        if self._hr is not None and self._lr is not None:
            return {"lr": self._lr[i], "hr": self._hr[i], "label": self.labels[i], "index": i}
        try:
            pair = self.source.produce(self._ids[i])
        except SampleError as exc:  # the source changed since the scan
            raise DatasetError(f"sample became unreadable after the scan: {exc.bad}", exc.bad) from exc
        return {
            "lr": torch.from_numpy(np.ascontiguousarray(_chw(pair.lr, self.mask))),
            "hr": torch.from_numpy(np.ascontiguousarray(_chw(pair.hr, self.mask))),
            "label": pair.label,
            "index": i,
        }

    def _batch(self, idx: torch.Tensor) -> dict[str, Any]:
        if self._hr is None or self._lr is None:
            return super()._batch(idx)
        sel = idx.numpy()
        return {
            "lr": to_float01(np.take(self._lr.numpy(), sel, axis=0)),
            "hr": to_float01(np.take(self._hr.numpy(), sel, axis=0)),
            "label": [self.labels[j] for j in sel.tolist()],
            "index": idx.to(torch.int64),
        }

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The cached ``(lr, hr)`` uint8 tensors ``(N, C, H, W)`` (cache must be on)."""
        if self._hr is None or self._lr is None:
            raise RuntimeError("this dataset was built with cache=False; it keeps no tensors")
        return self._lr, self._hr

    def __repr__(self) -> str:
        return (f"PairDataset({self.source.description!r}, n={len(self)}, channels={self.channels}, "
                f"bad={len(self.bad_samples)}, cached={self._hr is not None})")


class ConcatPairDataset(PairDatasetBase):
    """Several datasets end to end (e.g. test easy + medium + hard); ``index`` is re-numbered."""

    def __init__(self, parts: Sequence[PairDatasetBase]) -> None:
        if not parts:
            raise ValueError("ConcatPairDataset needs at least one part")
        channels = {p.channels for p in parts}
        if len(channels) != 1:
            raise ValueError(f"parts disagree on channels: {sorted(channels)}")
        self.parts = list(parts)
        self.channels = channels.pop()
        self.labels = [lab for p in parts for lab in p.labels]
        self.raw_labels = [lab for p in parts for lab in p.raw_labels]
        self.keys = [k for p in parts for k in p.keys]
        self.bad_samples = [b for p in parts for b in p.bad_samples]
        self._offsets = np.cumsum([0] + [len(p) for p in parts])

    def __getitem__(self, i: int) -> dict[str, Any]:
        n = int(self._offsets[-1])
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {i} out of range for a dataset of {n} samples")
        part = int(np.searchsorted(self._offsets, i, side="right")) - 1
        item = dict(self.parts[part][i - int(self._offsets[part])])
        item["index"] = i
        return item

    def __repr__(self) -> str:
        return f"ConcatPairDataset(n={len(self)}, parts={len(self.parts)}, bad={len(self.bad_samples)})"
