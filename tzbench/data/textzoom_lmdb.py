"""The official TextZoom LMDB layout: reader, writer and the pair source over it.

Layout (one LMDB directory holding ``data.mdb``):

* ``num-samples``: the sample count N as ASCII digits;
* for i = 1..N (1-based, 9 digits): ``image_hr-%09d`` and ``image_lr-%09d`` (encoded image
  bytes, PNG or JPEG) and ``label-%09d`` (UTF-8 text).

Writers may add other keys; readers ignore them. tzbench's writer adds ``name-%09d`` (the
original relative file name) so that an export restores the original file names.

Decoding follows the official ``lmdbDataset_real`` + ``alignCollate_real``: RGB, HR bicubic
to 128x32, LR bicubic to 64x16, label ``str_filt(label, 'all')``. ``lr_source='bicubic'``
replaces the stored LR by the bicubic x2 down-sample of the resized HR (the paper's
synthetic-LR comparison).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import lmdb
import numpy as np

from tzbench.data.dataset import RawPair
from tzbench.data.errors import BadSample, DatasetError, SampleError
from tzbench.data.images import HR_SIZE, LR_SIZE, decode_image, resize_bicubic
from tzbench.text import str_filt

__all__ = [
    "NUM_SAMPLES_KEY",
    "hr_key",
    "lr_key",
    "label_key",
    "name_key",
    "is_lmdb_dir",
    "LmdbReader",
    "LmdbWriter",
    "write_lmdb",
    "LmdbPairSource",
    "LrSource",
]

NUM_SAMPLES_KEY = "num-samples"
LrSource = Literal["real", "bicubic"]


def hr_key(i: int) -> str:
    """Key of the HR image of 1-based sample ``i``."""
    return f"image_hr-{i:09d}"


def lr_key(i: int) -> str:
    """Key of the LR image of 1-based sample ``i``."""
    return f"image_lr-{i:09d}"


def label_key(i: int) -> str:
    """Key of the label of 1-based sample ``i``."""
    return f"label-{i:09d}"


def name_key(i: int) -> str:
    """tzbench's optional key holding the original relative file name of sample ``i``."""
    return f"name-{i:09d}"


def is_lmdb_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is an LMDB directory (holds ``data.mdb``)."""
    return (Path(path) / "data.mdb").is_file()


_ENV_LOCK = threading.Lock()
# py-lmdb refuses to open one environment twice in a process, so readers of the same folder
# share one handle (reference-counted). A forked DataLoader worker inherits the handle and
# keeps using it: safe here because it is read-only with lock=False (no reader table), the
# same way the official loader uses its environment in workers.
_ENVS: dict[str, tuple[lmdb.Environment, int]] = {}


def _acquire_env(path: Path) -> lmdb.Environment:
    key = str(path.resolve())
    with _ENV_LOCK:
        entry = _ENVS.get(key)
        if entry is None:
            # readahead off: random access over a file larger than the page cache.
            try:
                env = lmdb.open(key, readonly=True, lock=False, readahead=False, meminit=False, max_readers=512)
            except lmdb.Error as exc:  # random bytes in data.mdb, a version mismatch, no permission
                raise DatasetError(f"{path}: not a readable LMDB ({exc})") from None
            _ENVS[key] = (env, 1)
            return env
        _ENVS[key] = (entry[0], entry[1] + 1)
        return entry[0]


def _release_env(path: Path) -> None:
    key = str(path.resolve())
    with _ENV_LOCK:
        entry = _ENVS.get(key)
        if entry is None:
            return
        if entry[1] <= 1:
            del _ENVS[key]
            entry[0].close()
        else:
            _ENVS[key] = (entry[0], entry[1] - 1)


class LmdbReader:
    """Read-only access to one LMDB directory; safe across threads and forked workers.

    The environment is opened lazily and shared by every reader of the same folder in the
    process; pickling drops it, so the reader also works with spawned workers.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not is_lmdb_dir(self.path):
            raise DatasetError(f"not an LMDB directory (no data.mdb): {self.path}")
        self._env: lmdb.Environment | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, object]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.path = Path(state["path"])  # type: ignore[arg-type]
        self._env, self._lock = None, threading.Lock()

    @property
    def env(self) -> lmdb.Environment:
        """The open (shared) environment."""
        if self._env is None:
            with self._lock:
                if self._env is None:
                    self._env = _acquire_env(self.path)
        return self._env

    def close(self) -> None:
        """Release the environment (closed when its last reader releases it; re-opens on use)."""
        with self._lock:
            if self._env is not None:
                self._env = None
                _release_env(self.path)

    def __enter__(self) -> LmdbReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, key: str) -> bytes | None:
        """The value of ``key``, or None when absent."""
        with self.env.begin(buffers=False) as txn:
            return txn.get(key.encode())

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Several values in one transaction."""
        with self.env.begin(buffers=False) as txn:
            return [txn.get(k.encode()) for k in keys]

    def num_samples(self) -> int:
        """The ``num-samples`` value; DatasetError when missing or not an integer."""
        raw = self.get(NUM_SAMPLES_KEY)
        if raw is None:
            raise DatasetError(f"{self.path}: key 'num-samples' is missing; not a TextZoom LMDB")
        try:
            n = int(raw.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            raise DatasetError(f"{self.path}: 'num-samples' is not an integer: {raw[:40]!r}") from None
        if n < 0:
            raise DatasetError(f"{self.path}: 'num-samples' is negative: {n}")
        return n

    def count_prefix(self, prefix: str) -> int:
        """How many keys start with ``prefix`` (a key-only cursor walk)."""
        p = prefix.encode()
        n = 0
        with self.env.begin(buffers=True) as txn:
            cur = txn.cursor()
            if not cur.set_range(p):
                return 0
            for key in cur.iternext(keys=True, values=False):
                if not bytes(key).startswith(p):
                    break
                n += 1
        return n

    def stat_fingerprint(self) -> str:
        """Cheap identity of the LMDB's content: path, data.mdb size and mtime, num-samples."""
        st = (self.path / "data.mdb").stat()
        return f"{self.path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{self.num_samples()}"

    def iter_keys(self) -> Iterator[str]:
        """Every key, in LMDB order."""
        with self.env.begin(buffers=True) as txn:
            for key in txn.cursor().iternext(keys=True, values=False):
                yield bytes(key).decode("utf-8", "replace")


