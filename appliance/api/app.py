"""create_app(settings): the FastAPI application, its middleware, error handlers and routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from huey import Huey

from appliance import __version__
from appliance.api import errors, metrics
from appliance.api.context import AppContext
from appliance.api.middleware import RequestContextMiddleware
from appliance.api.routes import health, root
from appliance.api.schemas.errors import error_responses
from appliance.config import Settings
from appliance.db.session import Database
from appliance.logs import install_request_id_factory
from appliance.workers import queue


def create_app(
    settings: Settings, *, database: Database | None = None, queue_instance: Huey | None = None
) -> FastAPI:
    """The API for ``settings``; the database and queue are built from them unless given."""
    install_request_id_factory()
    db = database or Database(settings)
    q = queue_instance or queue.configure(settings)
    metrics.instrument_pool(db.engine, settings.database.pool_size)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        db.dispose()
        metrics.mark_process_dead()

    app = FastAPI(
        title="Forge Appliance API",
        version=__version__,
        summary="Identity, tenancy and the platform's workloads for enterprise users and their applications.",
        lifespan=lifespan,
        responses=error_responses(500),
    )
    app.state.ctx = AppContext(settings=settings, database=db, queue=q)
    errors.install(app)
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.api.max_body_bytes,
        access_log=settings.logging.access_log,
    )
    app.include_router(health.router)
    app.include_router(root.router, prefix="/api/v1")
    return app
