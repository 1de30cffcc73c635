"""The projects service on both databases: the list names its tenant itself (it opts out of the ORM filter),
so these check that it never shows another tenant's rows, refuses an unscoped session, validates its sort,
limit and cursors; and that a write the database refuses after the checks passed (a race) gets the error
the checks would have given, with the session still usable."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from appliance.db import tenancy
from appliance.db.session import Database
from appliance.db.tenancy import TenantScopeError
from appliance.errors import Conflict, InvalidInput, NotFound
from appliance.models import Organization, Project, Tenant
from appliance.services.access.actors import Actor
from appliance.services.common import pagination
from appliance.services.tenancy import organizations, projects

T0 = dt.datetime(2026, 11, 22, 1, 27, 39, tzinfo=dt.UTC)


@dataclass(frozen=True)
class World:
    acme: uuid.UUID
    globex: uuid.UUID
    acme_org: uuid.UUID
    globex_org: uuid.UUID


@pytest.fixture
def world(db: Database) -> World:
    """Two tenants, one organization each, and five projects each with the same names."""
    ids: dict[str, uuid.UUID] = {}
    with db.session_scope() as session:
        for slug in ("acme", "globex"):
            tenant = Tenant(slug=slug, name=slug.title())
            session.add(tenant)
            session.flush()
            tenancy.set_tenant(session, tenant.id)
            org = Organization(tenant_id=tenant.id, name="Eng", slug="eng")
            session.add(org)
            session.flush()
            session.add_all(
                Project(
                    tenant_id=tenant.id,
                    organization_id=org.id,
                    name=f"p{i}",
                    created_at=T0 + dt.timedelta(seconds=i),
                )
                for i in range(5)
            )
            session.flush()
            ids[slug], ids[f"{slug}_org"] = tenant.id, org.id
    return World(ids["acme"], ids["globex"], ids["acme_org"], ids["globex_org"])


def actor(tenant_id: uuid.UUID) -> Actor:
    return Actor(user_id=None, tenant_id=tenant_id, permissions=frozenset({"projects:write"}))


def listed(db: Database, tenant_id: uuid.UUID, **kw: object) -> projects.ProjectPage:
    with db.session_scope(write=False) as session:
        tenancy.set_tenant(session, tenant_id)
        return projects.list_page(session, **kw)  # type: ignore[arg-type]


def test_the_list_shows_only_the_sessions_tenant(db: Database, world: World) -> None:
    for tenant, org in ((world.acme, world.acme_org), (world.globex, world.globex_org)):
        page = listed(db, tenant, limit=200)
        assert [item["name"] for item in page.items] == ["p4", "p3", "p2", "p1", "p0"]
        assert {item["organization_id"] for item in page.items} == {org}
        assert page.next_cursor is None
        # Filters and cursors never widen it either.
        other = world.globex_org if tenant == world.acme else world.acme_org
        assert listed(db, tenant, organization_id=other).items == []
        first = listed(db, tenant, limit=2, sort="name", search="P")
        rest = listed(db, tenant, limit=200, sort="name", cursor=first.next_cursor)
        assert [i["name"] for i in first.items + rest.items] == ["p0", "p1", "p2", "p3", "p4"]
        assert {i["organization_id"] for i in rest.items} == {org}


def test_the_list_items_hold_exactly_the_public_fields(db: Database, world: World) -> None:
    item = listed(db, world.acme, limit=1).items[0]
    assert tuple(item) == projects.LIST_FIELDS
    assert isinstance(item["id"], uuid.UUID)
    assert item["created_at"] == T0 + dt.timedelta(seconds=4)
    assert item["created_at"].tzinfo is not None


def test_the_list_refuses_a_session_without_a_tenant(db: Database, world: World) -> None:
    with db.session_scope(write=False) as session, pytest.raises(TenantScopeError):
        projects.list_page(session)


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        ({"sort": "size"}, "SORT_INVALID"),
        ({"limit": 0}, "VALIDATION_FAILED"),
        ({"limit": pagination.MAX_LIMIT + 1}, "VALIDATION_FAILED"),
        (
            {
                "cursor": pagination.Keyset("projects", dt.datetime, uuid.UUID).encode(
                    [T0, uuid.uuid4()], "created_at"
                )
            },
            "INVALID_CURSOR",
        ),
        (
            {
                "cursor": pagination.Keyset("projects", str, uuid.UUID).encode(
                    ["p1", uuid.uuid4()], "-created_at"
                )
            },
            "INVALID_CURSOR",
        ),
        (
            {"cursor": pagination.Keyset("projects", dt.datetime).encode([T0], "-created_at")},
            "INVALID_CURSOR",
        ),
    ],
)
def test_the_list_validates_what_it_is_given(
    db: Database, world: World, kw: dict[str, object], code: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        listed(db, world.acme, **kw)
    assert caught.value.code == code


def test_a_project_cannot_be_put_in_another_tenants_organization(db: Database, world: World) -> None:
    with db.session_scope() as session:
        tenancy.set_tenant(session, world.acme)
        with pytest.raises(NotFound) as caught:
            projects.create(session, actor(world.acme), organization_id=world.globex_org, name="x")
        assert caught.value.code == "ORGANIZATION_NOT_FOUND"
        assert caught.value.details == {"organization_id": str(world.globex_org)}


def test_a_write_refused_by_the_database_gets_the_checks_error(db: Database, world: World) -> None:
    with db.session_scope() as session:
        tenancy.set_tenant(session, world.acme)

        def check() -> None:
            raise Conflict("taken", code="PROJECT_EXISTS")

        duplicate = Project(tenant_id=world.acme, organization_id=world.acme_org, name="p1")
        with pytest.raises(Conflict), organizations.checked_write(session, check):
            session.add(duplicate)  # as if another request took the name after our check
        # Only the savepoint was rolled back: the transaction goes on (PostgreSQL would refuse otherwise).
        names = session.scalars(select(Project.name).where(Project.organization_id == world.acme_org))
        assert sorted(names) == ["p0", "p1", "p2", "p3", "p4"]


def test_create_and_move_refuse_a_taken_name(db: Database, world: World) -> None:
    with db.session_scope() as session:
        tenancy.set_tenant(session, world.acme)
        other = organizations.create(session, actor(world.acme), name="Ops", slug="ops")
        moved = projects.create(session, actor(world.acme), organization_id=other.id, name="p1")
        with pytest.raises(Conflict) as caught:
            projects.change(session, actor(world.acme), moved.id, organization_id=world.acme_org)
        assert caught.value.code == "PROJECT_EXISTS"
        renamed = projects.change(
            session, actor(world.acme), moved.id, name="p9", organization_id=world.acme_org
        )
        assert (renamed.name, renamed.organization_id) == ("p9", world.acme_org)
