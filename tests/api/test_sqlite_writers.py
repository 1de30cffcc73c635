"""The embedded database (SQLite) under concurrent writers: every write is answered, none with 503
"database is locked", whatever the HTTP method of the route that writes."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.test_apps import create
from tests.api.test_projects import organization
from tests.identity import Identity, identity_api

WRITERS = 16
ROUNDS = 12


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Identity]:
    # The queue's load shedding is out of the way (it is tested in test_offload.py): what is measured here is
    # whether the database holds the writers that reach it.
    api = {"queue_target": 30.0, "queue_timeout": 60.0}
    with identity_api(tmp_path, f"sqlite:///{tmp_path / 'appliance.db'}", api=api) as ident:
        yield ident


def test_concurrent_writers_on_sqlite_are_all_answered(embedded: Identity) -> None:
    acme = embedded.tenant("acme")
    app = create(embedded, acme.owner, kind="heartbeat", url=None, interval=60, grace=30)
    beat = httpx.URL(app["heartbeat_url"])
    org = organization(embedded, acme, "ops")
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(WRITERS)

    def writer(n: int) -> None:
        with httpx.Client(base_url=str(embedded.client.base_url), timeout=60) as client:
            start.wait()
            for i in range(ROUNDS):
                # A heartbeat by GET (a route of a safe method that writes), by POST, and a project.
                answers = [
                    client.get(beat.path),
                    client.post(beat.path),
                    client.post(
                        "/api/v1/projects",
                        json={"organization_id": org, "name": f"p-{n}-{i}-{uuid.uuid4().hex[:6]}"},
                        headers=acme.owner.headers,
                    ),
                ]
                with lock:
                    for answer in answers:
                        statuses[answer.status_code] += 1
                        if answer.status_code >= 500:
                            errors.append(f"{answer.request.method} {answer.request.url.path}: {answer.text}")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[:3]
    assert statuses == {204: 2 * WRITERS * ROUNDS, 201: WRITERS * ROUNDS}
    listed = embedded.client.get("/api/v1/projects", params={"limit": 1}, headers=acme.owner.headers)
    assert listed.status_code == 200
