"""How an imported tenant's rows fit the appliance they go into: whose account each member is, and, for a
copy beside the original, the rows' new ids and the audit chain linked again.

Two ways in:

- **As it was** (the tenant's id is free here): every row keeps its values, so the audit chain verifies
  unchanged. Only references to people change: a member whose account is here under another id (same
  e-mail) is that account, and a reference to someone who is no member and has no account here (the
  creator of a project who left) is cleared, as removing that account would have done.
- **A copy** (``--as NEW_SLUG`` while the original is still here): the tenant and every row it owns get new
  ids. A new id is derived from the old one (UUID 5 in a namespace of the copy's own, random, tenant id), so
  a reference is rewritten by its column's rule without a table of every id in memory: :func:`rule` says,
  for each UUID column, whether it names the tenant, one of its rows, a person, or something that is not
  moved. The audit records are linked into a new chain under the new tenant id (new hashes, in seq order),
  after each was checked against the chain it came from, so a copy never launders a broken chain. What
  authenticates to one tenant is not copied: API keys (a key is found by its prefix, before its tenant is
  known), open invitations (found by their token), and heartbeat URLs are made anew (their token names the
  tenant).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from appliance.db.base import Base
from appliance.errors import InvalidInput
from appliance.models import GENESIS_HASH, InvitationState, TenantStatus
from appliance.services.audit.format import compute_hash

#: What a UUID column holds: the tenant's id, the id of one of the tenant's rows, a person (a user id), a
#: person named by an audit record (kept even when no account has it: the record outlives the account), or
#: something not moved (kept as it is).
Rule = Literal["tenant", "row", "user", "actor", "keep"]

#: The UUID columns that are no foreign key, and what they hold.
_NOT_FOREIGN: dict[tuple[str, str], Rule] = {
    ("audit_logs", "actor_user_id"): "actor",
    ("audit_logs", "actor_api_key_id"): "row",  # the tenant's key (not copied: the record names none then)
    ("webhook_deliveries", "job_id"): "keep",  # the jobs ledger is not moved
}
_ACCOUNT_TABLES = frozenset({"users", "mfa_factors", "recovery_codes"})


@cache
def rules(table_name: str) -> tuple[tuple[str, Rule], ...]:
    """The rule of each UUID column of a moved table. A column no rule covers is a RuntimeError: a new
    column must be given one here (tests/services/backups/test_tenant_archive.py walks every table)."""
    table = Base.metadata.tables[table_name]
    found: list[tuple[str, Rule]] = []
    for column in table.columns:
        if column.type.__class__.__name__ != "Uuid":
            continue
        targets = {fk.column.table.name for fk in column.foreign_keys}
        rule: Rule
        if table_name in _ACCOUNT_TABLES:
            rule = "keep" if column.name == "id" else "user"  # accounts keep their ids everywhere
        elif column.name == "tenant_id" or table_name == "tenants":
            rule = "tenant"
        elif column.primary_key or (targets and targets - {"users"}):
            rule = "row"
        elif targets == {"users"}:
            rule = "user"
        elif (table_name, column.name) in _NOT_FOREIGN:
            rule = _NOT_FOREIGN[(table_name, column.name)]
        else:
            raise RuntimeError(f"{table_name}.{column.name}: no rule says what this UUID names")
        found.append((column.name, rule))
    return tuple(found)


#: The tables whose rows go in as they are, unless the tenant is a copy.
_AS_IS = frozenset(
    name
    for name, table in Base.metadata.tables.items()
    if name not in ("tenants", "audit_logs", "apps", "api_keys", "invitations", *_ACCOUNT_TABLES)
    and not any(fk.column.table.name == "users" for fk in table.foreign_keys)
)


@dataclass
class Plan:
    """Where the tenant goes: its id and slug here, and whose account each of its members is."""

    source_id: uuid.UUID
    tenant_id: uuid.UUID
    slug: str
    copy: bool
    accounts: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)
    """A member's account in the archive -> the account here (the same id, or the one with its e-mail)."""
    new_accounts: set[uuid.UUID] = field(default_factory=set)
    """The members' accounts that are not here yet: inserted (their factors and codes with them)."""

    @property
    def matched_by_email(self) -> int:
        return sum(1 for old, new in self.accounts.items() if old != new)


def plan_accounts(session: Session, plan: Plan, users: Iterable[dict[str, Any]]) -> None:
    """Fill ``plan``'s accounts from the archive's users: an account here with the same id is kept as it
    is; one with the same e-mail under another id becomes the member's account; otherwise it is new."""
    table = Base.metadata.tables["users"]
    for user in users:
        same_id = session.execute(select(table.c.id).where(table.c.id == user["id"])).first()
        if same_id is not None:
            plan.accounts[user["id"]] = user["id"]
            continue
        same_email = session.execute(select(table.c.id).where(table.c.email == user["email"])).first()
        if same_email is not None:
            plan.accounts[user["id"]] = same_email.id
        else:
            plan.accounts[user["id"]] = user["id"]
            plan.new_accounts.add(user["id"])


