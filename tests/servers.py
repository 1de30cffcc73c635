"""Throwaway PostgreSQL and Redis servers for the test suite.

A plain helper module (not a test file). Each server lives in its own temporary
directory, listens on 127.0.0.1 on a free port (plus a unix socket in that
directory), is tuned for speed rather than durability, and is restartable:
``stop()`` followed by ``start()`` reuses the same data directory and port, which
is what "the database went down and came back" tests need. ``close()`` stops the
server and removes the directory; every server still alive at interpreter exit is
closed by an ``atexit`` hook, and when started from the main thread on Linux the
server also gets a parent-death signal so a SIGKILLed pytest leaves no process.

When running as root, PostgreSQL (whose ``initdb`` refuses root) runs as the
``postgres`` OS user in a directory that user owns.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, LiteralString, NoReturn, Self, TypeVar
from urllib.parse import quote

import psycopg
import pytest
import redis
from psycopg import sql
from psycopg.rows import TupleRow
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = [
    "PostgresServer",
    "RedisServer",
    "ServerUnavailable",
    "ci_requires_services",
    "find_postgres_bindir",
    "find_redis_server",
    "free_port",
    "start_or_skip",
    "unavailable",
]

PG_BINDIR_ENV = "PG_BINDIR"
REDIS_SERVER_ENV = "REDIS_SERVER"
_PG_VERSIONED_GLOB = "/usr/lib/postgresql/*/bin"
_REDIS_FALLBACKS = ("/usr/bin/redis-server", "/usr/local/bin/redis-server", "/usr/sbin/redis-server")
_PORT_IN_USE = re.compile(r"address already in use|could not create any TCP/IP sockets", re.IGNORECASE)
_START_ATTEMPTS = 5
_LOG_TAIL_LINES = 40
_NO_RETRY = Retry(NoBackoff(), 0)


class ServerUnavailable(RuntimeError):
    """The server cannot be started here: binary missing, initdb failed, never became ready."""


# --------------------------------------------------------------------------- skip or fail


def ci_requires_services(environ: Mapping[str, str] | None = None) -> bool:
    """True when the environment says we run in CI (``CI=true``): missing servers must fail, not skip."""
    env = os.environ if environ is None else environ
    return env.get("CI", "").strip().lower() == "true"


def unavailable(reason: str, environ: Mapping[str, str] | None = None) -> NoReturn:
    """Skip the current test because a server is unavailable -- or fail it when ``CI=true``."""
    if ci_requires_services(environ):
        pytest.fail(
            f"{reason} [CI=true: a required test server is unavailable, so this fails instead of skipping]",
            pytrace=False,
        )
    pytest.skip(reason)


_ServerT = TypeVar("_ServerT", bound="_Server")


def start_or_skip(server: _ServerT) -> _ServerT:
    """``server.start()``, or :func:`unavailable` (skip; fail when CI=true) saying why it cannot start."""
    try:
        return server.start()
    except ServerUnavailable as exc:
        reason = f"{server.name} unavailable: {exc}"
        server.close()
    unavailable(reason)  # outside the except block: no "during handling" noise in the report


# --------------------------------------------------------------------------- small helpers


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago (bind to port 0 and let the kernel choose)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _version_key(bindir: str) -> tuple[int, ...]:
    version = Path(bindir).parent.name
    return tuple(int(part) for part in re.findall(r"\d+", version)) or (0,)


def find_postgres_bindir() -> Path:
    """The directory holding ``initdb`` and ``postgres``.

    Order: ``$PG_BINDIR``; the directory of ``initdb`` on PATH; the newest
    ``/usr/lib/postgresql/*/bin``. Raises :class:`ServerUnavailable` saying what is missing.
    """
    if override := os.environ.get(PG_BINDIR_ENV):
        if all(os.access(Path(override) / name, os.X_OK) for name in ("initdb", "postgres")):
            return Path(override)
        raise ServerUnavailable(f"${PG_BINDIR_ENV}={override} holds no executable `initdb` + `postgres`")
    candidates: list[str] = []
    if on_path := shutil.which("initdb"):
        candidates.append(str(Path(on_path).resolve().parent))
    candidates.extend(sorted(glob.glob(_PG_VERSIONED_GLOB), key=_version_key, reverse=True))
    for candidate in candidates:
        bindir = Path(candidate)
        if all(os.access(bindir / name, os.X_OK) for name in ("initdb", "postgres")):
            return bindir
    raise ServerUnavailable(
        "PostgreSQL server binaries not found: no `initdb` + `postgres` "
        f"on PATH or in {_PG_VERSIONED_GLOB} "
        f"(looked in: {', '.join(candidates) or 'nothing found'}; install postgresql or set {PG_BINDIR_ENV})"
    )


def find_redis_server() -> Path:
    """The ``redis-server`` binary: ``$REDIS_SERVER``, then PATH, then the usual install locations."""
    if override := os.environ.get(REDIS_SERVER_ENV):
        if os.path.isfile(override) and os.access(override, os.X_OK):
            return Path(override)
        raise ServerUnavailable(f"${REDIS_SERVER_ENV}={override} is not an executable `redis-server`")
    candidates: list[str] = []
    if on_path := shutil.which("redis-server"):
        candidates.append(on_path)
    candidates.extend(_REDIS_FALLBACKS)
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise ServerUnavailable(
        f"`redis-server` not found on PATH or in {', '.join(_REDIS_FALLBACKS)} "
        f"(apt-get install redis-server, or set {REDIS_SERVER_ENV})"
    )


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:]) or "<empty>"


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment for server processes: no PG*/REDIS* leakage from the caller, C locale."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "REDIS"))}
    env.update({"LC_ALL": "C", "LANG": "C"})
    env.update(extra)
    return env


