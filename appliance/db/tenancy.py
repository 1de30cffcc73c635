"""Tenant scoping: the tenant set for each transaction, the narrow lookups and platform scope, and the ORM
filter that applies the tenant rule on every database.

:func:`set_tenant` scopes a session or a connection to one tenant; on PostgreSQL it sets the setting that
row-level security reads (appliance.db.rls holds the policies and the lists of tables). The ORM filter
(:func:`install_orm_filter`) adds ``tenant_id = :tenant`` to every ORM query on the tenant-owned tables, on
SQLite (where it is the only guard) and on PostgreSQL (defence in depth), and raises
:class:`TenantScopeError` when such a query runs with no tenant set, so that a forgotten scope fails loudly
instead of showing another tenant's rows or none. A SELECT that names its tenant itself (the audit log's
platform chain) may opt out of the ORM filter with the :data:`EXPLICIT_TENANT` execution option; row-level
security still applies to it.

This module sits in the db layer and never imports appliance.models: it knows tables by name.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Table, event, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapper, ORMExecuteState, Session, SessionTransaction, with_loader_criteria
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.util import find_tables

from appliance.db.base import Base
from appliance.db.rls import LOOKUPS, TENANT_OWNED_TABLES, TENANT_SETTING, USER_SETTING

#: Execution option of an ORM SELECT that filters by tenant itself (``tenant_id = :id`` or ``IS NULL``):
#: ``select(...).execution_options(explicit_tenant=True)`` is not given the session's tenant criteria nor
#: refused for want of a tenant. Reads only; PostgreSQL's row-level security still applies.
EXPLICIT_TENANT = "explicit_tenant"


class TenantScopeError(RuntimeError):
    """A query on a tenant-owned table ran with no tenant set (nor a lookup, nor platform scope)."""


# --------------------------------------------------------------------------- the per-transaction scope


def set_tenant(target: Session | Connection, tenant_id: uuid.UUID) -> None:
    """Scope ``target`` to one tenant.

    A Session keeps the tenant in ``session.info["tenant_id"]`` for the ORM filter and sets
    ``app.tenant_id`` on PostgreSQL at the start of each of its transactions (and now, if one is open).
    A Connection gets ``app.tenant_id`` for its current transaction only; on SQLite a bare Connection has
    no guard at all (the ORM filter is SQLite's isolation), so use a Session there. Setting a tenant ends
    platform scope (`set_platform`): from then on the session acts inside that tenant only.
    """
    if isinstance(target, Session):
        target.info.pop("platform", None)
    _scope(target, TENANT_SETTING, "tenant_id", tenant_id)


@contextmanager
def inside(session: Session, tenant_id: uuid.UUID | None) -> Iterator[Session]:
    """Act inside one tenant for a block (an operator's work on one tenant), then return to the scope the
    session had before: its previous tenant, or platform scope.

    ``None`` acts for no tenant: on the platform's own rows of the tables that have them (a platform job,
    an operator's idempotency key: :data:`appliance.db.rls.PLATFORM_ROWS_TABLES`), which no tenant's
    transaction sees."""
    previous_tenant = session.info.get("tenant_id")
    was_platform = session.info.get("platform", False)
    if tenant_id is not None:
        set_tenant(session, tenant_id)
    else:
        session.info.pop("tenant_id", None)
        if session.in_transaction():
            _set_config(session.connection(), TENANT_SETTING, "")
    try:
        yield session
    finally:
        if previous_tenant is not None:
            set_tenant(session, previous_tenant)
        else:
            session.info.pop("tenant_id", None)
            if session.in_transaction():
                _set_config(session.connection(), TENANT_SETTING, "")
        if was_platform:
            session.info["platform"] = True


def set_user(target: Session | Connection, user_id: uuid.UUID) -> None:
    """Allow reading the user's own memberships across tenants (sign-in, tenant switcher), and acting on
    the user's own sessions (refresh tokens) in every tenant."""
    _scope(target, USER_SETTING, "user_id", user_id)


@contextmanager
def as_user(session: Session, user_id: uuid.UUID) -> Iterator[Session]:
    """`set_user` for a block only: the session's work on one user's own sessions (refresh tokens), then
    back to what the session could see before."""
    with _for_block(session, USER_SETTING, "user_id", user_id):
        yield session


def set_connection_tenant(connection: Connection, tenant_id: uuid.UUID | None) -> None:
    """Scope a Connection's current transaction to one tenant, or (None) to no tenant: the platform's own
    rows (:data:`appliance.db.rls.PLATFORM_ROWS_TABLES`). PostgreSQL only; on SQLite it does nothing."""
    _set_config(connection, TENANT_SETTING, "" if tenant_id is None else tenant_id)


@contextmanager
def refresh_token_lookup(session: Session, token_hash: str) -> Iterator[Session]:
    """Allow reading, for a block, the one refresh token whose hash is ``token_hash`` before its user and
    tenant are known (token refresh)."""
    with _for_block(session, "app.refresh_token_hash", "refresh_token_hash", token_hash):
        yield session


@contextmanager
def _for_block(session: Session, setting: str, info_key: str, value: object) -> Iterator[None]:
    previous = session.info.get(info_key)
    _scope(session, setting, info_key, value)
    try:
        yield
    finally:
        if previous is not None:
            _scope(session, setting, info_key, previous)
        else:
            session.info.pop(info_key, None)
            if session.in_transaction():
                _set_config(session.connection(), setting, "")


def set_api_key_prefix(target: Session | Connection, prefix: str) -> None:
    """Allow reading the API key with this prefix before its tenant is known (key authentication)."""
    _scope(target, "app.api_key_prefix", "api_key_prefix", prefix)


def set_invitee(target: Session | Connection, email: str) -> None:
    """Allow reading the invitations addressed to ``email`` (lower-cased) across tenants: for the person it
    belongs to, signed in or holding one of those invitations' tokens."""
    _scope(target, "app.invitee_email", "invitee_email", email)


def set_platform(session: Session) -> None:
    """Let the ORM run unfiltered queries on tenant-owned tables (operator work, migrations of data).

    This lifts the ORM filter only; on PostgreSQL the app role still sees no tenant's rows without a tenant
    set: cross-tenant platform work needs a connection as a role with BYPASSRLS."""
    session.info["platform"] = True


def current_tenant(session: Session) -> uuid.UUID | None:
    tenant: uuid.UUID | None = session.info.get("tenant_id")
    return tenant


_SETTINGS_BY_INFO_KEY = {"tenant_id": TENANT_SETTING} | {lu.info_key: lu.setting for lu in LOOKUPS}


def _scope(target: Session | Connection, setting: str, info_key: str, value: object) -> None:
    if isinstance(target, Connection):
        _set_config(target, setting, value)
        return
    target.info[info_key] = value
    if target.in_transaction():
        _set_config(target.connection(), setting, value)
    # Otherwise the next transaction's after_begin hook sets it.


def _set_config(connection: Connection, setting: str, value: object) -> None:
    if connection.dialect.name == "postgresql":
        # is_local = true: the setting ends with the transaction, so a pooled connection never carries a
        # tenant into the next request.
        connection.execute(
            text("SELECT set_config(:name, :value, true)"), {"name": setting, "value": str(value)}
        )


# --------------------------------------------------------------------------- the ORM filter


def install_orm_filter(target: Any = Session) -> None:
    """Register the tenant hooks on ``target`` (every Session by default); calling it again does nothing."""
    for name, hook in (
        ("after_begin", _after_begin),
        ("do_orm_execute", _filter_query),
        ("before_flush", _check_flush),
    ):
        if not event.contains(target, name, hook):
            event.listen(target, name, hook)


def _after_begin(session: Session, transaction: SessionTransaction, connection: Connection) -> None:
    if transaction.nested:
        return  # a savepoint: the transaction's settings (set_config is_local) still hold inside it
    for info_key, setting in _SETTINGS_BY_INFO_KEY.items():
        value = session.info.get(info_key)
        if value is not None:
            _set_config(connection, setting, value)


def _tenant_mappers() -> dict[str, Mapper[Any]]:
    mappers: dict[str, Mapper[Any]] = {}
    for mapper in Base.registry.mappers:
        table = mapper.local_table
        if isinstance(table, Table) and table.name in TENANT_OWNED_TABLES:
            mappers[table.name] = mapper
    return mappers


def _tenant_tables(state: ORMExecuteState) -> set[str]:
    """The tenant-owned tables a statement reads or writes, however they are named in it (entity, alias,
    select_from, join): ``ORMExecuteState.all_mappers`` misses ``select(func.count()).select_from(Entity)``.

    A Core statement on a tenant-owned Table (not through its mapped class) cannot carry the ORM filter, so
    it is refused outright."""
    statement = state.statement
    assert isinstance(statement, ClauseElement)
    names = {
        table.name
        for table in find_tables(statement, include_aliases=True, include_joins=True, include_crud=True)
        if isinstance(table, Table) and table.name in TENANT_OWNED_TABLES
    }
    if names and not state.is_orm_statement:
        raise TenantScopeError(
            f"a Core query on the tenant-owned tables {sorted(names)} went through a Session: "
            "select the mapped classes instead, so that the tenant filter applies"
        )
    return names


def _filter_query(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if state.is_column_load:
        return  # refreshing attributes of a row that was loaded under the filter
    # A relationship load names its own table, so it gets its own criteria below (criteria are added for the
    # tables a statement names, and would not propagate from a parent that did not name this one).
    info = state.session.info
    if info.get("platform"):
        return
    touched = _tenant_tables(state)
    if not touched or (state.is_select and state.execution_options.get(EXPLICIT_TENANT)):
        return
    mappers = _tenant_mappers()
    tenant = info.get("tenant_id")
    if tenant is not None:
        # Criteria for the tables the statement names only: each one costs the statement cache a key.
        state.statement = state.statement.options(
            *(
                with_loader_criteria(
                    mappers[table].class_, lambda cls: cls.tenant_id == tenant, include_aliases=True
                )
                for table in sorted(touched)
            )
        )
        return
    criteria = []
    for table in sorted(touched):
        lookup = next((lu for lu in LOOKUPS if lu.table == table and info.get(lu.info_key) is not None), None)
        if lookup is None or not state.is_select:
            raise TenantScopeError(
                f"a query on the tenant-owned table {table!r} ran with no tenant set: call "
                "appliance.db.tenancy.set_tenant(session, tenant_id) first "
                "(or set_platform for operator work)"
            )
        entity = mappers[table].class_
        criteria.append(
            with_loader_criteria(
                entity, getattr(entity, lookup.column) == info[lookup.info_key], include_aliases=True
            )
        )
    state.statement = state.statement.options(*criteria)


def _check_flush(session: Session, _context: Any, _instances: Any) -> None:
    """The ORM's WITH CHECK: a tenant-owned row is written for the session's tenant only."""
    if session.info.get("platform"):
        return
    tenant = session.info.get("tenant_id")
    for obj in (*session.new, *session.dirty, *session.deleted):
        table = inspect(obj).mapper.local_table.name
        if table not in TENANT_OWNED_TABLES:
            continue
        if tenant is None:
            raise TenantScopeError(f"writing to the tenant-owned table {table!r} with no tenant set")
        if obj.tenant_id != tenant:
            raise TenantScopeError(f"writing a row of another tenant to {table!r}")
