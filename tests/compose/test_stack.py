"""The container install end to end: the images built as an admin builds them, the stack of
compose/docker-compose.yml brought up on an engine of the tests' own, the first operator signed in over
HTTP, a tenant created, the stack taken down and brought up again, the tenant still there.

The images are built once per test run, in the background from the start of the run (tests/containers.py),
from the Debian base of compose/build-base.sh.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.compose.engine import COMPOSE_DIR, Engine, Images, Stack
from tests.servers import free_port
from tests.support import wait_for

pytestmark = pytest.mark.e2e

IMAGE_UID = "10001"  # the Dockerfile's APPLIANCE_UID
OPERATOR = "ops@example.com"
NEW_PASSWORD = "a long new password for the operator"


@pytest.fixture
def stack(docker_engine: Engine, appliance_images: Images, tmp_path: Path) -> Iterator[Stack]:
    secrets = tmp_path / "secrets"
    subprocess.run([str(COMPOSE_DIR / "make-secrets.sh"), str(secrets)], check=True, capture_output=True)
    project = f"fa{tmp_path.name[-6:].lower()}".replace("_", "")
    running = Stack(docker_engine, appliance_images, project, secrets, free_port())
    try:
        yield running
    finally:
        running.compose("down", "--volumes", "--timeout", "60")


@contextlib.contextmanager
def sign_in(url: str, password: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=30) as client:
        login = client.post("/api/v1/auth/login", json={"email": OPERATOR, "password": password})
        assert login.status_code == 200, login.text
        client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        yield client


@pytest.mark.timeout(1200)  # the first test of a run builds the images (on a fresh machine: minutes)
def test_a_tenant_created_over_http_outlives_taking_the_stack_down_and_up(stack: Stack) -> None:
    stack.up()
    created = stack.appliance("appliance", "admin", "create", "--email", OPERATOR)
    match = re.search(r"one-time password: (\S+)", created)
    assert match, created

    with sign_in(stack.url, match.group(1)) as api:
        changed = api.post(
            "/api/v1/auth/password", json={"current_password": match.group(1), "new_password": NEW_PASSWORD}
        )
        assert changed.status_code == 204, changed.text
        tenant = api.post("/api/v1/tenants", json={"slug": "acme", "name": "Acme Corp"})
        assert tenant.status_code == 201, tenant.text

    # The appliance runs as the image's own user, and Docker sees it healthy (the image's health check).
    assert stack.appliance("id", "-u").strip() == IMAGE_UID
    wait_for(lambda: stack.health() == "healthy", timeout=120, interval=1, what="a healthy appliance")

    stack.compose("down", "--timeout", "60")  # the containers go, the named volumes stay
    assert stack.compose("ps", "-q").stdout.strip() == ""
    stack.up()

    with sign_in(stack.url, NEW_PASSWORD) as api:
        listed = api.get("/api/v1/tenants", params={"q": "acme"})
        assert listed.status_code == 200, listed.text
        assert [(t["slug"], t["name"]) for t in listed.json()["items"]] == [("acme", "Acme Corp")]
