"""The platform permissions of operators, in one place: which exist, which only read, who holds which.

A platform permission is checked on the platform (operator) routes only; it is distinct from every tenant
permission (appliance.models.role), so neither kind can stand in for the other. A full operator holds
every platform permission; a read-only operator (``users.operator_read_only``) holds the read ones.

An operator's access token carries no list of them: it carries the read-only flag (the ``ro`` claim, see
appliance.services.identity.tokens), and `for_operator` turns that into permissions when the token is
verified, so the hot path needs no database and a token stays small.
"""

from __future__ import annotations

TENANTS_READ = "tenants:read"
"""List and inspect tenants, their counts, members, organizations and API keys (never a key's secret)."""
TENANTS_MANAGE = "tenants:manage"
"""Create, rename, re-plan, suspend, resume and delete tenants."""
PLATFORM_AUDIT = "platform:audit"
"""Read the platform's audit trail."""
RATE_LIMITS_READ = "rate_limits:read"
"""Read the rate limits in force and the operators' overrides."""
RATE_LIMITS_MANAGE = "rate_limits:manage"
"""Change or reset the rate limits at run time."""
PLATFORM_JOBS_READ = "platform_jobs:read"
"""List and inspect the jobs of every tenant and the platform's own."""
PLATFORM_JOBS_MANAGE = "platform_jobs:manage"
"""Retry and cancel any job."""
PLATFORM_APPS_READ = "platform_apps:read"
"""List and inspect every tenant's monitored apps, their checks, incidents and uptime."""
PLATFORM_WEBHOOKS_READ = "platform_webhooks:read"
"""List and inspect every tenant's webhook endpoints, their success over the last 24 hours and their delivery
log (never an endpoint's secret)."""
PLATFORM_WEBHOOKS_MANAGE = "platform_webhooks:manage"
"""Turn a tenant's webhook endpoint on or off (also one the appliance disabled after failures) and replay its
failed deliveries or one message to it; the tenant's audit trail records each."""
OPERATORS_READ = "operators:read"
"""List and inspect the operator accounts (address, permissions, two-factor, disabled, last sign-in)."""
OPERATORS_MANAGE = "operators:manage"
"""Create, disable, enable and remove operators; reset their password or their two-factor authentication."""
PLATFORM_HEALTH = "platform:health"
"""Run the doctor's checks (settings, secret files, disk, database, row-level security, Redis, queue,
supervisor, certificate, backups) and read what they found."""
BACKUPS_READ = "backups:read"
"""List the backup archives and the age of the newest one."""
BACKUPS_MANAGE = "backups:manage"
"""Take a backup, verify one, restore the whole appliance from one."""

#: What a read-only operator holds: reading, nothing that changes the platform or a tenant.
READ: frozenset[str] = frozenset(
    {
        TENANTS_READ,
        PLATFORM_AUDIT,
        RATE_LIMITS_READ,
        PLATFORM_JOBS_READ,
        PLATFORM_APPS_READ,
        PLATFORM_WEBHOOKS_READ,
        OPERATORS_READ,
        PLATFORM_HEALTH,
        BACKUPS_READ,
    }
)
#: What changes something; held by full operators only.
WRITE: frozenset[str] = frozenset(
    {
        TENANTS_MANAGE,
        RATE_LIMITS_MANAGE,
        PLATFORM_JOBS_MANAGE,
        PLATFORM_WEBHOOKS_MANAGE,
        OPERATORS_MANAGE,
        BACKUPS_MANAGE,
    }
)
#: Every platform permission: what a full operator holds.
ALL: frozenset[str] = READ | WRITE

assert not READ & WRITE, "a platform permission reads or writes, not both"


def for_operator(read_only: bool) -> frozenset[str]:
    """The platform permissions of an operator account (or of its token's ``ro`` claim)."""
    return READ if read_only else ALL


def check(permission: str) -> str:
    """``permission`` if it is a platform permission; ValueError otherwise (a route naming a typo would
    otherwise refuse every operator)."""
    if permission not in ALL:
        raise ValueError(f"{permission!r} is not a platform permission (known: {', '.join(sorted(ALL))})")
    return permission
