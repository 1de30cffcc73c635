"""Liveness, readiness, the full health report, and the Prometheus scrape."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import orjson
from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from appliance import __version__
from appliance.api import metrics, routing
from appliance.api.auth import operator_credential
from appliance.api.client_address import client_address, in_networks, parse_networks
from appliance.api.context import AppContext
from appliance.api.deps import ContextDep
from appliance.api.errors import error_response
from appliance.api.schemas.errors import error_responses
from appliance.api.schemas.health import CheckResult, HealthReport, Liveness, Readiness
from appliance.db import migrate
from appliance.db.base import utcnow
from appliance.db.session import Database
from appliance.errors import Unavailable
from appliance.services.backups import jobs as backup_jobs
from appliance.services.jobs import heartbeats
from appliance.services.jobs import queries as job_queries
from appliance.workers import queue

router = routing.router(tags=["health"], responses=error_responses(500))

#: A check slower than this counts as down: a hung dependency must not hang the probe.
CHECK_TIMEOUT_S = 3.0
#: A worker silent for longer than this makes the appliance degraded.
WORKER_STALE_S = 300


async def _run_check(check: Callable[[], dict[str, object] | None]) -> CheckResult:
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(run_in_threadpool(check), CHECK_TIMEOUT_S)
    except TimeoutError:
        return CheckResult(status="down", error=f"no answer within {CHECK_TIMEOUT_S:g} s")
    except Unavailable as exc:
        return CheckResult(status="down", error=exc.message)
    latency = round((time.perf_counter() - started) * 1000, 2)
    return CheckResult(status="ok", latency_ms=latency, detail=detail or {})


async def _dependency_checks(ctx: ContextDep) -> dict[str, CheckResult]:
    def database() -> dict[str, object]:
        revision = ctx.database.ping()
        problem = migrate.schema_problem(revision)
        if problem:
            raise Unavailable(problem)
        return {"backend": ctx.database.backend, "schema": revision}

    def queue_check() -> dict[str, object]:
        queue.ping(ctx.queue)
        return {"backend": "redis" if queue.is_redis(ctx.queue) else "sqlite"}

    def disk() -> dict[str, object]:
        return disk_headroom(ctx.settings.data_dir, ctx.settings.api.min_free_disk_mb)

    db_result, queue_result, disk_result = await asyncio.gather(
        _run_check(database), _run_check(queue_check), _run_check(disk)
    )
    return {"database": db_result, "queue": queue_result, "disk": disk_result}


def disk_headroom(path: Path, min_free_mb: int) -> dict[str, object]:
    """The free space where the appliance writes (the data directory: the SQLite files, the logs, the
    queue); Unavailable below ``min_free_mb``, when writes would start failing."""
    while not path.exists() and path != path.parent:
        path = path.parent  # not made yet: the file system it will be made on
    usage = shutil.disk_usage(path)
    free_mb = usage.free // (1024 * 1024)
    if free_mb < min_free_mb:
        raise Unavailable(
            f"only {free_mb} MB free in the data directory (api.min_free_disk_mb = {min_free_mb})",
            details={"free_mb": free_mb},
        )
    return {"free_mb": free_mb}


def _json(status: int, payload: dict[str, object], retry: bool = False) -> Response:
    headers = {"Retry-After": "5"} if retry else None
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json", headers=headers)


@router.get(
    "/health/live",
    response_model=Liveness,
    responses={503: {"model": Liveness, "description": "The process is wedged: restart it."}},
    summary="The process answers and makes progress",
)
async def live(request: Request) -> Response:
    """200 whenever the process answers and its threads make progress; checks no dependency. 503 when
    requests have been waiting for ``api.stall_seconds`` with none finishing (a wedged process, which the
    supervisor's health check then restarts). An event loop that is stuck does not answer at all."""
    ctx: AppContext = request.app.state.ctx
    stalled = ctx.offload.stalled(ctx.settings.api.stall_seconds)
    if stalled is None:
        return Response(b'{"status":"ok"}', media_type="application/json")
    error = (
        f"no request has finished for {stalled:.0f} s while {ctx.offload.waiting} wait and "
        f"{ctx.offload.running} run"
    )
    return _json(503, {"status": "stalled", "error": error})


@router.get(
    "/health/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A dependency is down; the body names it."}},
    summary="The database and the queue answer",
)
async def ready(ctx: ContextDep) -> Response:
    """200 when the database and the queue answer; 503 naming each failed check otherwise."""
    checks = await _dependency_checks(ctx)
    ok = all(c.status == "ok" for c in checks.values())
    body = Readiness(status="ok" if ok else "down", checks=checks)
    return _json(200 if ok else 503, body.model_dump(exclude_none=True), retry=not ok)


