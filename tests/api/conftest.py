"""The real API over a real socket, with a few probe routes to exercise the error layer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, Field

from appliance.api.app import create_app
from appliance.errors import Conflict
from tests.conftest import PgDatabase
from tests.identity import Identity, identity_api
from tests.support import LiveServer, make_settings

probe = APIRouter(prefix="/api/v1/_probe")


class Widget(BaseModel):
    name: str = Field(min_length=1, max_length=20)
    size: int = Field(ge=1)


@probe.post("/widgets", status_code=201)
def create_widget(body: Widget) -> Widget:
    return body


@probe.get("/crash")
def crash() -> None:
    raise RuntimeError("secret internals: password=hunter2 SELECT * FROM users")


@probe.get("/conflict")
def conflict() -> None:
    raise Conflict("slug 'acme' is taken", code="SLUG_TAKEN", details={"slug": "acme"})


def probe_app(app: FastAPI) -> FastAPI:
    app.include_router(probe)
    return app


@pytest.fixture
def api(tmp_path: Path) -> Iterator[httpx.Client]:
    """The API on embedded defaults (SQLite database and queue), probe routes included."""
    settings = make_settings(tmp_path, api={"max_body_bytes": 2048})
    with LiveServer(probe_app(create_app(settings))) as live, live.client() as client:
        yield client


@pytest.fixture
def identity(tmp_path: Path, database_url: str, request: pytest.FixtureRequest) -> Iterator[Identity]:
    """The API on SQLite, or on PostgreSQL connected as an app role without BYPASSRLS."""
    app_url = None
    if database_url.startswith("postgresql"):
        pg: PgDatabase = request.getfixturevalue("pg_database")
        role = pg.create_role(password="app-secret")
        app_url = pg.url_as(role, "app-secret")
    with identity_api(tmp_path, database_url, app_url) as ident:
        yield ident
