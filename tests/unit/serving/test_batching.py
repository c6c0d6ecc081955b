"""The adaptive batcher. Batches are made deterministic by holding the model on a threading.Event and
waiting for conditions (never for time); the latency model runs on a fake clock that the fake model advances.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from strato.serving.batching import AdaptiveBatcher, fit_latency

GUARD = 30.0  # seconds before a stuck test fails instead of hanging; passing never comes near it


class Model:
    """A fake model: records each batch, can be held on an event, and advances a fake clock by a + b * rows."""

    def __init__(self, fn: Callable[[Any], Any] = lambda x: x * 10, *, a: float = 0.0, b: float = 0.0) -> None:
        self.fn = fn
        self.a, self.b = a, b
        self.now = 0.0
        self.calls: list[list[Any]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def clock(self) -> float:
        return self.now

    def hold(self) -> None:
        self.started.clear()
        self.release.clear()

    def __call__(self, items: list[Any]) -> list[Any]:
        self.calls.append(list(items))
        self.started.set()
        assert self.release.wait(GUARD), "the test never released the model"
        self.now += self.a + self.b * sum(len(x) if isinstance(x, list) else 1 for x in items)
        return [self.fn(x) for x in items]


async def until(cond: Callable[[], bool]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GUARD
    while not cond():
        assert loop.time() < deadline, "condition never became true"
        await asyncio.sleep(0.001)


async def settle() -> None:
    for _ in range(10):  # let ready tasks run their next step; no timers involved
        await asyncio.sleep(0)


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), GUARD))


def spawn(batcher: AdaptiveBatcher[Any, Any], item: Any, size: int = 1) -> asyncio.Task[Any]:
    return asyncio.get_running_loop().create_task(batcher.submit(item, size))


async def start_held(model: Model, batcher: AdaptiveBatcher[Any, Any], item: Any) -> asyncio.Task[Any]:
    """Submit one request and wait until the model is running it, held."""
    model.hold()
    task = spawn(batcher, item)
    await until(model.started.is_set)
    return task


def test_results_go_to_their_callers() -> None:
    async def body() -> None:
        model = Model()
        batcher: AdaptiveBatcher[int, int] = AdaptiveBatcher(model, max_batch_size=4)
        results = await asyncio.gather(*(batcher.submit(i) for i in range(20)))
        assert results == [i * 10 for i in range(20)]
        assert all(len(call) <= 4 for call in model.calls)
        assert sorted(x for call in model.calls for x in call) == list(range(20))
        assert batcher.stats["items"] == 20
        await batcher.close()

    run(body)


def test_queued_requests_form_one_batch_when_the_model_frees() -> None:
    async def body() -> None:
        model = Model()
        batcher: AdaptiveBatcher[int, int] = AdaptiveBatcher(model, max_batch_size=8)
        first = await start_held(model, batcher, 0)
        rest = [spawn(batcher, i) for i in range(1, 6)]
        await until(lambda: batcher.stats["queued"] == 5)
        model.release.set()
        assert await first == 0
        assert await asyncio.gather(*rest) == [10, 20, 30, 40, 50]
        assert model.calls == [[0], [1, 2, 3, 4, 5]]
        assert batcher.stats["batches"] == 2
        assert batcher.stats["mean_batch_size"] == 3.0
        await batcher.close()

    run(body)


def test_batches_never_exceed_max_rows_in_arrival_order() -> None:
    async def body() -> None:
        model = Model(fn=len)
        batcher: AdaptiveBatcher[str, int] = AdaptiveBatcher(model, max_batch_size=4)
        first = await start_held(model, batcher, "a")
        sizes = {"bbb": 3, "cc": 2, "dd": 2, "e": 1, "ffff": 4, "ggggg": 5}
        rest = [spawn(batcher, item, size) for item, size in sizes.items()]
        await until(lambda: batcher.stats["queued"] == len(sizes))
        model.release.set()
        assert await asyncio.gather(first, *rest) == [1, 3, 2, 2, 1, 4, 5]
        # c+d fill 4 rows; e cannot join f (1 + 4 > 4); g is bigger than a batch and goes alone.
        assert model.calls == [["a"], ["bbb"], ["cc", "dd"], ["e"], ["ffff"], ["ggggg"]]
        assert batcher.stats["rows"] == 1 + sum(sizes.values())
        await batcher.close()

    run(body)


def test_a_bad_item_fails_only_its_own_request() -> None:
    raised: list[Exception] = []

    def fn(x: str) -> str:
        if x == "bad":
            raised.append(ValueError(f"cannot score {x}"))
            raise raised[-1]
        return x.upper()

    async def body() -> None:
        model = Model(fn=fn)
        batcher: AdaptiveBatcher[str, str] = AdaptiveBatcher(model, max_batch_size=8)
        first = await start_held(model, batcher, "first")
        tasks = [spawn(batcher, x) for x in ("x", "bad", "y")]
        await until(lambda: batcher.stats["queued"] == 3)
        model.release.set()
        results = await asyncio.gather(first, *tasks, return_exceptions=True)
        assert results[:2] == ["FIRST", "X"]
        assert results[3] == "Y"
        assert results[2] is raised[-1]  # the original exception object from its own retry
        assert model.calls == [["first"], ["x", "bad", "y"], ["x"], ["bad"], ["y"]]
        # A batch of one is not retried: the caller gets the exception at once.
        with pytest.raises(ValueError, match="cannot score bad") as info:
            await batcher.submit("bad")
        assert info.value is raised[-1]
        await batcher.close()

    run(body)


def test_wrong_number_of_results_fails_the_whole_batch() -> None:
    async def body() -> None:
        model = Model()
        batcher: AdaptiveBatcher[int, int] = AdaptiveBatcher(lambda items: model(items)[:-1], max_batch_size=8)
        first = await start_held(model, batcher, 0)
        tasks = [spawn(batcher, i) for i in (1, 2, 3)]
        await until(lambda: batcher.stats["queued"] == 3)
        model.release.set()
        with pytest.raises(RuntimeError, match="returned 0 results for a batch of 1 items"):
            await first
        for task in tasks:
            with pytest.raises(RuntimeError, match="returned 2 results for a batch of 3 items"):
                await task
        assert model.calls == [[0], [1, 2, 3]]  # not retried: the model, not an item, is at fault
        await batcher.close()

    run(body)


def test_cancelled_request_is_dropped_before_dispatch() -> None:
    async def body() -> None:
        model = Model()
        batcher: AdaptiveBatcher[int, int] = AdaptiveBatcher(model, max_batch_size=8)
        first = await start_held(model, batcher, 0)
        gone, kept = spawn(batcher, 1), spawn(batcher, 2)
        await until(lambda: batcher.stats["queued"] == 2)
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        assert batcher.stats["queued"] == 1
        model.release.set()
        assert await asyncio.gather(first, kept) == [0, 20]
        assert model.calls == [[0], [2]]
        await batcher.close()

    run(body)


def test_close_fails_the_queue_and_lets_the_running_batch_finish() -> None:
    async def body() -> None:
        model = Model()
        batcher: AdaptiveBatcher[int, int] = AdaptiveBatcher(model, max_batch_size=8)
        first = await start_held(model, batcher, 0)
        queued = [spawn(batcher, i) for i in (1, 2)]
        await until(lambda: batcher.stats["queued"] == 2)
        closing = asyncio.get_running_loop().create_task(batcher.close())
        for task in queued:
            with pytest.raises(RuntimeError, match="the replica is shutting down"):
                await task
        assert not closing.done()  # it waits for the batch in flight
        model.release.set()
        await closing
        assert await first == 0
        assert model.calls == [[0]]
        with pytest.raises(RuntimeError, match="the replica is shutting down"):
            await batcher.submit(3)

    run(body)


@pytest.mark.parametrize(
    ("a", "b", "max_wait", "bound"),
    [
        (0.05, 0.001, 0.01, 0.01),  # large per-call cost: wait the most allowed
        (0.004, 0.001, 0.01, 0.004),  # wait no longer than one call's overhead
        (0.001, 0.002, 0.01, 0.0),  # a row costs more than the call: never wait
        (0.0, 0.01, 0.01, 0.0),  # no per-call overhead
        (0.003, 0.003, 0.01, 0.0),  # a == b: batching does not pay
        (0.001, -0.0001, 0.01, 0.001),  # noise can make b negative; the bound still follows a
        (-0.001, -0.002, 0.01, 0.0),  # never negative
    ],
)
def test_wait_bound_follows_the_latency_model(a: float, b: float, max_wait: float, bound: float) -> None:
    async def body() -> None:
        model = Model(fn=sum, a=a, b=b)
        batcher: AdaptiveBatcher[list[int], int] = AdaptiveBatcher(model, max_wait=max_wait, clock=model.clock)
        assert await batcher.submit([1], size=1) == 1
        assert batcher.wait_bound() == 0.0  # one batch size seen: no fit yet
        assert batcher.stats["latency_a"] is None
        assert await batcher.submit([1, 2, 3], size=3) == 6
        assert batcher.stats["latency_a"] == pytest.approx(a, abs=1e-12)
        assert batcher.stats["latency_b"] == pytest.approx(b, abs=1e-12)
        assert batcher.wait_bound() == pytest.approx(bound, abs=1e-12)
        assert batcher.stats["wait_bound"] == batcher.wait_bound()
        await batcher.close()

    run(body)


async def learned(model: Model, batcher: AdaptiveBatcher[list[int], int]) -> None:
    """Teach the batcher the model's latency with two batch sizes (each goes at once while the bound is 0)."""
    await batcher.submit([1], size=1)
    await batcher.submit([1, 1], size=2)
    assert batcher.wait_bound() > 0


