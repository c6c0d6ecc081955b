"""A lean HTTP/1.1 client for one upstream server on loopback (the managed MLflow server), used by the
``/mlflow`` proxy: kept-alive connections in a pool, the request head and a small body written in one
segment, responses parsed with httptools (the parser uvicorn uses) and streamed back as they arrive.

Why not httpx/httpcore: the proxy's own cost per request is what users pay on every ``log_metric``;
httpcore's per-request machinery (locks, cancellation shields, expiry polls, h11 in pure Python) cost
more than the forwarding itself. This client does only what a reverse proxy to one trusted server
needs; anything unusual (a connection reset, a malformed response) closes the connection and raises
``UpstreamError``, which the proxy answers with a 503 that MLflow's client retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httptools

READ_SIZE = 256 * 1024


class UpstreamError(Exception):
    """The upstream did not answer properly; ``sent`` says whether any byte of the request was written."""

    def __init__(self, message: str, *, sent: bool):
        super().__init__(message)
        self.sent = sent


@dataclass
class _Parsed:
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: list[bytes] = field(default_factory=list)
    headers_done: bool = False
    done: bool = False
    reusable: bool = True  # False when the parser's view of the connection cannot be trusted (HEAD)

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done = True


class UpstreamResponse:
    def __init__(self, pool: UpstreamPool, conn: _Connection, parser: httptools.HttpResponseParser, state: _Parsed):
        self._pool, self._conn, self._parser, self._state = pool, conn, parser, state
        self.status = state.status
        self.headers = state.headers

    async def body(self) -> AsyncIterator[bytes]:
        state = self._state
        while True:
            while state.body:
                yield state.body.pop(0)
            if state.done:
                break
            data = await self._conn.reader.read(READ_SIZE)
            if not data:
                raise UpstreamError("the upstream closed the connection mid-response", sent=True)
            self._parser.feed_data(data)
        if state.reusable and self._parser.should_keep_alive():
            self._pool.release(self._conn)
            self._conn = None  # type: ignore[assignment]

    def close(self) -> None:
        """Drop the connection unless the body was read to the end (then it is back in the pool)."""
        if self._conn is not None:
            self._conn.close()


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class UpstreamPool:
    def __init__(self, host: str, port: int, *, max_idle: int = 32, timeout: float = 300.0):
        self.host, self.port = host, port
        self.max_idle = max_idle
        self.timeout = timeout
        self._idle: list[_Connection] = []
        self._host_header = f"{host}:{port}".encode()

    async def _connect(self) -> _Connection:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), 5.0)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _Connection(reader, writer)

    def release(self, conn: _Connection) -> None:
        if len(self._idle) < self.max_idle and not conn.writer.is_closing():
            self._idle.append(conn)
        else:
            conn.close()

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()

    async def request(
        self,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterator[bytes],
        *,
        length: int | None = None,
    ) -> UpstreamResponse:
        """Send a request; a kept-alive connection that turns out dead (the server restarted, or closed
        it while idle) is retried once on a fresh one when the body can be sent again."""
        reused = bool(self._idle)
        conn = self._idle.pop() if self._idle else await self._connect_or_raise()
        try:
            return await self._exchange(conn, method, target, headers, body, length)
        except UpstreamError as exc:
            if not (reused and isinstance(body, bytes) and not exc.sent):
                raise
        return await self._exchange(await self._connect_or_raise(), method, target, headers, body, length)

    async def _connect_or_raise(self) -> _Connection:
        try:
            return await self._connect()
        except (TimeoutError, OSError) as exc:
            raise UpstreamError(f"cannot connect to {self.host}:{self.port}: {exc}", sent=False) from None

    async def _exchange(
        self,
        conn: _Connection,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterator[bytes],
        length: int | None,
    ) -> UpstreamResponse:
        head = [method.encode(), b" ", target, b" HTTP/1.1\r\nhost: ", self._host_header, b"\r\n"]
        for name, value in headers:
            head += [name, b": ", value, b"\r\n"]
        chunked = not isinstance(body, bytes) and length is None
        if isinstance(body, bytes):
            if body or method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
                head += [b"content-length: ", str(len(body)).encode(), b"\r\n"]
        elif length is not None:
            head += [b"content-length: ", str(length).encode(), b"\r\n"]
        else:
            head.append(b"transfer-encoding: chunked\r\n")
        head.append(b"\r\n")
        state = _Parsed()
        parser = httptools.HttpResponseParser(state)
        sent = False
        try:
            if isinstance(body, bytes):
                conn.writer.write(b"".join(head) + body)
            else:
                conn.writer.write(b"".join(head))
                sent = True
                async for chunk in body:
                    if chunked and chunk:
                        conn.writer.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                    elif chunk:
                        conn.writer.write(chunk)
                    await conn.writer.drain()
                if chunked:
                    conn.writer.write(b"0\r\n\r\n")
            await conn.writer.drain()
            while not state.headers_done:
                data = await asyncio.wait_for(conn.reader.read(READ_SIZE), self.timeout)
                if not data:
                    raise UpstreamError("the upstream closed the connection", sent=sent)
                sent = True  # it answered something: the request reached it
                parser.feed_data(data)
        except UpstreamError:
            conn.close()
            raise
        except (TimeoutError, OSError, httptools.HttpParserError) as exc:
            conn.close()
            raise UpstreamError(f"{type(exc).__name__}: {exc}", sent=sent) from None
        state.status = parser.get_status_code()
        if method == "HEAD" or state.status in (204, 304) or 100 <= state.status < 200:
            state.done = True  # no body follows, whatever the headers say
            state.reusable = False
        response = UpstreamResponse(self, conn, parser, state)
        return response
