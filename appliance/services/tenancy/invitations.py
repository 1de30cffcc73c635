"""Invitations into a tenant: offered by its admins to an email address, and withdrawn by them.

Adding someone to a tenant is an invitation, never an attachment: until the person accepts, the invitation
grants nothing (it is not a membership, so sign-in, tokens and the "which tenant?" question at sign-in do
not see it), and the tenant sees only the address, the role and the state. What the inviting admin gets
back is the same whether the address has an account or not: the invitation and its acceptance token, shown
once, to be handed to the person out of band (the appliance sends no mail). Nothing here looks the address's
account up before the person answers, so neither the answer nor its time depends on it.

The person behind the address answers through appliance.services.tenancy.invitees. What both sides share is
here: the token's hash, the moves of INVITATION_TRANSITIONS (:func:`move`), the errors of an invitation
that cannot be answered, and the tenant's audit records (:func:`record`).

Each step is audited in the tenant: invitation.create, invitation.accept (with membership.create),
invitation.decline, invitation.revoke.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from appliance.errors import Conflict, NotFound
from appliance.models import INVITATION_TRANSITIONS, Invitation, InvitationState, Membership, User
from appliance.services.access.actors import Actor
from appliance.services.audit import log as audit
from appliance.services.identity.emails import normalize_email
from appliance.services.tenancy import memberships, roles

#: The start of every acceptance token, so that one is recognised in a config file or a chat log.
TOKEN_PREFIX = "inv_"  # noqa: S105  (a prefix, not a secret)
#: How long an invitation stays open when the settings say nothing (security.invitation_ttl).
DEFAULT_TTL = dt.timedelta(days=7)


@dataclass(frozen=True)
class Issued:
    invitation: Invitation
    token: str
    """The acceptance token: shown once, to the admin who invited, to hand to the person."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def not_found(invitation_id: uuid.UUID | None = None) -> NotFound:
    """INVITATION_NOT_FOUND: the open invitation ``invitation_id``, or the one of an address and token."""
    details = {"id": str(invitation_id)} if invitation_id is not None else {}
    which = f" with id {invitation_id}" if invitation_id else " for this address and token"
    return NotFound(
        "no open invitation was found" + which,
        code="INVITATION_NOT_FOUND",
        details=details,
    )


def expired(invitation: Invitation) -> Conflict:
    """INVITATION_EXPIRED: ``invitation`` is past its time."""
    return Conflict(
        f"this invitation expired at {invitation.expires_at.isoformat()}: ask the tenant's admins for a "
        "new one",
        code="INVITATION_EXPIRED",
        details={"id": str(invitation.id), "expires_at": invitation.expires_at.isoformat()},
    )


def move(invitation: Invitation, target: InvitationState, now: dt.datetime) -> None:
    """Take the edge of INVITATION_TRANSITIONS to ``target`` (409 INVITATION_ANSWERED when there is none)."""
    edge = (InvitationState(invitation.state), target)
    if edge not in INVITATION_TRANSITIONS:
        raise Conflict(
            f"this invitation is {invitation.state}: it cannot become {target.value}",
            code="INVITATION_ANSWERED",
            details={"id": str(invitation.id), "state": invitation.state},
        )
    invitation.state = target.value
    invitation.answered_at = now


def record(
    session: Session, action: str, invitation: Invitation, actor: Actor | None, **summary: object
) -> None:
    """Record ``action`` on ``invitation`` in its tenant's audit trail."""
    audit.record(
        session,
        action=action,
        tenant_id=invitation.tenant_id,
        actor=actor,
        resource_type="invitation",
        resource_id=invitation.id,
        summary={"email": invitation.email, "role": invitation.role, **summary},
    )


# --------------------------------------------------------------------------- the tenant's side


def create(
    session: Session,
    actor: Actor,
    tenant_id: uuid.UUID,
    *,
    email: str,
    role: str,
    now: dt.datetime,
    ttl: dt.timedelta = DEFAULT_TTL,
) -> Issued:
    """Invite ``email`` into the session's tenant with ``role``. Nobody offers a role holding permissions
    they lack (403 ROLE_TOO_STRONG); a member's address is 409 ALREADY_MEMBER, an address with an open
    invitation 409 ALREADY_INVITED (an expired one is replaced)."""
    address = normalize_email(email)
    roles.require_role(session, role)
    memberships.check_grant(session, actor, role)
    # The tenant's own members only (the ORM filter and row-level security scope the join): whether the
    # address has an account elsewhere is not looked at.
    member = session.scalars(
        select(Membership.id).join(User, User.id == Membership.user_id).where(User.email == address)
    ).first()
    if member is not None:
        raise Conflict(
            f"{address!r} is already a member of this tenant",
            code="ALREADY_MEMBER",
            details={"email": address},
        )
    previous = session.scalars(
        select(Invitation).where(Invitation.email == address, Invitation.state == InvitationState.PENDING)
    ).first()
    replaces = None
    if previous is not None:
        if previous.open_at(now):
            raise Conflict(
                f"{address!r} is already invited (until {previous.expires_at.isoformat()}): revoke that "
                "invitation to invite again",
                code="ALREADY_INVITED",
                details={"email": address, "id": str(previous.id)},
            )
        move(previous, InvitationState.REVOKED, now)
        replaces = str(previous.id)
        session.flush()  # the open-invitation index holds one pending row per address
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    invitation = Invitation(
        tenant_id=tenant_id,
        email=address,
        role=role,
        token_hash=hash_token(token),
        invited_by=actor.user_id,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(invitation)
    session.flush()
    extra: dict[str, object] = {"expires_at": invitation.expires_at}
    if replaces is not None:
        extra["replaces"] = replaces
    record(session, "invitation.create", invitation, actor, **extra)
    return Issued(invitation=invitation, token=token)


def get_open(session: Session, invitation_id: uuid.UUID) -> Invitation | None:
    """A pending invitation of the session's tenant (expired or not), or None."""
    return session.scalars(
        select(Invitation).where(Invitation.id == invitation_id, Invitation.state == InvitationState.PENDING)
    ).first()


def revoke(session: Session, actor: Actor, invitation: Invitation, now: dt.datetime) -> None:
    """Withdraw a pending invitation (expired ones too); its token stops working. As with removing a member,
    nobody withdraws an offer of a role stronger than their own."""
    memberships.check_grant(session, actor, invitation.role)
    move(invitation, InvitationState.REVOKED, now)
    session.flush()
    record(session, "invitation.revoke", invitation, actor)