class Rewriter:
    """The import's transform (appliance.services.backups.tenant_rows.Transform): each row as it goes in,
    or None for a row left out. Counts what it left out, by table."""

    def __init__(self, session: Session, plan: Plan, heartbeat_token: Callable[[uuid.UUID], str]):
        self.session = session
        self.plan = plan
        self.heartbeat_token = heartbeat_token
        self.left_out: dict[str, int] = {}
        self._people: dict[uuid.UUID, uuid.UUID | None] = dict(plan.accounts)
        self._chain = (0, GENESIS_HASH)  # the source chain's last record, as read
        self._copy_chain = GENESIS_HASH

    def __call__(self, table: str, row: dict[str, Any]) -> dict[str, Any] | None:
        if not self.plan.copy and table in _AS_IS:
            return row  # nothing in it names a person, nor changes: the hot path of a big table
        if self._leave_out(table, row):
            self.left_out[table] = self.left_out.get(table, 0) + 1
            return None
        if table == "audit_logs":
            return self._audit(row)
        self._apply_rules(table, row)
        if table == "tenants":
            row["slug"] = self.plan.slug
            if row["status"] == TenantStatus.DELETED:
                # Importing it is asking for it back: it would otherwise be purged within a day.
                row["status"], row["deleted_at"], row["purge_after"] = TenantStatus.ACTIVE, None, None
        elif table == "users":
            # An operator of the source appliance is no operator of this one.
            row["is_operator"], row["operator_read_only"], row["operator_removed_at"] = False, False, None
        elif table == "apps" and self.plan.copy and row.get("heartbeat_token") is not None:
            row["heartbeat_token"] = self.heartbeat_token(self.plan.tenant_id)
        return row

    def _leave_out(self, table: str, row: dict[str, Any]) -> bool:
        if table == "users":
            return row["id"] not in self.plan.new_accounts
        if table in ("mfa_factors", "recovery_codes"):
            return row["user_id"] not in self.plan.new_accounts
        if self.plan.copy and table == "api_keys":
            return True
        return self.plan.copy and table == "invitations" and row["state"] == InvitationState.PENDING.value

    def _apply_rules(self, table: str, row: dict[str, Any]) -> None:
        for name, rule in rules(table):
            value = row.get(name)
            if value is not None:
                row[name] = self._rewrite(rule, value)

    def _rewrite(self, rule: Rule, value: uuid.UUID) -> uuid.UUID | None:
        if rule == "user":
            return self._person(value)
        if rule == "actor":
            return self.plan.accounts.get(value, value)
        if not self.plan.copy or rule == "keep":
            return value
        if rule == "tenant":
            return self.plan.tenant_id if value == self.plan.source_id else value
        return uuid.uuid5(self.plan.tenant_id, value.hex)

    def _person(self, user_id: uuid.UUID) -> uuid.UUID | None:
        """The account here that ``user_id`` is, or None when there is none (a reference is cleared)."""
        if user_id not in self._people:
            users = Base.metadata.tables["users"]
            found = self.session.execute(select(users.c.id).where(users.c.id == user_id)).first()
            self._people[user_id] = None if found is None else user_id
        return self._people[user_id]

    def _audit(self, row: dict[str, Any]) -> dict[str, Any]:
        """As it is; or, for a copy, checked against the source chain and linked into the copy's."""
        if not self.plan.copy:
            return row
        seq, prev_hash = self._chain
        if row["seq"] != seq + 1 or row["prev_hash"] != prev_hash or compute_hash(row) != row["hash"]:
            raise InvalidInput(
                f"the archive's audit chain does not verify at record {row['seq']}: a copy would hide that, "
                "so none is made (import it as it is, without --as, to keep the evidence)",
                code="AUDIT_CHAIN_BROKEN",
                details={"seq": row["seq"]},
            )
        self._chain = (row["seq"], row["hash"])
        resource_id = row.get("resource_id")
        self._apply_rules("audit_logs", row)
        row["resource_id"] = self._resource(row.get("resource_type"), resource_id)
        row["prev_hash"] = self._copy_chain
        row["hash"] = self._copy_chain = compute_hash(row)
        return row

    def _resource(self, kind: str | None, resource_id: str | None) -> str | None:
        """A record's resource, named in the copy: the tenant's rows by their new ids, people as they are
        here."""
        if resource_id is None:
            return None
        try:
            value = uuid.UUID(resource_id)
        except ValueError:
            return resource_id
        if kind == "user":
            return str(self.plan.accounts.get(value, value))
        return str(self._rewrite("tenant" if kind == "tenant" else "row", value))
