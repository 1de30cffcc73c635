"""Users: one identity per email address; platform operators are users with the operator flag."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import String, false
from sqlalchemy.orm import Mapped, mapped_column

from appliance.db.base import Base, utcnow


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    """Stored lower-cased, so that one address is one identity."""
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    is_operator: Mapped[bool] = mapped_column(default=False)
    """A platform operator (on-prem admin), distinct from any role inside a tenant."""
    operator_read_only: Mapped[bool] = mapped_column(default=False, server_default=false())
    """An operator who may read the platform but change nothing
    (appliance.services.access.platform_permissions)."""
    is_active: Mapped[bool] = mapped_column(default=True)
    """False: the account is disabled and signs in nowhere (an operator disabled with `appliance admin
    disable` or by another operator)."""
    must_change_password: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    operator_removed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    """When the account stopped being an operator (appliance.services.tenancy.operators.remove). The row is
    kept so that the audit records naming it still say who acted; ``appliance admin create`` with its address
    makes it an operator again."""
