"""Adaptive batching for one replica (BentoML / Triton style): requests ``await batcher.submit(item, size)``,
the batcher groups them and calls the blocking ``predict_batch(items) -> results`` in its own single worker
thread, so the model runs one batch at a time and the event loop stays free.

Dispatch rule:

- Only one batch runs at a time. While it runs, requests queue up; when it ends, the queued requests (up to
  ``max_batch_size`` rows, in arrival order) go at once, so under load batches form with no added wait.
- When the model is idle and a request arrives, it goes at once if the adaptive wait bound is 0; otherwise
  the batcher waits until ``max_batch_size`` rows are queued or the oldest queued request has waited the
  bound, whichever comes first. A single request bigger than ``max_batch_size`` rows goes alone.
- The bound follows the measured model latency: ``latency(n) = a + b * n`` for a batch of n rows, fitted by
  least squares over the last 64 calls (timed with the injected ``clock``), once at least 2 distinct batch
  sizes were seen; until then the bound is 0. ``a`` is the per-call overhead and ``b`` the cost of a row:
  when ``a > b`` a call costs more than a row and waiting to share it pays, so the bound is
  ``min(max_wait, a)`` (never negative); otherwise it is 0. A model with a large fixed per-call cost thus
  batches even at moderate load, and one with no per-call overhead never waits.

Failures: when ``predict_batch`` raises on a batch of several items, each item is retried alone, so only the
bad item's request gets the exception (its own exception object) and the others succeed. A result list of
the wrong length fails every request of the batch with a ``RuntimeError``. A request whose task is cancelled
(the client went away) before dispatch is dropped from the queue. ``close()`` fails the queued requests with
``RuntimeError("the replica is shutting down")``, lets the batch in flight finish, and stops the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_HISTORY = 64  # calls kept for the latency fit: enough to average noise, few enough to follow a change


def fit_latency(points: list[tuple[int, float]]) -> tuple[float, float] | None:
    """Least-squares ``latency = a + b * rows`` over ``(rows, seconds)`` points; None below 2 distinct sizes."""
    if len({n for n, _ in points}) < 2:
        return None
    mean_n = sum(n for n, _ in points) / len(points)
    mean_t = sum(t for _, t in points) / len(points)
    sxx = sum((n - mean_n) ** 2 for n, _ in points)
    sxy = sum((n - mean_n) * (t - mean_t) for n, t in points)
    b = sxy / sxx
    return mean_t - b * mean_n, b


@dataclass
class _Request(Generic[T, R]):
    item: T
    size: int
    future: asyncio.Future[R]
    enqueued_at: float  # loop time: what the wait bound is measured against


class AdaptiveBatcher(Generic[T, R]):
    def __init__(
        self,
        predict_batch: Callable[[list[T]], list[R]],
        *,
        max_batch_size: int = 32,
        max_wait: float = 0.01,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        if max_wait < 0:
            raise ValueError(f"max_wait must be >= 0, got {max_wait}")
        self._predict_batch = predict_batch
        self._max_batch_size = max_batch_size
        self._max_wait = max_wait
        self._clock = clock
        # One thread: the model runs one batch at a time, and models are rarely thread-safe anyway.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="strato-batcher")
        self._queue: deque[_Request[T, R]] = deque()
        self._history: deque[tuple[int, float]] = deque(maxlen=_HISTORY)
        self._fit: tuple[float, float] | None = None
        self._running: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._batches = self._items = self._rows = 0

    async def submit(self, item: T, size: int = 1) -> R:
        """Queue one request of ``size`` rows and wait for its own result (or its own exception)."""
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        if self._closed:
            raise RuntimeError("the replica is shutting down")
        loop = asyncio.get_running_loop()
        request: _Request[T, R] = _Request(item, size, loop.create_future(), loop.time())
        self._queue.append(request)
        self._maybe_dispatch()
        try:
            return await request.future
        except asyncio.CancelledError:
            # The client went away: a request still queued must not cost a model call.
            with contextlib.suppress(ValueError):
                self._queue.remove(request)
            if not self._queue:
                self._cancel_timer()
            raise

    def wait_bound(self) -> float:
        """The current adaptive wait, in seconds: ``min(max_wait, a)`` when ``a > b``, else 0."""
        if self._fit is None:
            return 0.0
        a, b = self._fit
        return max(0.0, min(self._max_wait, a)) if a > b else 0.0

    @property
    def stats(self) -> dict[str, Any]:
        a, b = self._fit if self._fit is not None else (None, None)
        return {
            "batches": self._batches,
            "items": self._items,
            "rows": self._rows,
            "mean_batch_size": self._items / self._batches if self._batches else 0.0,
            "mean_batch_rows": self._rows / self._batches if self._batches else 0.0,
            "queued": len(self._queue),
            "wait_bound": self.wait_bound(),
            "latency_a": a,
            "latency_b": b,
        }

    async def close(self) -> None:
        """Fail the queued requests, let the batch in flight finish, and stop the worker thread."""
        self._closed = True
        self._cancel_timer()
        while self._queue:
            request = self._queue.popleft()
            if not request.future.done():
                request.future.set_exception(RuntimeError("the replica is shutting down"))
        if self._running is not None:
            await asyncio.shield(self._running)  # its callers still get their results
        self._executor.shutdown(wait=False)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self, deadline: float) -> None:
        self._timer = None
        # asyncio may run a timer up to its clock resolution early: count the deadline as reached.
        self._maybe_dispatch(now=deadline)

    def _maybe_dispatch(self, *, after_batch: bool = False, now: float | None = None) -> None:
        while self._queue and self._queue[0].future.done():  # cancelled while queued
            self._queue.popleft()
        if self._closed or self._running is not None or not self._queue:
            return
        bound = self.wait_bound()
        rows = sum(r.size for r in self._queue)
        loop = asyncio.get_running_loop()
        deadline = self._queue[0].enqueued_at + bound
        now = loop.time() if now is None else max(now, loop.time())
        if after_batch or bound <= 0 or rows >= self._max_batch_size or now >= deadline:
            self._start_batch()
        elif self._timer is None:
            self._timer = loop.call_at(deadline, self._on_timer, deadline)

    def _start_batch(self) -> None:
        self._cancel_timer()
        batch: list[_Request[T, R]] = []
        rows = 0
        while self._queue:
            request = self._queue[0]
            if request.future.done():
                self._queue.popleft()
                continue
            if batch and rows + request.size > self._max_batch_size:
                break  # strict arrival order: never skip ahead to fill a batch
            batch.append(self._queue.popleft())
            rows += request.size
        if batch:
            self._running = asyncio.get_running_loop().create_task(self._run(batch, rows))

    def _timed_call(self, items: list[T], rows: int) -> list[R]:
        start = self._clock()
        results = self._predict_batch(items)
        self._history.append((rows, self._clock() - start))  # deque.append is atomic: safe from the thread
        return results

    async def _call(self, items: list[T], rows: int) -> list[R]:
        loop = asyncio.get_running_loop()
        results = await loop.run_in_executor(self._executor, self._timed_call, items, rows)
        self._fit = fit_latency(list(self._history))
        # Accept any sized sequence (a NumPy array is a common return), but exactly one result per item.
        got = len(results) if hasattr(results, "__len__") else type(results).__name__
        if got != len(items):
            raise _WrongLength(f"predict_batch returned {got} results for a batch of {len(items)} items")
        return list(results)

    async def _run(self, batch: list[_Request[T, R]], rows: int) -> None:
        try:
            self._batches += 1
            self._items += len(batch)
            self._rows += rows
            try:
                results = await self._call([r.item for r in batch], rows)
            except _WrongLength as exc:
                for request in batch:
                    _fail(request, RuntimeError(str(exc)))
            except Exception as exc:
                if len(batch) == 1:
                    _fail(batch[0], exc)
                else:
                    await self._retry_alone(batch)
            else:
                for request, result in zip(batch, results, strict=True):
                    if not request.future.done():
                        request.future.set_result(result)
        finally:
            for request in batch:  # never leave a caller hanging, whatever went wrong above
                _fail(request, RuntimeError("the batch ended without a result"))
            self._running = None
            self._maybe_dispatch(after_batch=True)

    async def _retry_alone(self, batch: list[_Request[T, R]]) -> None:
        # One bad input must not fail its neighbours: find it by running each item alone.
        for request in batch:
            if request.future.done():
                continue  # its client went away meanwhile
            try:
                result = (await self._call([request.item], request.size))[0]
            except _WrongLength as exc:
                _fail(request, RuntimeError(str(exc)))
            except Exception as exc:
                _fail(request, exc)
            else:
                if not request.future.done():
                    request.future.set_result(result)


class _WrongLength(Exception):
    """Internal: the model broke the one-result-per-item contract (not an error of one item)."""


def _fail(request: _Request[Any, Any], exc: BaseException) -> None:
    if not request.future.done():
        request.future.set_exception(exc)
