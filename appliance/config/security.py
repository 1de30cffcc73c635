"""Settings of sign-in, tokens and password hashes, and the signing keys refused outside development."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from appliance.config.section import Section

#: The placeholder shipped in the example file; refused as a real secret.
PLACEHOLDER_SECRET = "CHANGE-ME"  # noqa: S105  (the value refused, not a secret)
#: A signing key shorter than this (in characters) is refused outside development.
MIN_SECRET_LENGTH = 32


class SecuritySettings(Section):
    secret_key: SecretStr | None = None
    """Key that signs access tokens. Prefer secret_key_file; `appliance init` generates one."""

    secret_key_file: Path | None = None
    """File holding the signing key (owner-only). Unset: <data_dir>/secrets/signing.key."""

    token_issuer: str = Field(default="forge-appliance", min_length=1)
    """The `iss` claim written into access tokens and required when they are verified."""

    token_audience: str = Field(default="forge-appliance-api", min_length=1)
    """The `aud` claim written into access tokens and required when they are verified."""

    access_token_ttl: int = Field(default=900, ge=60, le=86_400)
    """How long an access token (JWT) is valid, in seconds. Short: a revoked session dies with it."""

    refresh_token_ttl: int = Field(default=30 * 86_400, ge=3600, le=365 * 86_400)
    """How long a refresh token is valid, in seconds. Each use rotates it for a new one."""

    password_min_length: int = Field(default=12, ge=8, le=256)
    """Fewest characters a new password may have (the longest accepted is 256)."""

    invitation_ttl: int = Field(default=7 * 86_400, ge=3600, le=90 * 86_400)
    """How long an invitation into a tenant may be accepted, in seconds (7 days). Past it, the tenant's
    admins revoke it or invite the address again."""

    password_hash_memory_kib: int = Field(default=65_536, ge=1024, le=4_194_304)
    """Memory of one argon2id password hash, in KiB (RFC 9106: 64 MiB). Lower it only on a machine that
    cannot spare it: the hash is weaker. A stored hash made otherwise is remade at its next sign-in."""

    password_hash_passes: int = Field(default=3, ge=1, le=20)
    """Passes of one argon2id password hash (RFC 9106: 3)."""
