"""Long-poll support: async handlers wait for a resource's next committed status change instead of
polling the store. The metadata store calls ``notify`` from whatever thread committed the change."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool

from strato.store.metadata import ResourceRecord


class ChangeWaiters:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._events: dict[str, set[asyncio.Event]] = {}

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def notify(self, uid: str) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake, uid)

    def _wake(self, uid: str) -> None:
        for event in self._events.pop(uid, set()):
            event.set()

    def register(self, uid: str) -> asyncio.Event:
        """Register before reading the state, so a change between the read and the wait is not missed."""
        event = asyncio.Event()
        self._events.setdefault(uid, set()).add(event)
        return event

    async def wait(self, uid: str, event: asyncio.Event, timeout: float) -> None:
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        finally:
            waiting = self._events.get(uid)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    self._events.pop(uid, None)

    async def until(
        self, read: Callable[[], ResourceRecord], done: Callable[[ResourceRecord], bool], timeout: float
    ) -> ResourceRecord:
        """Re-read a resource after each of its changes until ``done`` holds or ``timeout`` passes; return
        the last read (the long poll behind every ``/wait`` route)."""
        deadline = time.monotonic() + timeout
        record = await run_in_threadpool(read)
        while True:
            event = self.register(record.uid)
            record = await run_in_threadpool(read)
            remaining = deadline - time.monotonic()
            if done(record) or remaining <= 0:
                await self.wait(record.uid, event, 0)
                return record
            await self.wait(record.uid, event, remaining)
