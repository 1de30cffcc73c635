"""Run the long-lived processes: one API server (uvicorn) and one worker (the Huey consumer)."""

from __future__ import annotations

import gc
import logging
import socket
from functools import partial

from appliance import hostport
from appliance.config import Settings
from appliance.errors import OperationFailed
from appliance.keys import signing_key
from appliance.logs import setup as setup_logging

log = logging.getLogger(__name__)

#: After SIGTERM, the API finishes its in-flight requests within this many seconds: first it asks keep-alive
#: clients to reconnect elsewhere (at most KEEPALIVE_DRAIN_S), then uvicorn waits for what is still running
#: (the rest). Every request is bounded well below this (queue and pool waits, statement and lock timeouts).
#: The api's stop_timeout in config/services.toml stays above it, so that the supervisor never SIGKILLs a
#: process that is still answering (tests/test_systemd_unit.py checks both numbers).
DRAIN_S = 20
KEEPALIVE_DRAIN_S = 5


def serve_api(
    settings: Settings, host: str | None = None, port: int | None = None, fd: int | None = None
) -> None:
    """Serve the API until SIGTERM or SIGINT, draining connections and in-flight requests first.

    The listening socket is, in order: the descriptor given with ``fd``, the one inherited from the
    supervisor or systemd (``LISTEN_FDS``), or a new one bound to ``host:port``.
    """
    import uvicorn

    from appliance.api.app import create_app
    from appliance.api.server import DrainingServer, inherited_socket, socket_from_fd
    from appliance.program_status import StatusReporter, dependency_check
    from appliance.supervisor.listeners import backlog
    from appliance.workers import queue

    signing_key(settings)  # refuse a missing or default key before accepting any request
    setup_logging(settings.logging.level, settings.logging.json_format, "api")
    raise_open_files_limit()
    bind_host, bind_port = host or settings.api.host, port or settings.api.port
    listener = socket_from_fd(fd) if fd is not None else inherited_socket()
    if listener is None:
        check_port_free(bind_host, bind_port)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=bind_host,
        port=bind_port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=DRAIN_S - KEEPALIVE_DRAIN_S,
        lifespan="on",
        # uvicorn listens again on the socket it is given: keep the supervisor's (the kernel's longest).
        backlog=backlog(),
    )
    server = DrainingServer(config, app.state.drain, drain_timeout=KEEPALIVE_DRAIN_S)
    # Everything built so far lives as long as the process: keep it out of the collector's full passes,
    # which otherwise walk ~135k start-up objects and put 50+ ms on the p99 latency.
    gc.collect()
    gc.freeze()
    # Tells the supervisor whether this process can work (its database and queue answer): a process that
    # runs but cannot is shown "not ready" with the reason, not "running" (program_status.py).
    check = dependency_check(settings, partial(queue.ping, app.state.ctx.queue))
    reporter = StatusReporter(check, server.notify_socket).start()
    try:
        server.run(sockets=[listener] if listener is not None else None)
    finally:
        reporter.stop()


def serve_worker(settings: Settings, workers: int | None = None, periodic: bool | None = None) -> None:
    """Consume tasks until stopped."""
    from appliance.workers.consumer import run

    signing_key(settings)  # the same refusal as the API: production never runs on a default key
    setup_logging(settings.logging.level, settings.logging.json_format, "worker")
    run(settings, workers=workers, periodic=periodic)


def raise_open_files_limit() -> None:
    """Lift this process's soft limit on open files to its hard limit: each client connection is a file,
    and the usual soft limit (1024) would make a burst of connections fail in accept() rather than be
    answered (503 at worst)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open files limit from %d to %d: %s", soft, hard, exc)


def check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise OperationFailed(
                f"cannot listen on {hostport.join(host, port)}: {exc.strerror} "
                "(another process holds the port? set api.port or APPLIANCE_API__PORT)",
                details={"host": host, "port": port},
            ) from exc
