"""A tenant's members as its admins see them: the memberships and, among them, the invitations not answered
yet (address, role and time only), in one list; removing an invited entry withdraws its invitation."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import Select, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from appliance.errors import Conflict, InvalidInput, NotFound
from appliance.models import Invitation, InvitationState, Membership, User
from appliance.services.access.actors import Actor
from appliance.services.common import pagination
from appliance.services.identity.emails import normalize_email
from appliance.services.tenancy import invitations, memberships

#: One entry of the list: a member (with their account), or a pending invitation.
Entry = tuple[Membership, User] | Invitation
Status = Literal["active", "invited", "expired"]
STATUSES: tuple[Status, ...] = ("active", "invited", "expired")


def status_of(entry: Entry, now: dt.datetime) -> Status:
    if not isinstance(entry, Invitation):
        return "active"
    return "invited" if entry.open_at(now) else "expired"


def _key(entry: Entry) -> tuple[dt.datetime, uuid.UUID]:
    row = entry if isinstance(entry, Invitation) else entry[0]
    return row.created_at, row.id


def _after(
    query: Select[Any], columns: list[InstrumentedAttribute[Any]], key: Sequence[Any] | None
) -> Select[Any]:
    if key is not None:
        query = pagination.after(query, columns, key, descending=False)
    return pagination.ordered(query, columns, False)


def page(
    session: Session,
    *,
    role: str | None,
    status: str | None,
    limit: int,
    cursor: str | None,
    now: dt.datetime,
) -> tuple[list[Entry], str | None]:
    """Members and pending invitations in the order they joined or were invited, ``limit`` at a time.

    ``status``: active (members), invited (open invitations) or expired (invitations past their time)."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(
            f"{status!r} is not a member status ({', '.join(STATUSES)})",
            code="STATUS_UNKNOWN",
            details={"status": status},
        )
    key = memberships.CURSORS.decode(cursor, "created_at") if cursor is not None else None
    entries: list[Entry] = []
    if status in (None, "active"):
        members: Select[Any] = select(Membership, User).join(User, User.id == Membership.user_id)  # type: ignore[assignment]
        if role is not None:
            members = members.where(Membership.role == role)
        columns = [Membership.created_at, Membership.id]
        entries += [(m, u) for m, u in session.execute(_after(members, columns, key).limit(limit + 1))]
    if status != "active":
        invited: Select[Any] = select(Invitation).where(Invitation.state == InvitationState.PENDING)
        if role is not None:
            invited = invited.where(Invitation.role == role)
        if status == "invited":
            invited = invited.where(Invitation.expires_at > now)
        elif status == "expired":
            invited = invited.where(Invitation.expires_at <= now)
        columns = [Invitation.created_at, Invitation.id]
        entries += list(session.scalars(_after(invited, columns, key).limit(limit + 1)))
    entries.sort(key=_key)
    next_cursor = None
    if len(entries) > limit:
        next_cursor = memberships.CURSORS.encode(_key(entries[limit - 1]), "created_at")
    return entries[:limit], next_cursor


def find(session: Session, entry_id: uuid.UUID) -> Entry:
    """A member by membership id, or a pending invitation by its id (what the list's ``id`` holds)."""
    membership = session.get(Membership, entry_id)
    if membership is not None:
        return membership, memberships.user_of(session, membership)
    invitation = invitations.get_open(session, entry_id)
    if invitation is not None:
        return invitation
    raise NotFound(f"member {entry_id} was not found", code="MEMBER_NOT_FOUND", details={"id": str(entry_id)})


def by_email(session: Session, email: str, *, tenant_slug: str) -> Entry:
    """The member with this address, or else the address's pending invitation (the command line names
    people by address)."""
    address = normalize_email(email)
    row = session.execute(
        select(Membership, User).join(User, User.id == Membership.user_id).where(User.email == address)
    ).first()
    if row is not None:
        return row[0], row[1]
    invitation = session.scalars(
        select(Invitation).where(Invitation.email == address, Invitation.state == InvitationState.PENDING)
    ).first()
    if invitation is not None:
        return invitation
    raise NotFound(
        f"{address!r} is neither a member of tenant {tenant_slug!r} nor invited to it",
        code="MEMBER_NOT_FOUND",
        details={"email": address, "tenant": tenant_slug},
    )


def change_role(
    session: Session, actor: Actor, entry_id: uuid.UUID, role: str, now: dt.datetime
) -> tuple[Membership, list[uuid.UUID]]:
    """A member's new role (memberships.change_role); an invited entry has none to change yet."""
    entry = find(session, entry_id)
    if isinstance(entry, Invitation):
        raise Conflict(
            f"{entry.email!r} has not accepted the invitation yet: revoke it and invite again with "
            "another role",
            code="MEMBER_INVITED",
            details={"id": str(entry.id)},
        )
    return memberships.change_role(session, actor, entry_id, role, now)


def remove(session: Session, actor: Actor, entry_id: uuid.UUID, now: dt.datetime) -> list[uuid.UUID]:
    """Remove a member (ending their sessions in the tenant: the ids returned), or revoke an invitation."""
    entry = find(session, entry_id)
    if isinstance(entry, Invitation):
        invitations.revoke(session, actor, entry, now)
        return []
    return memberships.remove(session, actor, entry_id, now)