def test_idle_model_waits_for_a_full_batch() -> None:
    async def body() -> None:
        model = Model(fn=sum, a=500.0, b=1.0)  # fake seconds: the bound is min(max_wait, a) = 500s
        batcher: AdaptiveBatcher[list[int], int] = AdaptiveBatcher(
            model, max_batch_size=4, max_wait=1000.0, clock=model.clock
        )
        await learned(model, batcher)
        assert batcher.wait_bound() == pytest.approx(500.0)
        tasks = [spawn(batcher, [i], 1) for i in range(3)]
        await settle()
        assert batcher.stats["queued"] == 3  # 3 of 4 rows: waiting for more (or for 500s)
        tasks.append(spawn(batcher, [3], 1))
        await settle()
        assert batcher.stats["queued"] == 0  # the 4th row filled the batch: it went at once
        assert await asyncio.gather(*tasks) == [0, 1, 2, 3]
        assert model.calls[-1] == [[0], [1], [2], [3]]
        # A lone request waiting for company is failed by close().
        lone = spawn(batcher, [9], 1)
        await settle()
        await batcher.close()
        with pytest.raises(RuntimeError, match="shutting down"):
            await lone

    run(body)


def test_oldest_request_goes_when_it_has_waited_the_bound() -> None:
    async def body() -> None:
        model = Model(fn=sum, a=0.02, b=0.001)  # bound min(max_wait, a) = 0.02 real seconds of waiting
        batcher: AdaptiveBatcher[list[int], int] = AdaptiveBatcher(
            model, max_batch_size=32, max_wait=0.05, clock=model.clock
        )
        await learned(model, batcher)
        assert await batcher.submit([4, 5], size=2) == 9  # nobody else comes: it goes alone after the wait
        assert model.calls[-1] == [[4, 5]]
        await batcher.close()

    run(body)


