"""/api/v1/audit-logs and /audit-logs/platform name who acted as a reader knows them, on both databases
(PostgreSQL as the app role): the user's e-mail, the API key's name and prefix, the command line's OS user
and host; the ids stay as they were."""

from __future__ import annotations

from typing import Any

from tests.identity import Identity

KEYS = "/api/v1/api-keys"


def trail(identity: Identity, headers: dict[str, str], action: str, platform: bool = False) -> list[Any]:
    path = "/api/v1/audit-logs/platform" if platform else "/api/v1/audit-logs"
    response = identity.client.get(path, params={"action": action}, headers=headers)
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


def test_records_name_the_actor_by_email_key_or_command_line(identity: Identity) -> None:
    acme = identity.tenant("acme")
    body = {"name": "deploy-bot", "scopes": ["api_keys:write", "users:read"]}
    made = identity.client.post(KEYS, json=body, headers=acme.owner.headers)
    assert made.status_code == 201, made.text
    maker = made.json()
    by_key = identity.client.post(
        KEYS, json={"name": "narrow", "scopes": ["users:read"]}, headers={"X-API-Key": maker["key"]}
    )
    assert by_key.status_code == 201, by_key.text

    newest, oldest = trail(identity, acme.owner.headers, "api_key.create")
    assert newest["actor_api_key_id"] == maker["id"]
    assert newest["actor_email"] is None
    assert newest["actor_label"] == f"key deploy-bot ({maker['prefix']})"
    assert oldest["actor_user_id"] == str(acme.owner.user_id)
    assert oldest["actor_email"] == acme.owner.email
    assert oldest["actor_label"] == acme.owner.email

    operator = identity.operator
    (created,) = trail(identity, operator.headers, "tenant.create", platform=True)
    assert created["actor_email"] == operator.email
    assert created["actor_label"] == operator.email
    at_the_command_line = trail(identity, operator.headers, "operator.create", platform=True)
    assert at_the_command_line
    for record in at_the_command_line:  # `appliance admin create`: no user, no key, the OS user and host
        assert record["actor_user_id"] is None
        assert record["actor_email"] is None
        assert record["actor_label"].startswith("cli:")
        assert record["actor_label"] == record["actor_name"]

    failed = identity.login("nobody@nowhere.test", "not the password")
    assert failed.status_code == 401
    (attempt,) = trail(identity, operator.headers, "auth.login_failed", platform=True)
    assert attempt["actor_email"] is None  # nobody known acted: the address tried is in the summary
    assert attempt["actor_label"] is None
