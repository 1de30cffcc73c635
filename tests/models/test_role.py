"""Built-in roles: each one holds everything the weaker ones hold, and only known permissions."""

from __future__ import annotations

import itertools

from appliance.models import ALL_PERMISSIONS, BUILTIN_ROLES


def test_builtin_roles_are_ordered_from_weakest_to_strongest() -> None:
    roles = list(BUILTIN_ROLES.values())
    assert [r.name for r in roles] == ["viewer", "member", "admin", "owner"]
    for weaker, stronger in itertools.pairwise(roles):
        assert weaker.permissions < stronger.permissions, stronger.name
    assert BUILTIN_ROLES["owner"].permissions == ALL_PERMISSIONS


def test_what_each_builtin_role_may_do() -> None:
    assert BUILTIN_ROLES["viewer"].permissions == {
        "projects:read",
        "organizations:read",
        "users:read",
        "apps:read",
    }
    assert BUILTIN_ROLES["member"].permissions - BUILTIN_ROLES["viewer"].permissions == {
        "projects:write",
        "roles:read",
        "apps:write",
        "jobs:read",
    }
    assert "tenant:manage" not in BUILTIN_ROLES["admin"].permissions
    assert {"audit:read", "api_keys:write", "roles:write"} <= BUILTIN_ROLES["admin"].permissions
    assert {"jobs:write", "webhooks:read", "webhooks:write"} <= BUILTIN_ROLES["admin"].permissions
