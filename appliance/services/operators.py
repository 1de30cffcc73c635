"""Platform operators: the on-prem admins who manage tenants (or, read-only, watch them), created from the
command line."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from appliance.errors import Conflict, InvalidInput
from appliance.models import User
from appliance.services import audit, passwords
from appliance.services.actors import cli_operator

# Deliberately permissive: one @, no spaces, a dot in the domain. Full validation is the mail server's.
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class NewOperator:
    user: User
    one_time_password: str


def normalize_email(email: str) -> str:
    value = email.strip().lower()
    if not EMAIL.match(value) or len(value) > 320:
        raise InvalidInput(f"{email!r} is not a valid email address", details={"email": email})
    return value


def create(session: Session, email: str, display_name: str = "", *, read_only: bool = False) -> NewOperator:
    """A new operator account with a one-time password that must be changed at first login; a read-only
    one holds only the read platform permissions (appliance.services.platform_permissions)."""
    address = normalize_email(email)
    if session.scalars(select(User.id).where(User.email == address)).first() is not None:
        raise Conflict(
            f"a user with email {address!r} already exists", code="EMAIL_TAKEN", details={"email": address}
        )
    password = passwords.one_time_password()
    user = User(
        email=address,
        display_name=display_name or address.split("@", 1)[0],
        password_hash=passwords.hash_password(password),
        is_operator=True,
        operator_read_only=read_only,
        must_change_password=True,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        action="operator.create",
        tenant_id=None,
        actor=cli_operator(),
        resource_type="user",
        resource_id=user.id,
        summary={"email": address, "read_only": read_only},
    )
    return NewOperator(user=user, one_time_password=password)


def count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User).where(User.is_operator.is_(True))) or 0