def test_under_load_the_next_batch_goes_without_waiting() -> None:
    async def body() -> None:
        model = Model(fn=sum, a=500.0, b=1.0)
        batcher: AdaptiveBatcher[list[int], int] = AdaptiveBatcher(
            model, max_batch_size=2, max_wait=1000.0, clock=model.clock
        )
        await learned(model, batcher)
        model.hold()
        full = [spawn(batcher, [i], 1) for i in range(2)]  # a full batch goes at once, and is held
        await until(model.started.is_set)
        late = spawn(batcher, [7], 1)
        await until(lambda: batcher.stats["queued"] == 1)
        model.release.set()
        # When the held batch ends, the lone queued request goes at once instead of waiting 500s.
        assert await asyncio.gather(*full, late) == [0, 1, 7]
        assert model.calls[-2:] == [[[0], [1]], [[7]]]
        await batcher.close()

    run(body)


def test_fit_latency() -> None:
    assert fit_latency([]) is None
    assert fit_latency([(4, 0.1), (4, 0.2)]) is None  # one batch size: no slope to fit
    a, b = fit_latency([(1, 0.011), (2, 0.012), (4, 0.014), (8, 0.018)]) or (0.0, 0.0)
    assert (a, b) == (pytest.approx(0.01), pytest.approx(0.001))


def test_history_follows_a_changed_model() -> None:
    async def body() -> None:
        model = Model(fn=sum, a=0.0, b=0.01)
        batcher: AdaptiveBatcher[list[int], int] = AdaptiveBatcher(model, max_wait=0.001, clock=model.clock)
        for i in range(40):
            await batcher.submit([1] * (1 + i % 2), size=1 + i % 2)
        assert batcher.wait_bound() == 0.0
        model.a, model.b = 0.05, 0.0  # the per-call cost grows (e.g. a remote accelerator)
        for i in range(64):
            await batcher.submit([1] * (1 + i % 2), size=1 + i % 2)
        assert batcher.wait_bound() == pytest.approx(0.001)  # only the last 64 calls count
        await batcher.close()

    run(body)


@pytest.mark.parametrize(
    ("kw", "message"), [({"max_batch_size": 0}, "max_batch_size"), ({"max_wait": -1.0}, "max_wait")]
)
def test_bad_arguments(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AdaptiveBatcher(Model(), **kw)

    async def body() -> None:
        batcher: AdaptiveBatcher[int, int] = AdaptiveBatcher(Model())
        with pytest.raises(ValueError, match="size must be >= 1"):
            await batcher.submit(1, size=0)
        await batcher.close()

    run(body)
