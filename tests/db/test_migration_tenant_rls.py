"""Migration 0009: idempotency keys written before it get the tenant their scope named (operators' none; a
purged tenant's are removed, nobody can send them again), on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import sqlalchemy as sa

from appliance.db import migrate
from appliance.db.engine import build_engine
from appliance.db.session import Database
from appliance.models import IdempotencyKey, Tenant
from tests.support import make_settings

#: The columns of tenants that revision 0008 needs.
TENANTS_0008 = sa.table(
    "tenants",
    *(
        sa.column(name, Tenant.__table__.c[name].type)
        for name in ("id", "slug", "name", "plan", "status", "created_at", "updated_at")
    ),
)
#: idempotency_keys as revision 0008 has it (no tenant_id yet).
KEYS_0008 = sa.table(
    "idempotency_keys",
    sa.column("id", sa.Uuid()),
    sa.column("principal", sa.String()),
    sa.column("key", sa.String()),
    sa.column("method", sa.String()),
    sa.column("path", sa.String()),
    sa.column("request_hash", sa.String()),
    sa.column("status", sa.Integer()),
    sa.column("response_body", sa.LargeBinary()),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


def test_keys_written_before_get_the_tenant_their_scope_named(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, migrated=False)
    migrate.upgrade(settings, "0008")
    acme, gone, user = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    engine = build_engine(settings)
    try:
        with engine.begin() as conn:
            now = dt.datetime.now(dt.UTC)
            conn.execute(
                sa.insert(TENANTS_0008).values(
                    id=acme,
                    slug="acme",
                    name="Acme",
                    plan="free",
                    status="active",
                    created_at=now,
                    updated_at=now,
                )
            )
            conn.execute(
                sa.insert(KEYS_0008),
                [
                    {
                        "id": uuid.uuid4(),
                        "principal": f"{scope}/user:{user}",
                        "key": "k",
                        "method": "POST",
                        "path": "/api/v1/apps",
                        "request_hash": "h",
                        "status": 201,
                        "response_body": scope.encode(),
                        "created_at": dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
                    }
                    for scope in (str(acme), "platform", str(gone))
                ],
            )
    finally:
        engine.dispose()
    migrate.upgrade(settings)
    owner = Database(settings)
    try:
        with owner.session_scope(write=False) as session:
            rows = session.execute(sa.select(IdempotencyKey.tenant_id, IdempotencyKey.response_body)).all()
    finally:
        owner.dispose()
    assert set(rows) == {(acme, str(acme).encode()), (None, b"platform")}
