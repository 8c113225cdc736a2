"""Micro-batching: texts from concurrent requests share the embedder's forward passes.

One worker thread owns the model. A request puts a job (its texts plus a function to finish the work on the
vectors) on a queue and awaits a future; the event loop never runs model code. The worker takes the first job,
then drains what else is queued up to ``max_batch`` texts. It waits up to ``max_wait_ms`` for more only when the
previous pass held several requests: a lone client pays no waiting, and under load the queue fills while a pass
runs, so batches grow by themselves.

Example:
    >>> b = Batcher(lambda texts: np.ones((len(texts), 2), np.float32), max_batch=8)
    >>> b.start()
    >>> import asyncio
    >>> asyncio.run(b.submit(["a", "b"])).shape
    (2, 2)
    >>> b.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Batcher"]

log = logging.getLogger(__name__)
_STOP = object()


@dataclass
class _Job:
    texts: Sequence[str]
    prepare: Callable[[list[str]], list[str]] | None
    then: Callable[[np.ndarray, list[str]], Any] | None
    rows: Callable[[np.ndarray, list[str]], Any] | None
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


def _resolve(job: _Job, result: Any = None, exc: BaseException | None = None) -> None:
    def settle() -> None:
        if job.future.done():  # the client went away and the request was cancelled
            return
        if exc is not None:
            job.future.set_exception(exc)
        else:
            job.future.set_result(result)

    # its event loop closed (an integration's asyncio.run gave up): no one waits for the answer. The RuntimeError
    # ended the worker thread, and every later request of the process waited forever
    with contextlib.suppress(RuntimeError):
        job.loop.call_soon_threadsafe(settle)


class Batcher:
    """Runs ``encode(list_of_texts) -> (n, dim) array`` for many requests at once in one thread.

    Args:
        encode: the blocking embedding function (e.g. ``Embedder.encode``).
        max_batch: most texts in one pass (a single larger request still runs whole).
        max_wait_ms: how long to wait for more requests once traffic is concurrent.
        observe: called with ``(texts_in_pass, requests_in_pass, seconds)`` after each pass (metrics).
    """

    def __init__(self, encode: Callable[[list[str]], np.ndarray], *, max_batch: int = 64, max_wait_ms: float = 2.0,
                 observe: Callable[[int, int, float], None] | None = None, name: str = "embedder") -> None:
        self.encode, self.max_batch, self.max_wait = encode, max_batch, max_wait_ms / 1000.0
        self.observe = observe
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=f"feedback-nlp-{name}", daemon=True)
        self._last_requests = 1

    @property
    def depth(self) -> int:
        """Jobs waiting for the worker."""
        return self._queue.qsize()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the queued jobs, then end the worker thread."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)

    async def submit(self, texts: Sequence[str], *, prepare: Callable[[list[str]], list[str]] | None = None,
                     then: Callable[[np.ndarray, list[str]], Any] | None = None,
                     rows: Callable[[np.ndarray, list[str]], Any] | None = None) -> Any:
        """Embed ``texts`` and return ``then(vectors, prepared_texts)``, ``rows(vectors, prepared_texts)`` or the
        vectors.

        ``prepare`` (cleaning, validation; it may raise to reject the request) and ``then`` run in the worker
        thread, so neither blocks the event loop; an exception from either reaches the caller. ``rows`` is a
        row-wise function returning a DataFrame or a list (a classifier's ``tag``): it runs once per pass for all the
        requests that pass the same function, and each gets its own rows, which saves its per-call overhead.
        """
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put(_Job(list(texts), prepare, then, rows, future, loop))
        return await future

    def _collect(self, first: _Job) -> tuple[list[_Job], bool]:
        jobs, n = [first], len(first.texts)
        deadline = time.monotonic() + (self.max_wait if self._last_requests > 1 else 0.0)
        while n < self.max_batch:
            try:
                remaining = deadline - time.monotonic()
                job = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is _STOP:
                return jobs, True
            jobs.append(job)
            n += len(job.texts)
        return jobs, False

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            jobs, stopping = self._collect(first)
            self._last_requests = len(jobs)
            jobs = [job for job in jobs if self._prepare(job)]
            if not jobs:
                continue
            start = time.perf_counter()
            texts = [t for job in jobs for t in job.texts]
            try:
                vectors = self.encode(texts)
            except Exception:
                # one bad request must not fail the others that shared its pass: run them one by one
                for job in jobs:
                    self._finish_alone(job)
                continue
            if self.observe is not None:
                try:
                    self.observe(len(texts), len(jobs), time.perf_counter() - start)
                except Exception:  # noqa: BLE001 - a metrics hook's failure must not end the worker (see _resolve)
                    log.exception("the batcher's observe hook failed; the pass is answered all the same")
            parts, offset = [], 0
            for job in jobs:
                parts.append(vectors[offset:offset + len(job.texts)])
                offset += len(job.texts)
            self._finish_pass(jobs, parts)

    def _prepare(self, job: _Job) -> bool:
        if job.prepare is None:
            return True
        try:
            job.texts = job.prepare(list(job.texts))
        except Exception as exc:
            _resolve(job, exc=exc)
            return False
        return True

    def _finish_alone(self, job: _Job) -> None:
        try:
            vectors = self.encode(list(job.texts))
        except Exception as exc:
            _resolve(job, exc=exc)
            return
        self._finish(job, vectors)

    def _finish_pass(self, jobs: list[_Job], parts: list[np.ndarray]) -> None:
        # keyed by the callable itself: two bound methods of one classifier are equal (same __self__ and
        # __func__) though they are distinct objects
        shared: dict[Callable[[np.ndarray, list[str]], Any], list[int]] = {}
        for i, job in enumerate(jobs):
            if job.rows is not None:
                shared.setdefault(job.rows, []).append(i)
            else:
                self._finish(job, parts[i])
        for members in shared.values():
            rows = jobs[members[0]].rows
            assert rows is not None  # grouped by a non-None rows function above
            try:
                table = rows(np.vstack([parts[i] for i in members]), [t for i in members for t in jobs[i].texts])
            except Exception:  # noqa: BLE001 - retried request by request, so the error reaches its owner
                for i in members:
                    self._finish(jobs[i], parts[i])
                continue
            start = 0
            for i in members:
                end = start + len(parts[i])
                _resolve(jobs[i], table.iloc[start:end].reset_index(drop=True) if hasattr(table, "iloc")
                         else table[start:end])
                start = end

    def _finish(self, job: _Job, vectors: np.ndarray) -> None:
        try:
            if job.rows is not None:
                result = job.rows(vectors, list(job.texts))
            elif job.then is not None:
                result = job.then(vectors, list(job.texts))
            else:
                result = vectors
        except Exception as exc:
            _resolve(job, exc=exc)
            return
        _resolve(job, result)
