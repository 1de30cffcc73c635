"""The probe engine of the periodic worker: every monitored app of every tenant, probed on time from one
thread running one asyncio loop.

Why this shape (1,000 apps at a 5 s interval from one process, probes starting within a second of their
time, under half a core: tests/bench/bench_monitoring.py): a heap keyed on each app's next due time, so the
loop wakes only when something is due; shared keep-alive clients (appliance.services.outbound.clients: one per
https name, no redirects) and a semaphore of ``monitoring.concurrency`` probes in flight; each app's first
probe placed at a fixed offset within its interval (from its id), so a thousand apps do not all fire in the
same instant. Results are counted by the state machine in the loop (pure, no I/O) and written about once a
second in one transaction from a worker thread (``asyncio.to_thread``), so the loop never waits for the
database. The app list is read again every ``refresh_every`` seconds; a changed app is rescheduled, a
deleted or disabled one dropped.

Heartbeat apps are checked at their deadline (last beat + interval + grace): a beat since the last look is a
successful check, silence past the deadline a failed one (and one more each interval it lasts).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import heapq
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from appliance.config import Settings
from appliance.db.base import utcnow
from appliance.db.session import Database
from appliance.models import AppKind, AppStatus
from appliance.services.monitoring import monitor as monitoring
from appliance.services.monitoring import probes
from appliance.services.monitoring import status as app_status
from appliance.services.monitoring.checks import CheckRow
from appliance.services.monitoring.status import Tracker, Transition
from appliance.services.outbound import guard as outbound
from appliance.workers import monitor_metrics

log = logging.getLogger(__name__)

#: The columns whose change reschedules an app.
_SPEC_KEYS = ("kind", "url", "interval", "timeout", "expected_status", "keyword", "grace")
#: A batch that cannot be written (the database is down) is kept up to this size, then the oldest dropped.
MAX_PENDING = 200_000


@dataclass
class Watched:
    """An app as the monitor holds it."""

    app_id: uuid.UUID
    tenant_id: uuid.UUID
    row: dict[str, Any]
    tracker: Tracker
    generation: int = 0
    seen_beat: dt.datetime | None = None
    """The last beat already counted as a check."""

    @property
    def key(self) -> tuple[Any, ...]:
        return tuple(self.row[k] for k in _SPEC_KEYS)

    @property
    def interval(self) -> float:
        return float(self.row["interval"])

    def spec(self) -> probes.ProbeSpec:
        return probes.ProbeSpec(
            self.row["url"], self.row["timeout"], self.row["expected_status"], self.row["keyword"]
        )


@dataclass
class _Pending:
    batch: monitoring.Batch = field(default_factory=monitoring.Batch)
    beats_due: set[uuid.UUID] = field(default_factory=set)


class Monitor:
    """Probe the monitored apps until :meth:`stop`; start it on the one periodic worker process."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], dt.datetime] = utcnow,
        refresh_every: float = 15.0,
        flush_every: float = 1.0,
        cleanup_every: float = 3600.0,
        on_probe: Callable[[uuid.UUID, float], None] | None = None,
    ):
        self.settings, self.database = settings, database
        self._transport, self._clock, self._wall = transport, clock, wall
        self._refresh_every, self._flush_every, self._cleanup_every = (
            refresh_every,
            flush_every,
            cleanup_every,
        )
        self._on_probe = on_probe
        """Called as each probe starts with the app's id and how late it started, in seconds."""
        self._policy = outbound.AddressPolicy.of(settings.outbound.allow_networks)
        self._apps: dict[uuid.UUID, Watched] = {}
        self._heap: list[tuple[float, int, uuid.UUID, int]] = []
        self._seq = 0
        self._pending = _Pending()
        self._inflight: set[asyncio.Task[None]] = set()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._started = threading.Event()

    # ------------------------------------------------------------------ the thread

    def start(self) -> Monitor:
        self._thread = threading.Thread(target=self._run, name="app-monitor", daemon=True)
        self._thread.start()
        self._started.wait(timeout=30)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop probing, write what was measured, and return (within ``timeout``); again, nothing."""
        if self._loop is not None and self._stopping is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between: stopped already
                self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            asyncio.run(self.run())
        except Exception:
            log.exception("the application monitor stopped")
        finally:
            self._started.set()

    async def run(self) -> None:
        """The monitor's main coroutine (the thread runs it; tests may await it)."""
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        self._wake = asyncio.Event()
        self._semaphore = asyncio.Semaphore(self.settings.monitoring.concurrency)
        self._clients = probes.make_clients(self.settings.monitoring.concurrency, self._transport)
        self._started.set()
        duties = [asyncio.create_task(self._schedule()), asyncio.create_task(self._background())]
        try:
            await self._stopping.wait()
        finally:
            for task in [*duties, *self._inflight]:
                task.cancel()
            await asyncio.gather(*duties, *self._inflight, return_exceptions=True)
            await self._flush()
            await self._clients.aclose()

    # ------------------------------------------------------------------ scheduling

    def _push(self, watched: Watched, due: float) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, watched.app_id, watched.generation))

    def _first_due(self, watched: Watched, now: float) -> float:
        if watched.row["kind"] == AppKind.HEARTBEAT:
            return now  # looks at its last beat at once, and waits for its deadline from there
        # A fixed offset within the interval, from the id: the apps spread evenly and stay spread.
        return now + (watched.app_id.int % 1000) / 1000 * watched.interval

    async def _schedule(self) -> None:
        while True:
            now = self._clock()
            while self._heap and self._heap[0][0] <= now:
                due, _, app_id, generation = heapq.heappop(self._heap)
                watched = self._apps.get(app_id)
                if watched is None or watched.generation != generation:
                    continue  # deleted, disabled or changed since it was scheduled
                if watched.row["kind"] == AppKind.HEARTBEAT:
                    self._pending.beats_due.add(app_id)  # looked at by the next flush, rescheduled there
                    continue
                following = due + watched.interval
                self._push(watched, following if following > now else now + watched.interval)
                task = asyncio.create_task(self._probe(watched, due))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
            delay = min(self._heap[0][0] - now, 1.0) if self._heap else 1.0
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(delay, 0.0))

    async def _probe(self, watched: Watched, due: float) -> None:
        async with self._semaphore:
            if self._apps.get(watched.app_id) is not watched:
                return
            lateness = self._clock() - due
            monitor_metrics.probed(lateness)
            if self._on_probe is not None:
                self._on_probe(watched.app_id, lateness)
            at = self._wall()
            try:
                result = await probes.probe(self._clients, watched.spec(), self._policy)
            except Exception as exc:  # a defect must cost one check, never the monitor
                log.exception("a probe failed unexpectedly", extra={"app_id": str(watched.app_id)})
                result = probes.ProbeResult(False, error=f"internal error: {type(exc).__name__}")
        self._count(
            watched,
            CheckRow(watched.app_id, at, result.ok, result.status_code, result.latency_ms, result.error),
        )

    def _count(self, watched: Watched, row: CheckRow) -> None:
        self._pending.batch.add(watched.tenant_id, row)
        monitor_metrics.checked(str(watched.row["kind"]), row.ok)
        old = watched.tracker.status
        new = app_status.observe(
            watched.tracker,
            ok=row.ok,
            at=row.checked_at,
            fail_threshold=watched.row["fail_threshold"],
            recover_threshold=watched.row["recover_threshold"],
        )
        if new is not None:
            since = watched.tracker.run_started or row.checked_at
            reason = row.error or "recovered"
            self._pending.batch.transitions.append(
                Transition(watched.tenant_id, watched.app_id, old, new, row.checked_at, since, reason)
            )

    # ------------------------------------------------------------------ heartbeats

    def _look_at_beat(self, watched: Watched, last_beat: dt.datetime | None) -> None:
        now_wall, now = self._wall(), self._clock()
        allowed = dt.timedelta(seconds=watched.row["interval"] + watched.row["grace"])
        if last_beat is not None and (watched.seen_beat is None or last_beat > watched.seen_beat):
            watched.seen_beat = last_beat
            self._count(watched, CheckRow(watched.app_id, last_beat, True))
            deadline = last_beat + allowed
        else:
            deadline = (watched.seen_beat or watched.row["created_at"]) + allowed
            if now_wall >= deadline:
                silent = f"no heartbeat within {allowed.total_seconds():g} s"
                self._count(watched, CheckRow(watched.app_id, now_wall, False, error=silent))
                deadline = now_wall + dt.timedelta(seconds=watched.interval)
        self._push(watched, now + max((deadline - now_wall).total_seconds(), 0.05))
        self._wake.set()

    async def _look_at_beats(self) -> None:
        due, self._pending.beats_due = self._pending.beats_due, set()
        wanted: dict[uuid.UUID, list[uuid.UUID]] = {}
        for app_id in due:
            if app_id in self._apps:
                wanted.setdefault(self._apps[app_id].tenant_id, []).append(app_id)
        if not wanted:
            return
        try:
            beats = await asyncio.to_thread(self._read_beats, wanted)
        except Exception:
            log.exception("the heartbeats could not be read; trying again")
            self._pending.beats_due |= due
            return
        for app_id in due:
            watched = self._apps.get(app_id)
            if watched is not None and app_id in beats:
                self._look_at_beat(watched, beats[app_id])

    def _read_beats(self, wanted: dict[uuid.UUID, list[uuid.UUID]]) -> dict[uuid.UUID, dt.datetime | None]:
        with self.database.session_scope(write=False) as session:
            return monitoring.read_beats(session, wanted)

    # ------------------------------------------------------------------ the database, off the loop

    async def _background(self) -> None:
        next_refresh = next_cleanup = self._clock()
        while True:
            now = self._clock()
            if now >= next_refresh:
                await self._refresh()
                next_refresh = now + self._refresh_every
            await self._look_at_beats()
            await self._flush()
            if now >= next_cleanup:
                await self._cleanup()
                next_cleanup = now + self._cleanup_every
            await asyncio.sleep(self._flush_every)

    async def _refresh(self) -> None:
        try:
            rows = await asyncio.to_thread(self._load)
        except Exception:
            log.exception("the monitored apps could not be read; keeping the last list")
            return
        now, seen = self._clock(), set()
        for row in rows:
            app_id = row["id"]
            seen.add(app_id)
            watched = self._apps.get(app_id)
            if watched is None:
                status = AppStatus(row["status"])
                watched = Watched(
                    app_id, row["tenant_id"], row, Tracker(status), seen_beat=row["last_beat_at"]
                )
                self._apps[app_id] = watched
                self._push(watched, self._first_due(watched, now))
                continue
            changed = watched.key != tuple(row[k] for k in _SPEC_KEYS)
            watched.row = row
            if changed:
                watched.generation += 1
                self._push(watched, self._first_due(watched, now))
        for app_id in set(self._apps) - seen:
            del self._apps[app_id]
        monitor_metrics.WATCHED.set(len(self._apps))
        self._wake.set()

    def _load(self) -> list[dict[str, Any]]:
        with self.database.session_scope(write=False) as session:
            return monitoring.load(session)

    async def _flush(self) -> None:
        batch = self._pending.batch
        if not len(batch):
            return
        self._pending.batch = monitoring.Batch()
        try:
            await asyncio.to_thread(self._store, batch)
        except Exception:
            log.exception("check results could not be written; keeping them for the next write")
            if len(batch) < MAX_PENDING:
                self._pending.batch = batch.then(self._pending.batch)

    def _store(self, batch: monitoring.Batch) -> None:
        with self.database.session_scope() as session:
            monitoring.store(session, batch)

    async def _cleanup(self) -> None:
        monitoring_settings = self.settings.monitoring
        try:
            await asyncio.to_thread(
                self._remove_old, monitoring_settings.raw_days, monitoring_settings.rollup_days
            )
        except Exception:
            log.exception("old check results could not be removed; trying again later")

    def _remove_old(self, raw_days: int, rollup_days: int) -> None:
        with self.database.session_scope() as session:
            monitoring.cleanup(session, self._wall(), raw_days=raw_days, rollup_days=rollup_days)
