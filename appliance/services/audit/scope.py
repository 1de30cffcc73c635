"""Which audit chain a session may read or write, and a statement restricted to one chain: the rule that
recording, reading and verifying share."""

from __future__ import annotations

import uuid
from typing import TypeVarTuple

from sqlalchemy import ColumnElement, Select
from sqlalchemy.orm import Session

from appliance.db import tenancy
from appliance.db.tenancy import TenantScopeError
from appliance.models import AuditLog

_Row = TypeVarTuple("_Row")


def in_chain(statement: Select[*_Row], tenant_id: uuid.UUID | None) -> Select[*_Row]:
    """Restrict ``statement`` to one chain. It names its tenant itself (the platform chain is tenant_id
    NULL, which the session's tenant filter would hide), so the ORM filter is told not to add its own;
    check_scope has made sure the session may read this chain."""
    chain: ColumnElement[bool] = (
        AuditLog.tenant_id.is_(None) if tenant_id is None else AuditLog.tenant_id == tenant_id
    )
    return statement.where(chain).execution_options(**{tenancy.EXPLICIT_TENANT: True})


def check_scope(session: Session, tenant_id: uuid.UUID | None, *, writing: bool) -> None:
    """A session scoped to a tenant reads and writes that tenant's chain, and may append to the platform's
    (sign-ins, operator actions); a session with no tenant reads and writes the platform chain only;
    platform scope (tenancy.set_platform) may do anything the database lets it."""
    if session.info.get("platform"):
        return
    current = tenancy.current_tenant(session)
    if tenant_id is None:
        if writing or current is None:
            return
        raise TenantScopeError(
            f"a session scoped to tenant {current} read the platform audit chain: "
            "read it with no tenant set (or in platform scope)"
        )
    if current != tenant_id:
        scoped = f"scoped to tenant {current}" if current else "with no tenant set"
        verb = "wrote a record to" if writing else "read"
        raise TenantScopeError(
            f"a session {scoped} {verb} the audit chain of tenant {tenant_id}: "
            f"call appliance.db.tenancy.set_tenant(session, tenant_id) first"
        )
