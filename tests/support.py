"""Helpers shared by the tests: Settings for a test, and the real API served over a real socket."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from appliance.config import Settings
from appliance.db import migrate
from appliance.keys import create_signing_key
from tests.migrated import prepare as migrated_copy
from tests.servers import free_port

#: Variables of the developer's shell must not leak into the settings a test builds.
_OWN_VARS = ("APPLIANCE_", "PROMETHEUS_MULTIPROC_DIR")


def clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(_OWN_VARS)}


#: argon2id at its lightest (1 MiB, 1 pass): the suite signs in thousands of times, and the default 64 MiB
#: costs a quarter of a second each on the CI machine. tests/services/identity/test_passwords.py checks the
#: defaults.
LIGHT_HASHES = {"password_hash_memory_kib": 1024, "password_hash_passes": 1}


def make_settings(
    tmp_path: Path,
    database_url: str | None = None,
    queue_url: str | None = None,
    *,
    init: bool = True,
    migrated: bool = True,
    **overrides: Any,
) -> Settings:
    """Settings for one test: everything under tmp_path, the given backends, a real signing key."""
    data: dict[str, Any] = {"data_dir": tmp_path / "data", "mode": "embedded", "security": dict(LIGHT_HASHES)}
    if database_url:
        data["database"] = {"url": database_url}
    if queue_url:
        data["queue"] = {"url": queue_url}
    for key, value in overrides.items():
        if isinstance(value, Mapping):
            data.setdefault(key, {}).update(value)
        else:
            data[key] = value
    settings = Settings(**data)
    if init:
        create_signing_key(settings.secret_key_file)
    # A SQLite copy is at the head; after a PostgreSQL copy the upgrade applies nothing, grants the app role.
    if migrated and (not migrated_copy(settings) or not settings.database_url.startswith("sqlite")):
        migrate.upgrade(settings)
    return settings


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment variables that give a child process the same settings."""
    env = clean_environ()
    env.update(
        {
            "APPLIANCE_MODE": settings.mode,
            "APPLIANCE_DATA_DIR": str(settings.data_dir),
            "APPLIANCE_DATABASE__URL": settings.database_url,
            "APPLIANCE_QUEUE__URL": settings.queue_url,
            "APPLIANCE_API__HOST": settings.api.host,
            "APPLIANCE_API__PORT": str(settings.api.port),
            "APPLIANCE_LOGGING__JSON_FORMAT": "true",
        }
    )
    if settings.database.migrations_url:
        env["APPLIANCE_DATABASE__MIGRATIONS_URL"] = settings.database.migrations_url
    for key, value in settings.backups.model_dump().items():
        if value is not None:
            env[f"APPLIANCE_BACKUPS__{key.upper()}"] = str(value)
    # The sections workers read, as the test set them (a list is given as JSON).
    for key in LIGHT_HASHES:
        env[f"APPLIANCE_SECURITY__{key.upper()}"] = str(getattr(settings.security, key))
    for section in ("jobs", "outbound", "webhooks", "monitoring"):
        for key, value in getattr(settings, section).model_dump().items():
            name = f"APPLIANCE_{section.upper()}__{key.upper()}"
            env[name] = (
                json.dumps(list(value))
                if isinstance(value, tuple)
                else str(value).lower()
                if isinstance(value, bool)
                else str(value)
            )
    return env


class LiveServer:
    """A FastAPI app served by uvicorn on a free loopback port, in a thread of the test process."""

    def __init__(self, app: FastAPI):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test API server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)


@contextmanager
def serve(app: FastAPI) -> Iterator[httpx.Client]:
    with LiveServer(app) as live, live.client() as client:
        yield client


def wait_for(predicate: Any, timeout: float = 30.0, interval: float = 0.05, what: str = "condition") -> Any:
    """Poll until ``predicate()`` is truthy; return its value or fail naming what was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


class ApiProcesses:
    """N real `appliance api --fd` processes sharing one listening socket, as the supervisor runs them."""

    def __init__(
        self, settings: Settings, count: int, log_dir: Path, extra_env: Mapping[str, str] | None = None
    ):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1024)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        env = settings_env(settings) | dict(extra_env or {})
        fd = self.listener.fileno()
        self.logs = [log_dir / f"api-{i}.log" for i in range(count)]
        self.procs: list[subprocess.Popen[bytes]] = []
        for log in self.logs:
            with log.open("wb") as out:
                self.procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "appliance", "api", "--fd", str(fd)],
                        env=env,
                        pass_fds=(fd,),
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )

    def __enter__(self) -> ApiProcesses:
        def all_up() -> bool:
            return all("Application startup complete" in log.read_text() for log in self.logs)

        try:
            wait_for(all_up, timeout=60, what="every API process to start")
        except AssertionError:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.listener.close()


def appliance_env(name: str) -> tuple[dict[str, str], Path]:
    """Environment for an appliance a test runs as a user would: a free API port, and a data directory
    with a short path (the control socket's path must fit in a Unix socket address, 108 bytes)."""
    port = free_port()
    data = Path("/tmp") / f"fa-{name}-{os.getpid()}-{port}"
    return clean_environ() | {"APPLIANCE_DATA_DIR": str(data), "APPLIANCE_API__PORT": str(port)}, data


class KeepAliveLoad:
    """Clients hammering one URL over keep-alive connections, as a load balancer or wrk would hold them,
    counting what was served and every failure (an exception or a status other than 200)."""

    def __init__(self, base_url: str, path: str = "/health/live", clients: int = 16, limit: int = 50_000):
        self.base_url, self.path, self.limit = base_url, path, limit
        self.failures: list[str] = []
        self.served = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(clients)]

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=10) as http:
            for _ in range(self.limit):
                if self._stop.is_set():
                    return
                try:
                    response = http.get(self.path)
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                if response.status_code != 200:
                    self.failures.append(f"HTTP {response.status_code}")
                self.served += 1

    def __enter__(self) -> KeepAliveLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def wait_for_more(self, count: int, what: str) -> None:
        start = self.served
        wait_for(lambda: self.served > start + count, what=what)


def stop_gracefully(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGINT (a worker finishes its running tasks), then SIGKILL if it is still there after ``timeout``."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


#: The repository this test suite belongs to.
REPOSITORY = Path(__file__).resolve().parents[1]


def copy_checkout(target: Path, *, tests: bool = True) -> Path:
    """The repository's files as a fresh clone would have them (tracked and new, nothing ignored) copied into
    ``target``, so that others editing the checkout meanwhile change nothing there; ``tests=False`` leaves
    tests/ out (what pip installs or an image is built from)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPOSITORY,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in filter(None, listed):
        name = raw.decode()
        source = REPOSITORY / name
        if (not tests and name.startswith("tests/")) or not source.is_file():
            continue
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target / name)
    return target