@dataclass
class _PendingSample:
    hr: bytes
    lr: bytes | None
    label: str
    name: str | None


class LmdbWriter:
    """Write a TextZoom LMDB sample by sample; ``num-samples`` is written on close.

    The map grows as needed, so no size has to be guessed. Use as a context manager.
    """

    def __init__(self, path: str | os.PathLike[str], map_size: int = 1 << 28, commit_every: int = 1000) -> None:
        self.path = Path(path)
        if is_lmdb_dir(self.path):
            raise DatasetError(f"an LMDB already exists at {self.path}: choose another output (nothing written)")
        self.path.mkdir(parents=True, exist_ok=True)
        self.env = lmdb.open(str(self.path), map_size=map_size, subdir=True)
        self.count = 0
        self._pending: list[tuple[bytes, bytes]] = []
        self._commit_every = commit_every

    def add(self, hr: bytes, lr: bytes | None, label: str, name: str | None = None) -> int:
        """Append one sample (raw encoded bytes, stored unchanged); returns its 1-based index."""
        self.count += 1
        i = self.count
        self._pending.append((hr_key(i).encode(), hr))
        if lr is not None:
            self._pending.append((lr_key(i).encode(), lr))
        self._pending.append((label_key(i).encode(), label.encode("utf-8")))
        if name is not None:
            self._pending.append((name_key(i).encode(), name.encode("utf-8")))
        if len(self._pending) >= 3 * self._commit_every:
            self._flush()
        return i

    def _flush(self, extra: Iterable[tuple[bytes, bytes]] = ()) -> None:
        items = list(self._pending) + list(extra)
        while True:
            try:
                with self.env.begin(write=True) as txn:
                    for k, v in items:
                        txn.put(k, v)
                break
            except lmdb.MapFullError:
                self.env.set_mapsize(self.env.info()["map_size"] * 2)
        self._pending.clear()

    def close(self) -> None:
        """Write ``num-samples`` and close."""
        self._flush([(NUM_SAMPLES_KEY.encode(), str(self.count).encode())])
        self.env.sync()
        self.env.close()

    def __enter__(self) -> LmdbWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.env.close()


