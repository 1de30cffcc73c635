"""Client of the supervisor's control socket (standard library only; see appliance.supervisor.control)."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any, TypedDict, cast


class SupervisorUnavailable(ConnectionError):
    """The supervisor is not running, or does not answer on its control socket."""


class SupervisorError(RuntimeError):
    """The supervisor refused a request (unknown program, unknown command...); the message says why."""


class ProgramStatus(TypedDict):
    """One instance of a program, as the supervisor sees it."""

    name: str
    instance: int
    state: str  # stopped | starting | running | backoff | stopping | exited | fatal
    pid: int | None
    started_at: float | None  # Unix seconds
    restarts: int
    crash_looping: bool
    exit_status: int | None  # last exit: code >= 0, or minus the signal number
    reason: str


class SupervisorInfo(TypedDict):
    """The supervisor process itself."""

    pid: int
    started_at: float
    version: str


class Status(TypedDict):
    """The answer to `status()`."""

    programs: list[ProgramStatus]
    supervisor: SupervisorInfo


class SupervisorClient:
    """Talks newline-delimited JSON to `<run_dir>/control.sock`; one connection per call."""

    def __init__(self, socket_path: str | Path, timeout: float = 120.0) -> None:
        self.socket_path = Path(socket_path)
        self.timeout = timeout  # `stop` and `shutdown` answer only once the processes are gone

    def status(self) -> Status:
        """Every program instance and the supervisor's own pid, start time and version."""
        answer = self._call({"cmd": "status"})
        return Status(programs=answer["programs"], supervisor=answer["supervisor"])

    def start(self, names: list[str]) -> list[str]:
        """Start programs (and what they depend on); "all" names every program. Returns the names."""
        return cast(list[str], self._call({"cmd": "start", "names": names})["programs"])

    def stop(self, names: list[str]) -> list[str]:
        """Stop programs; returns once their processes are gone."""
        return cast(list[str], self._call({"cmd": "stop", "names": names})["programs"])

    def restart(self, names: list[str]) -> list[str]:
        """Replace the processes of these programs with fresh ones."""
        return cast(list[str], self._call({"cmd": "restart", "names": names})["programs"])

    def shutdown(self) -> None:
        """Stop every program and the supervisor; returns once they are stopped."""
        self._call({"cmd": "shutdown"})

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        where = self.socket_path
        if not where.exists():
            raise SupervisorUnavailable(f"the supervisor is not running (no socket at {where})")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(str(where))
                sock.sendall(json.dumps(request).encode() + b"\n")
                data = b""
                while not data.endswith(b"\n"):
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    data += chunk
        except (ConnectionRefusedError, FileNotFoundError) as exc:
            raise SupervisorUnavailable(
                f"the supervisor is not running (nothing listens on {where})"
            ) from exc
        except TimeoutError as exc:
            raise SupervisorUnavailable(
                f"the supervisor did not answer within {self.timeout:g}s ({where})"
            ) from exc
        except OSError as exc:
            raise SupervisorUnavailable(f"cannot talk to the supervisor at {where}: {exc}") from exc
        if not data:
            raise SupervisorUnavailable(f"the supervisor closed the connection without answering ({where})")
        try:
            answer = json.loads(data)
        except ValueError as exc:
            raise SupervisorUnavailable(f"the supervisor sent an answer that is not JSON ({where})") from exc
        if not isinstance(answer, dict):
            raise SupervisorUnavailable(f"the supervisor sent an unexpected answer ({where})")
        if not answer.get("ok"):
            raise SupervisorError(str(answer.get("error", "the supervisor refused the request")))
        return answer