@router.get(
    "/health",
    response_model=HealthReport,
    responses={503: {"model": HealthReport, "description": "The database is down."}},
    summary="Full health report",
)
async def health(ctx: ContextDep) -> Response:
    """Every check with its latency; ``degraded`` when the queue or the workers are unwell, ``down``
    when the database is."""
    checks = await _dependency_checks(ctx)
    if checks["database"].status == "ok":
        checks["worker"] = await run_in_threadpool(_worker_check, ctx)
    else:
        checks["worker"] = CheckResult(status="unknown", error="the database is down")
    if checks["database"].status != "ok":
        status = "down"
    elif all(c.status == "ok" for c in checks.values()):
        status = "ok"
    else:
        status = "degraded"
    report = HealthReport(status=status, version=__version__, checks=checks)
    return _json(
        503 if status == "down" else 200, report.model_dump(exclude_none=True), retry=status == "down"
    )


def _worker_check(ctx: ContextDep) -> CheckResult:
    try:
        with ctx.database.session_scope() as session:
            beat = heartbeats.latest(session)
    except Unavailable as exc:
        return CheckResult(status="down", error=exc.message)
    if beat is None:
        return CheckResult(status="unknown", error="no worker has reported yet")
    age = (utcnow() - beat.last_seen).total_seconds()
    detail: dict[str, object] = {"worker": beat.worker, "last_seen_seconds_ago": round(age, 1)}
    if age > WORKER_STALE_S:
        return CheckResult(status="down", error=f"no worker heartbeat for {int(age)} s", detail=detail)
    return CheckResult(status="ok", detail=detail)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, **error_responses(401, 403)},
    # Optional: the allowed networks need no credential; from anywhere else, an operator's token.
    openapi_extra={"security": [{}, {"HTTPBearer": []}]},
)
async def scrape(request: Request, ctx: ContextDep) -> Response:
    """Prometheus text format; readable from the networks in ``api.metrics_allow_from``, and from any
    address with a platform operator's access token (a read-only operator's too)."""
    api = ctx.settings.api
    peer = client_address(request.scope, parse_networks(api.trusted_proxies))
    allowed = in_networks(peer, parse_networks(api.metrics_allow_from))
    if not allowed and await operator_credential(request) is None:
        return error_response(
            403,
            "FORBIDDEN",
            f"Metrics are not readable from {peer} without an operator's access token.",
            {"client": peer},
        )
    collector = metrics.QueueDepthCollector(lambda: queue.depth(ctx.queue))
    by_state = metrics.JobStateCollector(lambda: _job_counts(ctx.database))
    backups = metrics.BackupCollector(lambda: _newest_backup(ctx.database))
    body = await run_in_threadpool(metrics.render, [collector, by_state, backups])
    return Response(body, media_type=metrics.CONTENT_TYPE)


def _newest_backup(database: Database) -> float | None:
    with database.session_scope(write=False) as session:
        newest = backup_jobs.newest_completed(session)
    return None if newest is None else newest.timestamp()


def _job_counts(database: Database) -> dict[str, int]:
    with database.session_scope(write=False) as session:
        return job_queries.counts(session)
