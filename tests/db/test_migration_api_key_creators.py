"""The migration that names the member behind each API key made with another key (from the audit trail),
on SQLite and on PostgreSQL under row-level security (run here as the app role, which sees a tenant's rows
only inside that tenant: the migration walks the tenants one by one)."""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path
from types import ModuleType

import pytest

from appliance.db import tenancy
from appliance.db.engine import build_engine
from appliance.db.session import Database
from appliance.models import ApiKey, Tenant, User
from appliance.services.access.actors import Actor
from appliance.services.audit import log as audit
from tests.conftest import PgDatabase
from tests.support import make_settings

VERSIONS = Path(__file__).parents[2] / "appliance" / "db" / "migrations" / "versions"


def migration() -> ModuleType:
    (path,) = VERSIONS.glob("*_api_key_creators.py")
    spec = importlib.util.spec_from_file_location("api_key_creators", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def key(tenant_id: uuid.UUID, name: str, created_by: uuid.UUID | None) -> ApiKey:
    return ApiKey(
        tenant_id=tenant_id,
        name=name,
        prefix=f"fak_{uuid.uuid4().hex[:8]}",
        key_hash="0" * 64,
        scopes=["projects:read"],
        created_by=created_by,
    )


def test_keys_made_with_keys_get_the_member_behind_them(
    tmp_path: Path, database_url: str, request: pytest.FixtureRequest
) -> None:
    database: dict[str, str] = {"url": database_url}
    if database_url.startswith("postgresql"):
        pg: PgDatabase = request.getfixturevalue("pg_database")
        role = pg.create_role(password="app-secret")
        database = {"url": pg.url_as(role, "app-secret"), "migrations_url": database_url}
    settings = make_settings(tmp_path, None, database=database)
    db = Database(settings)
    try:
        with db.session_scope() as session:
            alice, bob = User(email="alice@acme.test"), User(email="bob@globex.test")
            acme, globex = Tenant(slug="acme", name="Acme"), Tenant(slug="globex", name="Globex")
            session.add_all([alice, bob, acme, globex])
            session.flush()
            people = {acme.id: alice.id, globex.id: bob.id}
        made: dict[str, ApiKey] = {}
        for tenant_id, person in people.items():
            with db.session_scope() as session:
                tenancy.set_tenant(session, tenant_id)
                root = key(tenant_id, "root", person)
                child, grandchild, orphan = (
                    key(tenant_id, n, None) for n in ("child", "grandchild", "orphan")
                )
                session.add_all([root, child, grandchild, orphan])
                session.flush()
                for maker, new in ((root, child), (child, grandchild)):
                    audit.record(
                        session,
                        action="api_key.create",
                        tenant_id=tenant_id,
                        actor=Actor(user_id=None, tenant_id=tenant_id, api_key_id=maker.id),
                        resource_type="api_key",
                        resource_id=new.id,
                    )
                made |= {f"{tenant_id}:{k.name}": k for k in (root, child, grandchild, orphan)}

        engine = build_engine(settings)
        try:
            with engine.begin() as connection:
                assert migration().backfill(connection) == 4
            with engine.begin() as connection:
                assert migration().backfill(connection) == 0  # nothing left to fill in
        finally:
            engine.dispose()

        for tenant_id, person in people.items():
            with db.session_scope(write=False) as session:
                tenancy.set_tenant(session, tenant_id)
                creators = {
                    name: session.get(ApiKey, made[f"{tenant_id}:{name}"].id).created_by  # type: ignore[union-attr]
                    for name in ("root", "child", "grandchild", "orphan")
                }
            assert creators == {"root": person, "child": person, "grandchild": person, "orphan": None}
    finally:
        db.dispose()
