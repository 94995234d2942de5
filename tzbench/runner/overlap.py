"""Overlap for evaluation: a bounded producer thread, and a pool that runs several judges side by side.

Threads, not processes: what takes the time (PIL decoding, torch kernels, onnxruntime sessions)
releases the GIL, and the tensors handed from one stage to the next are shared, never copied or
pickled. Order is kept everywhere: items come out of a :class:`Prefetcher` in the order its
source made them, and :meth:`JudgePool.read` returns the readings in judge order, so a consumer
does exactly what a sequential loop would do and its results are the same.

Errors: an exception raised by the producer or by a judge reaches the consumer as that same
exception object (type, message, traceback), at the point where the sequential loop would have
raised it. A KeyboardInterrupt lands in the main thread (the consumer), which stops the producer
and waits for it before the exception goes on, so nothing runs after the caller records the run.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from types import TracebackType
from typing import Any, Generic, TypeVar

__all__ = ["Prefetcher", "JudgePool", "judge_threads", "sequential_requested", "SEQUENTIAL_ENV"]

T = TypeVar("T")

#: ``TZBENCH_EVAL_SEQUENTIAL=1`` makes evaluation run the reference path: one thread, no overlap.
SEQUENTIAL_ENV = "TZBENCH_EVAL_SEQUENTIAL"

_POLL_S = 0.1  # how often a producer blocked on a full queue looks at the stop flag


def sequential_requested() -> bool:
    """Whether ``$TZBENCH_EVAL_SEQUENTIAL`` asks for the single-threaded reference path."""
    return os.environ.get(SEQUENTIAL_ENV, "").strip().lower() in ("1", "true", "yes", "on")


class Prefetcher(Generic[T]):
    """Iterates ``source`` on a background thread, at most ``depth`` items ahead of the consumer.

    Use as a context manager and iterate it in the consuming thread::

        with Prefetcher(make_batches()) as batches:
            for batch in batches:
                ...

    The source is iterated (``iter()`` included) only on the background thread, so a generator
    that enters a thread-local context (``torch.inference_mode()``) does so where it runs.
    Leaving the block early (an error, a ``break``, Ctrl-C) stops the producer after the item it
    is making and joins it.
    """

    def __init__(self, source: Iterable[T], depth: int = 1, name: str = "tzbench-prefetch") -> None:
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self._source = source
        self._queue: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False

    def __enter__(self) -> Prefetcher[T]:
        self._thread.start()
        self._started = True
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _put(self, entry: tuple[bool, Any]) -> bool:
        # A timed put, so that a consumer that has gone away (stop set) never leaves us blocked.
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        it: Iterator[T] | None = None
        try:
            it = iter(self._source)
            for item in it:
                if not self._put((True, item)):
                    break
            else:
                self._put((False, None))
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put((False, exc))
        finally:
            close = getattr(it, "close", None) if it is not None else None
            if close is not None:  # a generator's finally blocks run here, on its own thread
                close()

    def __iter__(self) -> Iterator[T]:
        if not self._started:
            raise RuntimeError("Prefetcher must be entered (with ...) before it is iterated")
        while True:
            ok, value = self._queue.get()
            if ok:
                yield value
            elif value is None:
                return
            else:
                raise value

    def close(self) -> None:
        """Stop the producer (after its current item) and wait for it."""
        self._stop.set()
        if self._started:
            self._thread.join()


def judge_threads(n_judges: int, total: int | None = None) -> int:
    """Threads for each of ``n_judges`` judges reading side by side: an even share of ``total``
    (default: torch's thread count, the cores it was given), at least one.

    More threads than cores is what hurts on a small machine: a spinning or descheduled thread
    holds every other thread of its team at the next barrier.
    """
    import torch

    total = torch.get_num_threads() if total is None else total
    return max(1, total // max(1, n_judges))


def _set_torch_threads(n: int) -> None:
    import torch

    # An OpenMP thread count is per thread: this sets the calling pool thread's, not the caller's.
    torch.set_num_threads(n)


def _read(recognize: Callable[[Any], list[str]], images: Any) -> list[str]:
    import torch

    # Grad mode is per thread: a pool thread starts with autograd on (and so may a caller).
    with torch.inference_mode():
        return recognize(images)


class JudgePool:
    """Reads one batch with every judge, the judges side by side on a thread pool.

    ``read`` returns one list of strings per judge, in the order of ``recognizers``. Side by
    side, each judge runs on a pool thread whose torch thread count is ``threads`` (default
    :func:`judge_threads`); with one judge or ``concurrent=False`` they run on the calling
    thread one after the other, as they always did. When a judge raises, the exception of the
    first failing judge in that order is raised, as a sequential loop would raise it, once no
    judge is still reading the batch.
    """

    def __init__(self, recognizers: Sequence[Any], concurrent: bool = True, threads: int | None = None) -> None:
        import torch

        self.recognizers = list(recognizers)
        n = len(self.recognizers)
        self._pool: ThreadPoolExecutor | None = None
        # torch.set_num_threads in a thread also changes the count new threads start with; put it back.
        self._restore = torch.get_num_threads()
        if concurrent and n > 1:
            self._pool = ThreadPoolExecutor(n, thread_name_prefix="tzbench-judge", initializer=_set_torch_threads,
                                            initargs=(threads or judge_threads(n, self._restore),))

    def __enter__(self) -> JudgePool:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def read(self, images: Any) -> list[list[str]]:
        """Every judge's reading of ``images``, in judge order."""
        if self._pool is None:
            return [_read(rec.recognize, images) for rec in self.recognizers]
        futures: list[Future[list[str]]] = [self._pool.submit(_read, rec.recognize, images)
                                            for rec in self.recognizers]
        try:
            wait(futures)
        except BaseException:  # Ctrl-C while waiting: nothing may still read the batch once it goes on
            for f in futures:
                f.cancel()
            wait(futures)
            raise
        return [f.result() for f in futures]

    def close(self) -> None:
        """Wait for running reads, free the threads, restore torch's thread count."""
        if self._pool is not None:
            import torch

            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            torch.set_num_threads(self._restore)
