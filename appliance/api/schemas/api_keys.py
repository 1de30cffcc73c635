"""Request and response bodies of /api/v1/api-keys."""

from __future__ import annotations

import uuid

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from appliance.api.schemas.times import Timestamp
from appliance.models import ApiKey


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    """What the key is for, for people reading the list."""
    scopes: list[str] = Field(min_length=1, max_length=100)
    """Permissions the key may use (such as projects:read); each one must be held by its creator."""
    expires_at: AwareDatetime | None = None
    """When the key stops working (RFC 3339 with a time zone); null: never."""


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str
    """The public start of the key (fak_...), to recognize it; the secret is never shown again."""
    scopes: list[str]
    """What the key was given."""
    effective_scopes: list[str]
    """What the key may do now: its scopes as far as its creator still holds them in this tenant (a
    demotion narrows the key at once); empty once it is revoked or expired, and while its creator must
    change their password."""
    created_at: Timestamp
    created_by: uuid.UUID | None
    """The member the key acts for, whose current permissions bound it: who created it, or, for a key
    created with another key, that key's creator. None: the account is gone (the key is refused)."""
    expires_at: Timestamp | None
    last_used_at: Timestamp | None
    """Approximate (written at most once a minute)."""
    revoked_at: Timestamp | None

    @classmethod
    def of(cls, key: ApiKey, effective_scopes: list[str]) -> ApiKeyOut:
        return cls(
            id=key.id,
            name=key.name,
            prefix=key.prefix,
            scopes=sorted(key.scopes),
            effective_scopes=effective_scopes,
            created_at=key.created_at,
            created_by=key.created_by,
            expires_at=key.expires_at,
            last_used_at=key.last_used_at,
            revoked_at=key.revoked_at,
        )


class ApiKeyCreated(ApiKeyOut):
    key: str
    """The whole key, to send as X-API-Key: shown only in this response, store it now."""
