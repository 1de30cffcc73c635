"""The API's uvicorn server: a shared listening socket handed down by the supervisor, and a shutdown that
drains keep-alive connections so that a rolling restart drops no request."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import MutableMapping

import uvicorn

from appliance.api.middleware import Drain
from appliance.supervisor.notify import notify

log = logging.getLogger(__name__)

#: The first inherited descriptor in the socket-activation convention (systemd's SD_LISTEN_FDS_START).
LISTEN_FDS_START = 3


def inherited_socket(environ: MutableMapping[str, str] = os.environ) -> socket.socket | None:
    """The listening socket passed by the supervisor or systemd (``LISTEN_FDS``), or None.

    The variables are removed once read, so that processes this one starts do not take the socket too.
    """
    count = environ.pop("LISTEN_FDS", None)
    pid = environ.pop("LISTEN_PID", None)
    environ.pop("LISTEN_FDNAMES", None)
    if not count or int(count) < 1 or (pid is not None and int(pid) != os.getpid()):
        return None
    return socket_from_fd(LISTEN_FDS_START)


def socket_from_fd(fd: int) -> socket.socket:
    """A socket object for an inherited descriptor, with its real family.

    uvicorn's own ``fd=`` wraps the descriptor as AF_UNIX, so an inherited TCP socket would get no
    TCP_NODELAY (Nagle and delayed ACKs then add ~40 ms to every response).
    """
    return socket.socket(fileno=fd)


class DrainingServer(uvicorn.Server):
    """On SIGTERM: stop accepting, answer every further request with ``Connection: close`` so that clients
    reconnect to the processes still accepting on the shared socket, wait for the connections to close
    (at most ``drain_timeout``), then shut down as uvicorn does (finishing what is in flight)."""

    def __init__(self, config: uvicorn.Config, drain: Drain, drain_timeout: float = 5.0):
        super().__init__(config)
        self.drain = drain
        self.drain_timeout = drain_timeout
        # Read once: the supervisor (or systemd) waits for this process's own READY=1, which tells it apart
        # from the other instances on the shared socket; processes this one starts must not send it.
        self.notify_socket = os.environ.pop("NOTIFY_SOCKET", None)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            notify("READY=1", self.notify_socket)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        self.drain.draining = True
        notify("STOPPING=1", self.notify_socket)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.drain_timeout
        while self.server_state.connections and loop.time() < deadline and not self.force_exit:
            await asyncio.sleep(0.02)
        if self.server_state.connections:
            log.info("closing %d idle connection(s) after draining", len(self.server_state.connections))
        await super().shutdown(sockets=None)