def _base_tmpdir(accessible_to_others: bool) -> str:
    """Where to create server directories; must be traversable by another user when we drop privileges."""
    base = tempfile.gettempdir()
    if not accessible_to_others:
        return base
    path = Path(base).resolve()
    for part in (path, *path.parents):
        if not part.stat().st_mode & 0o001:
            return "/tmp"  # world-traversable fallback; the directory made inside it is private
    return base


def _pdeathsig_preexec(sig: signal.Signals) -> Callable[[], None] | None:
    """A preexec_fn that makes the child receive ``sig`` when its parent dies (Linux, main thread only).

    PR_SET_PDEATHSIG fires when the *thread* that forked exits, so it is only safe from the main thread.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    pr_set_pdeathsig = 1

    def preexec() -> None:
        libc.prctl(pr_set_pdeathsig, int(sig), 0, 0, 0)

    return preexec


# --------------------------------------------------------------------------- cleanup registry

_DIR_PREFIX = "forge-test-server-"
_OWNER_FILE = "owner.pid"


def _sweep_orphans(base: str) -> None:
    """Remove server directories left by test processes that were SIGKILLed (their servers died with them)."""
    for directory in Path(base).glob(_DIR_PREFIX + "*"):
        try:
            owner = int((directory / _OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue  # being created right now, or not ours
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            shutil.rmtree(directory, ignore_errors=True)
        except PermissionError:
            pass  # alive, another user's


_LIVE: set[_Server] = set()


@atexit.register
def _close_all() -> None:
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.close()


# --------------------------------------------------------------------------- servers


class _Server:
    """Common process management: start with port retry, readiness polling, stop, close."""

    name = "server"
    stop_signal = signal.SIGTERM
    kill_signal = signal.SIGKILL
    death_signal = signal.SIGTERM
    start_timeout = 30.0
    stop_timeout = 30.0

    def __init__(self, *, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self._fixed_port = port is not None
        self._port: int | None = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: Path | None = None
        self._lock = threading.RLock()
        self._started_once = False
        self.startup_seconds: float | None = None  # wall time of the last successful start()

    # -- to implement
    def _prepare(self) -> None:
        """Create the directory contents (data dir, config...) the first time; may raise ServerUnavailable."""

    def _command(self, port: int) -> list[str]:
        raise NotImplementedError

    def _popen_kwargs(self) -> dict[str, Any]:
        return {}

    def _ping(self) -> bool:
        raise NotImplementedError

    @property
    def log_path(self) -> Path:
        return self.directory / f"{self.name}.log"

    # -- state
    @property
    def directory(self) -> Path:
        """The server's private temporary directory (created on first start, removed by close())."""
        if self._dir is None:
            raise RuntimeError(f"{self.name} has not been started")
        return self._dir

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{self.name} has not been started: no port yet")
        return self._port

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        return _tail(self.log_path, lines) if self._dir is not None else "<no log yet>"

    def _make_dir(self, *, for_other_user: bool = False) -> Path:
        if self._dir is None:
            base = _base_tmpdir(for_other_user)
            _sweep_orphans(base)
            self._dir = Path(tempfile.mkdtemp(prefix=_DIR_PREFIX, dir=base))
            (self._dir / _OWNER_FILE).write_text(f"{os.getpid()}\n")
            _LIVE.add(self)
        return self._dir

    # -- lifecycle
    def start(self) -> Self:
        """Start the server (idempotent). A restart after stop() reuses the directory and the port."""
        with self._lock:
            if self.running:
                return self
            began = time.monotonic()
            self._prepare()
            pinned = self._fixed_port or self._started_once  # a restart must come back on the same port
            attempts = 1 if pinned else _START_ATTEMPTS
            for attempt in range(1, attempts + 1):
                if self._port is None:
                    self._port = free_port(self.host)
                try:
                    self._launch(self._port)
                except ServerUnavailable:
                    port_taken = _PORT_IN_USE.search(self.log_tail(200)) is not None
                    if port_taken and attempt < attempts:
                        self._port = None  # taken between free_port() and bind(): pick another one
                        continue
                    if not pinned:
                        self._port = None
                    raise
                self._started_once = True
                self.startup_seconds = time.monotonic() - began
                return self
            raise AssertionError("unreachable")  # pragma: no cover

    def _launch(self, port: int) -> None:
        log = self.log_path.open("ab")
        try:
            self._proc = subprocess.Popen(
                self._command(port),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                start_new_session=True,  # Ctrl-C in the terminal goes to pytest, which stops us in order
                preexec_fn=_pdeathsig_preexec(self.death_signal),  # noqa: PLW1509 -- see _pdeathsig_preexec
                **self._popen_kwargs(),
            )
        finally:
            log.close()
        deadline = time.monotonic() + self.start_timeout
        while True:
            code = self._proc.poll()
            if code is not None:
                self._proc = None
                raise ServerUnavailable(
                    f"{self.name} exited with code {code} while starting on port {port}; "
                    f"log tail ({self.log_path}):\n{self.log_tail()}"
                )
            if self._ping():
                return
            if time.monotonic() > deadline:
                self._terminate(self.kill_signal, 5.0)
                raise ServerUnavailable(
                    f"{self.name} did not become ready on port {port} within {self.start_timeout:.0f}s; "
                    f"log tail ({self.log_path}):\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def _terminate(self, sig: signal.Signals, timeout: float) -> bool:
        proc = self._proc
        if proc is None:
            return True
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
        self._proc = None
        return True

    def stop(self) -> None:
        """Stop the server cleanly (data kept, port kept: start() again brings it back)."""
        with self._lock:
            if not self._terminate(self.stop_signal, self.stop_timeout):
                self._terminate(signal.SIGKILL, 10.0)

    def kill(self) -> None:
        """Simulate a crash: kill the server (PostgreSQL: "immediate" shutdown). start() afterwards recovers.

        PostgreSQL runs with synchronous_commit=off, so commits from the last few hundred milliseconds
        may be lost by a kill() (not by stop()); pass ``settings={"synchronous_commit": "on"}`` if it matters.
        """
        with self._lock:
            if not self._terminate(self.kill_signal, 10.0):
                self._terminate(signal.SIGKILL, 10.0)

    def restart(self) -> Self:
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the server and remove its directory. The object cannot be started again."""
        with self._lock:
            try:
                self.stop()
            finally:
                if self._dir is not None:
                    shutil.rmtree(self._dir, ignore_errors=True)
                    self._dir = None
                _LIVE.discard(self)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


@dataclass(frozen=True)
class _RunAs:
    uid: int
    gid: int
    name: str


class PostgresServer(_Server):
    """A throwaway PostgreSQL cluster: ``initdb`` in a temp dir, ``postgres`` as a child process.

    Local connections use ``trust`` authentication (the default); pass ``auth="scram-sha-256"`` to
    make TCP connections check passwords (the superuser then gets a random password, part of its URLs).
    """

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: roll back and disconnect clients
    kill_signal = signal.SIGQUIT  # "immediate" shutdown
    death_signal = signal.SIGQUIT
    superuser = "postgres"

    def __init__(
        self,
        *,
        port: int | None = None,
        auth: str = "trust",
        bindir: Path | None = None,
        max_connections: int = 200,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(port=port)
        if auth not in {"trust", "scram-sha-256", "md5"}:
            raise ValueError(f"unsupported auth method {auth!r}")
        self.auth = auth
        self.superuser_password: str | None = None if auth == "trust" else os.urandom(12).hex()
        self.max_connections = max_connections
        self.extra_settings = dict(settings or {})
        self._bindir = bindir
        self._run_as: _RunAs | None = None
        self.initdb_seconds: float | None = None

    # -- layout
    @property
    def bindir(self) -> Path:
        if self._bindir is None:
            self._bindir = find_postgres_bindir()
        return self._bindir

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def socket_dir(self) -> Path:
        return self.directory / "sock"

    def _resolve_run_as(self) -> _RunAs | None:
        if os.geteuid() != 0:
            return None
        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            raise ServerUnavailable(
                "running as root, but there is no `postgres` OS user to run the PostgreSQL cluster as "
                "(initdb refuses root; install postgresql or create that user)"
            ) from None
        return _RunAs(entry.pw_uid, entry.pw_gid, entry.pw_name)

    def _popen_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"env": _clean_env(HOME=str(self.directory))}
        if self._run_as is not None:
            kwargs.update(user=self._run_as.uid, group=self._run_as.gid, extra_groups=[])
        return kwargs

    def _prepare(self) -> None:
        if self._dir is not None and (self.data_dir / "PG_VERSION").exists():
            return  # restart on the existing cluster
        initdb = self.bindir / "initdb"  # raises ServerUnavailable when missing
        self._run_as = self._resolve_run_as()
        directory = self._make_dir(for_other_user=self._run_as is not None)
        self.socket_dir.mkdir(exist_ok=True)
        command = [
            str(initdb),
            "-D",
            str(self.data_dir),
            "-U",
            self.superuser,
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "--auth-local=trust",
            f"--auth-host={self.auth}",
        ]
        if self.superuser_password is not None:
            pwfile = directory / "pwfile"
            pwfile.write_text(self.superuser_password + "\n")
            command.append(f"--pwfile={pwfile}")
        if self._run_as is not None:
            for path in (directory, self.socket_dir, *directory.glob("pwfile")):
                os.chown(path, self._run_as.uid, self._run_as.gid)
        began = time.monotonic()
        try:
            result = subprocess.run(
                command, cwd=directory, capture_output=True, timeout=120, check=False, **self._popen_kwargs()
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ServerUnavailable(f"initdb could not run ({' '.join(command)}): {exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                (directory / "pwfile").unlink()
        self.initdb_seconds = time.monotonic() - began
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode(errors="replace").strip().splitlines()
            raise ServerUnavailable(
                f"initdb failed with code {result.returncode} ({' '.join(command)}):\n"
                + "\n".join(output[-_LOG_TAIL_LINES:])
            )

    def _command(self, port: int) -> list[str]:
        settings = {
            "listen_addresses": self.host,
            "unix_socket_directories": str(self.socket_dir),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": str(self.max_connections),
            "logging_collector": "off",
            "log_min_messages": "warning",
            **self.extra_settings,
        }
        command = [str(self.bindir / "postgres"), "-D", str(self.data_dir), "-p", str(port)]
        for key, value in settings.items():
            command += ["-c", f"{key}={value}"]
        return command

    def _ping(self) -> bool:
        # Over our own unix socket: a foreign process on the TCP port can neither answer nor stall us.
        conninfo = psycopg.conninfo.make_conninfo(
            host=str(self.socket_dir),
            port=self.port,
            user=self.superuser,
            dbname="postgres",
            connect_timeout=2,
        )
        try:
            with psycopg.connect(conninfo):
                return True
        except psycopg.OperationalError:
            return False

    # -- connection strings
    def dsn(self, database: str = "postgres", *, user: str | None = None, password: str | None = None) -> str:
        """A libpq URL ``postgresql://user[:password]@127.0.0.1:port/database`` (default: superuser)."""
        return self._url("postgresql", database, user, password)

    def url(
        self,
        database: str = "postgres",
        *,
        user: str | None = None,
        password: str | None = None,
        driver: str = "postgresql+psycopg",
    ) -> str:
        """A SQLAlchemy URL ``postgresql+psycopg://user[:password]@127.0.0.1:port/database``."""
        return self._url(driver, database, user, password)

    def _url(self, scheme: str, database: str, user: str | None, password: str | None) -> str:
        if user is None:
            user, password = self.superuser, password or self.superuser_password
        auth = quote(user, safe="")
        if password is not None:
            auth += ":" + quote(password, safe="")
        return f"{scheme}://{auth}@{self.host}:{self.port}/{quote(database, safe='')}"

    @property
    def superuser_dsn(self) -> str:
        return self.dsn()

    @property
    def superuser_url(self) -> str:
        return self.url()

    # -- administration (as superuser, autocommit)
    def connect(
        self,
        database: str = "postgres",
        *,
        user: str | None = None,
        password: str | None = None,
        autocommit: bool = True,
    ) -> psycopg.Connection[TupleRow]:
        return psycopg.connect(
            self.dsn(database, user=user, password=password), autocommit=autocommit, connect_timeout=10
        )

    def execute(
        self,
        query: LiteralString | sql.SQL | sql.Composed,
        params: tuple[Any, ...] | None = None,
        *,
        database: str = "postgres",
    ) -> list[tuple[Any, ...]]:
        """Run one statement as superuser; returns the rows (empty when the statement returns none)."""
        with self.connect(database) as conn, conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description is not None else []

    def create_database(self, name: str, owner: str | None = None) -> str:
        """CREATE DATABASE; returns its SQLAlchemy URL (as superuser)."""
        statement = sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(
            sql.Identifier(name)
        )
        if owner is not None:
            statement += sql.SQL(" OWNER {}").format(sql.Identifier(owner))
        self.execute(statement)
        return self.url(name)

    def drop_database(self, name: str, *, force: bool = True) -> None:
        """DROP DATABASE IF EXISTS ... WITH (FORCE): terminates the sessions still connected."""
        statement = sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name))
        if force:
            statement += sql.SQL(" WITH (FORCE)")
        self.execute(statement)

    def app_database(self, name: str = "forge") -> dict[str, str]:
        """A new database and an app role without BYPASSRLS (as in production): the ``database``
        settings section, ``url`` for the app role and ``migrations_url`` for the owner."""
        self.create_database(name)
        self.create_role(f"{name}_app", "app-password")
        return {
            "url": self.url(name, user=f"{name}_app", password="app-password"),
            "migrations_url": self.url(name),
        }

    def create_role(
        self,
        name: str,
        password: str | None = None,
        *,
        login: bool = True,
        superuser: bool = False,
        bypassrls: bool = False,
        createdb: bool = False,
    ) -> None:
        options = [
            "LOGIN" if login else "NOLOGIN",
            "SUPERUSER" if superuser else "NOSUPERUSER",
            "BYPASSRLS" if bypassrls else "NOBYPASSRLS",
            "CREATEDB" if createdb else "NOCREATEDB",
        ]
        statement = sql.SQL("CREATE ROLE {} WITH " + " ".join(options)).format(sql.Identifier(name))
        if password is not None:
            statement += sql.SQL(" PASSWORD {}").format(sql.Literal(password))
        self.execute(statement)

    def drop_role(self, name: str) -> None:
        self.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


