"""Who acted, in words a reader knows, for a page of audit records: the user's e-mail, the API key's name
and prefix, or the name the record carries itself (``cli:<OS user>@<host>`` at the command line).

Looked up when the trail is read, never stored: a record names ids (part of its hash), and an e-mail or a
key's name can change after it. Two queries a page, by primary key. A key is looked up only inside its own
tenant (the session's), as every tenant-owned row is; a platform record names no key.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from appliance.db import tenancy
from appliance.models import ApiKey, AuditLog, User


@dataclass(frozen=True)
class ActorNames:
    """The names of the actors of some records (from :func:`look_up`)."""

    emails: dict[uuid.UUID, str]
    keys: dict[uuid.UUID, str]
    """A key's label: ``key <name> (<prefix>)``."""

    def email(self, record: AuditLog) -> str | None:
        """The e-mail of the user who acted (None for a key, the command line or nobody)."""
        return self.emails.get(record.actor_user_id) if record.actor_user_id is not None else None

    def label(self, record: AuditLog) -> str | None:
        """Who acted, for a person: the user's e-mail, the key's name and prefix, or the record's own name
        (the command line's); None when nobody known acted (a failed sign-in, the system)."""
        if record.actor_user_id is not None and record.actor_user_id in self.emails:
            return self.emails[record.actor_user_id]
        if record.actor_api_key_id is not None and record.actor_api_key_id in self.keys:
            return self.keys[record.actor_api_key_id]
        return record.actor_name


def look_up(session: Session, records: Sequence[AuditLog]) -> ActorNames:
    """The e-mails and keys the records name, as the session may see them."""
    user_ids = {r.actor_user_id for r in records if r.actor_user_id is not None}
    emails: dict[uuid.UUID, str] = {}
    if user_ids:
        users = session.execute(select(User.id, User.email).where(User.id.in_(user_ids)))
        emails = {user.id: user.email for user in users}
    tenant = tenancy.current_tenant(session)
    key_ids = {
        r.actor_api_key_id for r in records if r.actor_api_key_id is not None and r.tenant_id == tenant
    }
    keys: dict[uuid.UUID, str] = {}
    if key_ids and tenant is not None:
        found = session.execute(select(ApiKey.id, ApiKey.name, ApiKey.prefix).where(ApiKey.id.in_(key_ids)))
        keys = {key_id: f"key {name} ({prefix})" for key_id, name, prefix in found}
    return ActorNames(emails, keys)