def write_lmdb(
    path: str | os.PathLike[str], samples: Iterable[tuple[bytes, bytes | None, str] | tuple[bytes, bytes | None, str, str | None]],
) -> int:
    """Write ``(hr_bytes, lr_bytes | None, label[, name])`` samples as a TextZoom LMDB; returns N."""
    with LmdbWriter(path) as w:
        for s in samples:
            w.add(*s)
        return w.count


class LmdbPairSource:
    """Samples of one or more TextZoom LMDBs (e.g. train1 + train2), in a chosen order.

    Args:
        readers: the LMDBs.
        entries: ``(reader position, 1-based sample index)`` per produced sample; default:
            every declared sample of every reader, in order.
        lr_source: 'real' (stored LR) or 'bicubic' (bicubic x2 of the resized HR).
        voc: vocabulary for the label filter (TextZoom uses 'all' for dataset labels).
    """

    def __init__(
        self,
        readers: Sequence[LmdbReader],
        entries: Sequence[tuple[int, int]] | None = None,
        lr_source: LrSource = "real",
        voc: str = "all",
    ) -> None:
        if lr_source not in ("real", "bicubic"):
            raise ValueError(f"lr_source must be 'real' or 'bicubic', got {lr_source!r}")
        self.readers = list(readers)
        self.lr_source = lr_source
        self.voc = voc
        self.counts = [r.num_samples() for r in self.readers]
        if entries is None:
            entries = [(k, i) for k, n in enumerate(self.counts) for i in range(1, n + 1)]
        self.entries = list(entries)
        self.description = "+".join(str(r.path) for r in self.readers) + f" ({len(self.entries)} entries)"

    def __len__(self) -> int:
        return len(self.entries)

    def problems(self) -> list[BadSample]:
        """A count mismatch between ``num-samples`` and the ``label-*`` keys present."""
        found = []
        for r, n in zip(self.readers, self.counts):
            m = r.count_prefix("label-")
            if m != n:
                if m > n:
                    what = f"{m - n} stored samples beyond it are not read"
                else:
                    what = f"{n - m} declared samples have no label (reported one by one as missing keys)"
                found.append(BadSample(
                    NUM_SAMPLES_KEY, str(r.path),
                    f"count mismatch: num-samples is {n} but the LMDB holds {m} label-* keys; {what}",
                    "count_mismatch",
                ))
        return found

    def fingerprint(self) -> str:
        """Identity of the readers' content and of this selection of samples."""
        import hashlib

        sel = hashlib.sha256(np.asarray(self.entries, dtype=np.int64).tobytes()).hexdigest()
        return "lmdb|" + "|".join(r.stat_fingerprint() for r in self.readers) + f"|{self.lr_source}|{self.voc}|{sel}"

    def produce(self, i: int) -> RawPair:
        """Decode and resize sample ``i`` exactly as the official loader does."""
        k, idx = self.entries[i]
        reader = self.readers[k]
        path = str(reader.path)
        keys = [hr_key(idx), label_key(idx)] + ([lr_key(idx)] if self.lr_source == "real" else [])
        values = reader.get_many(keys)
        missing = [key for key, v in zip(keys, values) if v is None]
        if missing:
            raise SampleError(BadSample(missing[0], path, f"missing key(s): {', '.join(missing)}", "missing_key"))
        hr_b, label_b = values[0], values[1]
        assert hr_b is not None and label_b is not None
        try:
            raw = label_b.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SampleError(BadSample(label_key(idx), path, f"label is not UTF-8: {exc}", "undecodable")) from None
        if raw == "":
            raise SampleError(BadSample(label_key(idx), path, "empty label", "empty_label"))
        try:
            hr_img = resize_bicubic(decode_image(hr_b), HR_SIZE)
        except Exception as exc:  # Pillow raises many types for corrupt data
            raise SampleError(BadSample(hr_key(idx), path, f"undecodable image: {exc}", "undecodable")) from None
        if self.lr_source == "real":
            lr_b = values[2]
            assert lr_b is not None
            try:
                lr_img = resize_bicubic(decode_image(lr_b), LR_SIZE)
            except Exception as exc:
                raise SampleError(BadSample(lr_key(idx), path, f"undecodable image: {exc}", "undecodable")) from None
        else:
            lr_img = resize_bicubic(hr_img, LR_SIZE)
        return RawPair(
            np.asarray(hr_img, dtype=np.uint8), np.asarray(lr_img, dtype=np.uint8),
            str_filt(raw, self.voc), raw, f"{reader.path.name}/{idx}",
        )