class RedisServer(_Server):
    """A throwaway ``redis-server``: no persistence, 127.0.0.1 plus a unix socket in its temp dir."""

    name = "redis"
    stop_signal = signal.SIGTERM
    kill_signal = signal.SIGKILL
    death_signal = signal.SIGTERM

    def __init__(self, *, port: int | None = None, binary: Path | None = None, databases: int = 16) -> None:
        super().__init__(port=port)
        self._binary = binary
        self.databases = databases

    @property
    def binary(self) -> Path:
        if self._binary is None:
            self._binary = find_redis_server()
        return self._binary

    @property
    def unix_socket(self) -> Path:
        return self.directory / "redis.sock"

    def _prepare(self) -> None:
        _ = self.binary  # raises ServerUnavailable when missing
        self._make_dir()

    def _popen_kwargs(self) -> dict[str, Any]:
        return {"env": _clean_env()}

    def _command(self, port: int) -> list[str]:
        return [
            str(self.binary),
            "--port", str(port),
            "--bind", self.host,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
            "--unixsocket", str(self.unix_socket),
            "--unixsocketperm", "700",
            "--databases", str(self.databases),
            "--daemonize", "no",
            "--logfile", "",  # log to stdout, which goes to log_path
        ]  # fmt: skip

    def _ping(self) -> bool:
        # Over our own unix socket, without redis-py's default retries (they add seconds per failed ping).
        client = redis.Redis(
            unix_socket_path=str(self.unix_socket),
            socket_timeout=2,
            socket_connect_timeout=2,
            retry=_NO_RETRY,
        )
        try:
            with client:
                return bool(client.ping())
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
            return False

    def url_for(self, db: int = 0) -> str:
        return f"redis://{self.host}:{self.port}/{db}"

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:port/0``"""
        return self.url_for(0)

    @property
    def unix_url(self) -> str:
        return f"unix://{self.unix_socket}?db=0"

    def flushall(self) -> None:
        with redis.Redis(host=self.host, port=self.port, socket_timeout=10) as client:
            client.flushall()


def iter_live_servers() -> Iterator[_Server]:
    """Servers started by this process and not closed yet (for diagnostics)."""
    return iter(list(_LIVE))
