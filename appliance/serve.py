"""Run the long-lived processes: one API server (uvicorn) and one worker (the Huey consumer)."""

from __future__ import annotations

import gc
import logging
import socket

from appliance.config import Settings
from appliance.errors import OperationFailed
from appliance.keys import signing_key
from appliance.logs import setup as setup_logging

log = logging.getLogger(__name__)


def serve_api(
    settings: Settings, host: str | None = None, port: int | None = None, fd: int | None = None
) -> None:
    """Serve the API until SIGTERM or SIGINT, draining in-flight requests first."""
    import uvicorn

    from appliance.api.app import create_app

    signing_key(settings)  # refuse a missing or default key before accepting any request
    setup_logging(settings.logging.level, settings.logging.json_format, "api")
    bind_host, bind_port = host or settings.api.host, port or settings.api.port
    # uvicorn's own fd= wraps the descriptor as AF_UNIX, so an inherited TCP socket would get no
    # TCP_NODELAY (Nagle and delayed ACKs then add ~40 ms to every response); a socket object built from
    # the descriptor keeps its real family.
    sockets = [socket.socket(fileno=fd)] if fd is not None else None
    if sockets is None:
        check_port_free(bind_host, bind_port)
    config = uvicorn.Config(
        create_app(settings),
        host=bind_host,
        port=bind_port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=30,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    # Everything built so far lives as long as the process: keep it out of the collector's full passes,
    # which otherwise walk ~135k start-up objects and put 50+ ms on the p99 latency.
    gc.collect()
    gc.freeze()
    server.run(sockets=sockets)


def serve_worker(settings: Settings, workers: int | None = None, periodic: bool | None = None) -> None:
    """Consume tasks until stopped."""
    from appliance.workers.consumer import run

    signing_key(settings)  # the same refusal as the API: production never runs on a default key
    setup_logging(settings.logging.level, settings.logging.json_format, "worker")
    run(settings, workers=workers, periodic=periodic)


def check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise OperationFailed(
                f"cannot listen on {host}:{port}: {exc.strerror} (another process holds the port? "
                "set api.port or APPLIANCE_API__PORT)",
                details={"host": host, "port": port},
            ) from exc
