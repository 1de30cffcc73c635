"""A user's own account: changing the password (every other session of the user ends)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from appliance.errors import InvalidInput, Unauthenticated
from appliance.models import User
from appliance.services.access.actors import Actor
from appliance.services.audit import log as audit
from appliance.services.identity import password_policy, passwords, sessions
from appliance.services.identity.authenticator import Authenticator


def change_password(
    session: Session, authn: Authenticator, actor: Actor, *, current: str, new: str, min_length: int
) -> None:
    """Replace the actor's password; every other session of the user ends."""
    if actor.user_id is None:
        raise InvalidInput("an API key has no password", code="NO_PASSWORD")
    user = session.get(User, actor.user_id)
    assert user is not None
    ok, _ = passwords.verify(current, user.password_hash or "")
    if not ok:
        raise Unauthenticated("the current password is not correct", code="INVALID_CREDENTIALS")
    password_policy.check_password(new, user.email, min_length=min_length)
    user.password_hash = passwords.hash_password(new)
    user.must_change_password = False
    ended = sessions.revoke_user(session, user.id, authn.clock(), keep=actor.session_id)
    authn.sessions_ended(ended)
    audit.record(
        session,
        action="auth.password_changed",
        tenant_id=actor.tenant_id,
        actor=actor,
        resource_type="user",
        resource_id=user.id,
        summary={"sessions_ended": len(ended)},
    )
