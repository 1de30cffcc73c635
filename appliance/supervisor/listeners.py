"""The TCP listening sockets of `listen` programs: bound once by the supervisor, shared by every instance."""

from __future__ import annotations

import socket

from appliance import hostport
from appliance.supervisor.specs import ServicesSpec, SpecError

LISTEN_FD = 3  # systemd's SD_LISTEN_FDS_START: the first passed socket is fd 3 in the child


def backlog(path: str = "/proc/sys/net/core/somaxconn") -> int:
    """The longest accept queue the kernel allows (net.core.somaxconn; 4096 on current Linux).

    Under a burst the API refuses what it cannot take with a 503, but only once it has accepted the
    connection: a connection that finds the accept queue full has its SYN dropped and is retried by the
    client's kernel 1, 3, 7 and 15 s later, so a short queue turns a burst of seconds into stragglers
    arriving for a quarter of a minute (and into the latency of the first requests after it).
    """
    try:
        with open(path, encoding="ascii") as f:
            return max(128, int(f.read().strip()))
    except (OSError, ValueError):
        return 4096


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host:port` (IPv6 when the host has a colon); raises OSError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog())
    except OSError:
        sock.close()
        raise
    return sock


class Listeners:
    """The sockets held, by address; a reload keeps the ones still used and binds only new addresses."""

    def __init__(self) -> None:
        self.by_address: dict[tuple[str, int], socket.socket] = {}

    def prepare(self, services: ServicesSpec) -> dict[tuple[str, int], socket.socket]:
        """Bind every address of `services` not held yet; raise `SpecError` naming a port in use.

        Nothing changes on error; on success, call `adopt` with the result.
        """
        fresh: dict[tuple[str, int], socket.socket] = {}
        for spec in services.programs:
            if spec.listen is None or spec.listen in self.by_address:
                continue
            host, port = spec.listen
            try:
                fresh[spec.listen] = bind(host, port)
            except OSError as exc:
                for sock in fresh.values():
                    sock.close()
                raise SpecError(
                    f"{services.path}: program {spec.name!r}: cannot listen on {hostport.join(host, port)}: "
                    f"{exc.strerror or exc} (another process holds the port?)"
                ) from exc
        return fresh

    def adopt(self, services: ServicesSpec, fresh: dict[tuple[str, int], socket.socket]) -> None:
        """Keep the sockets `services` uses; close the others (running children keep their own copy)."""
        self.by_address.update(fresh)
        used = {spec.listen for spec in services.programs if spec.listen is not None}
        for address in [a for a in self.by_address if a not in used]:
            self.by_address.pop(address).close()

    def fd_for(self, address: tuple[str, int] | None) -> int | None:
        """The descriptor to hand to a child of a program listening on `address`."""
        return None if address is None else self.by_address[address].fileno()

    def close(self) -> None:
        """Close every socket."""
        for sock in self.by_address.values():
            sock.close()
        self.by_address.clear()
