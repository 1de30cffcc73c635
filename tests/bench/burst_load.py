"""Open-loop HTTP load for the burst benchmark: requests are sent at their scheduled times whether or not
earlier ones were answered (a closed-loop tool such as wrk slows down with the server and so never offers
more than the server takes). Raw HTTP/1.1 over asyncio streams, a connection per outstanding request (kept
alive and reused once answered), so the generator costs little CPU next to the server it measures."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: Idle connections older than this are closed rather than reused: the server closes them after its
#: keep-alive timeout (uvicorn: 5 s), and a request sent as it does so is lost in flight.
IDLE_S = 2.0


@dataclass(frozen=True)
class Outcome:
    sent: float
    """Seconds from the start of the run when the request was sent."""
    status: int
    """The HTTP status; 0 when the connection failed or closed without an answer; -1 when no answer came
    within the timeout."""
    latency: float
    retry_after: str | None = None
    error: str | None = None
    """Why there was no answer (the exception's name)."""


@dataclass
class Load:
    host: str
    port: int
    request: Callable[[int], bytes]
    """The bytes of request number n (a whole HTTP/1.1 request)."""
    timeout: float = 60.0
    max_connections: int = 4000
    outcomes: list[Outcome] = field(default_factory=list)
    skipped: int = 0
    """Requests not sent because max_connections were all busy (reported, never silently dropped)."""
    _idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = field(default_factory=list)
    """Kept-alive connections and when each became idle (the newest last)."""
    _open: int = 0

    async def run(self, rate: float, duration: float) -> None:
        """Send ``rate`` requests per second for ``duration`` seconds, then wait for every answer."""
        started = time.perf_counter()
        pending: set[asyncio.Task[None]] = set()
        total = int(rate * duration)
        for n in range(total):
            due = started + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if self._open >= self.max_connections and not self._idle:
                self.skipped += 1
                continue
            task = asyncio.create_task(self._one(n, started))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.wait(pending)
        for _, writer, _ in self._idle:
            writer.close()
        self._idle.clear()

    async def closed(self, concurrency: int, duration: float) -> None:
        """``concurrency`` clients, each sending its next request when the last is answered, for
        ``duration`` seconds (what the server can take: its capacity)."""
        started = time.perf_counter()
        counter = iter(range(10**9))

        async def client() -> None:
            while time.perf_counter() - started < duration:
                await self._one(next(counter), started)

        await asyncio.gather(*(client() for _ in range(concurrency)))
        for _, writer, _ in self._idle:
            writer.close()
        self._idle.clear()

    async def _one(self, n: int, started: float) -> None:
        sent = time.perf_counter()
        error = None
        try:
            status, retry_after, keep = await asyncio.wait_for(self._exchange(self.request(n)), self.timeout)
        except TimeoutError:
            status, retry_after, keep = -1, None, None
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            status, retry_after, keep, error = 0, None, None, type(exc).__name__
        done = time.perf_counter()
        if keep is not None:
            self._idle.append((*keep, done))
        self.outcomes.append(Outcome(sent - started, status, done - sent, retry_after, error))

    async def _exchange(
        self, payload: bytes
    ) -> tuple[int, str | None, tuple[asyncio.StreamReader, asyncio.StreamWriter] | None]:
        while self._idle and time.perf_counter() - self._idle[0][2] > IDLE_S:
            _, stale, _ = self._idle.pop(0)  # the server may be closing it (keep-alive timeout): a race
            stale.close()
            self._open -= 1
        if self._idle:
            reader, writer, _ = self._idle.pop()
        else:
            self._open += 1
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                self._open -= 1
                raise
        try:
            writer.write(payload)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            await reader.readexactly(int(headers.get("content-length", "0")))
        except BaseException:
            writer.close()
            self._open -= 1
            raise
        if headers.get("connection", "").lower() == "close":
            writer.close()
            self._open -= 1
            return status, headers.get("retry-after"), None
        return status, headers.get("retry-after"), (reader, writer)


def post(path: str, host: str, port: int, headers: dict[str, str], body: bytes) -> bytes:
    """The bytes of one POST with a JSON body."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
