"""create_app(settings): the FastAPI application, its middleware, error handlers and routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from huey import Huey

from appliance import __version__
from appliance.api import docs as api_docs
from appliance.api import errors, idempotency, metrics, openapi_errors
from appliance.api.context import build_context
from appliance.api.middleware import AccessWriter, Drain, RequestContextMiddleware
from appliance.api.routes import (
    api_keys,
    apps,
    audit_logs,
    auth,
    backups,
    doctor,
    health,
    heartbeats,
    invitations,
    members,
    operators,
    organizations,
    platform_apps,
    platform_webhooks,
    projects,
    rate_limits,
    roles,
    root,
    tenant_contents,
    tenant_moves,
    tenants,
    webhook_messages,
    webhooks,
)
from appliance.api.routes import (
    jobs as job_routes,
)
from appliance.api.schemas.errors import error_responses
from appliance.config import Settings
from appliance.db.session import Database
from appliance.keys import signing_key
from appliance.logs import AccessLog, install_request_id_factory, text_access_log
from appliance.services.identity import passwords
from appliance.services.jobs import durable as jobs
from appliance.workers import jobs as job_runner
from appliance.workers import queue


def create_app(
    settings: Settings, *, database: Database | None = None, queue_instance: Huey | None = None
) -> FastAPI:
    """The API for ``settings``; the database and queue are built from them unless given."""
    install_request_id_factory()
    passwords.configure(settings.security.password_hash_memory_kib, settings.security.password_hash_passes)
    db = database or Database(settings)
    q = queue_instance or queue.configure(settings)
    # Jobs written by requests go to the queue when their transaction commits.
    jobs.install_pusher(job_runner.push)
    metrics.instrument_pool(db.engine, settings.database.pool_size)
    ctx = build_context(settings, db, q, signing_key(settings))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if ctx.async_database is not None:
            await ctx.async_database.open()
        yield
        if ctx.async_database is not None:
            await ctx.async_database.close()
        if ctx.async_limiter is not None:
            await ctx.async_limiter.close()
        ctx.refresher.stop()
        db.dispose()
        metrics.mark_process_dead()

    app = FastAPI(
        title="Forge Appliance API",
        version=__version__,
        summary="Identity, tenancy and the platform's workloads for enterprise users and their applications.",
        lifespan=lifespan,
        responses=error_responses(500),
        dependencies=[Depends(idempotency.guard)],
        docs_url=None,  # served from the package by api_docs, not from a CDN
        redoc_url=None,
    )
    app.state.ctx = ctx
    errors.install(app)
    app.add_exception_handler(idempotency.IdempotentReplay, idempotency.replay)
    access: AccessWriter | None = None
    if settings.logging.access_log:
        access = AccessLog("api") if settings.logging.json_format else text_access_log
    docs = frozenset(
        p for p in (app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url) if p
    )
    app.state.drain = Drain()
    app.add_middleware(
        RequestContextMiddleware,
        drain=app.state.drain,
        max_body_bytes=settings.api.max_body_bytes,
        access_log=access,
        fixed_paths=docs,
        max_in_flight=settings.api.max_in_flight,
        overloaded=ctx.offload.overloaded,
    )
    # The probes are hit by every load balancer and orchestrator: they sit on the app's own route list,
    # because this FastAPI resolves an included router lazily on each request (about 8 us more).
    app.router.routes.extend(health.router.routes)
    app.include_router(root.router, prefix="/api/v1")
    # Routers are matched in this order (FastAPI tries each in turn): the busiest first.
    for resource in (
        projects,
        heartbeats,  # called by every heartbeat app, often
        auth,
        organizations,
        members,
        invitations,
        roles,
        api_keys,
        audit_logs,
        tenants,
        tenant_contents,
        operators,
        rate_limits,
        webhooks,
        webhook_messages,
        job_routes,
        apps,
    ):
        app.include_router(resource.router, prefix="/api/v1")
    app.include_router(job_routes.platform, prefix="/api/v1")
    app.include_router(platform_apps.router, prefix="/api/v1")
    app.include_router(platform_webhooks.router, prefix="/api/v1")
    app.include_router(tenant_moves.exports, prefix="/api/v1")
    app.include_router(tenant_moves.imports, prefix="/api/v1")
    app.include_router(backups.router, prefix="/api/v1")
    app.include_router(doctor.router, prefix="/api/v1")
    openapi_errors.install(app)
    api_docs.install(app)
    return app
