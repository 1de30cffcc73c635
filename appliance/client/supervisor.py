"""Client of the supervisor's control socket (standard library only; see appliance.supervisor.control)."""

from __future__ import annotations

import itertools
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NotRequired, TypedDict, cast


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
    # From supervisors that know them (all of this version's):
    ready: NotRequired[bool]  # running, and the process has not said it cannot work (X_READY=0)
    status: NotRequired[str]  # the process's own last STATUS= words ("not ready: database unavailable: ...")
    stderr_tail: NotRequired[list[str]]  # its last stderr lines while it fails (backoff, crash-looping...)
    container: NotRequired[str | None]  # a container program's container name on the engine; None: a process
    # Only with status(usage=True); None when no process runs:
    cpu_seconds: NotRequired[float | None]  # user + system CPU of the process group
    rss_bytes: NotRequired[int | None]  # resident memory summed over the process group


class SupervisorInfo(TypedDict):
    """The supervisor process itself."""

    pid: int
    started_at: float
    version: str


class Status(TypedDict):
    """The answer to `status()`."""

    programs: list[ProgramStatus]
    supervisor: SupervisorInfo


class ExitRecord(TypedDict):
    """One past exit of a program's process."""

    time: float  # Unix seconds
    instance: int
    pid: int
    exit_status: int  # a code >= 0, or minus the signal number that killed it
    reason: str  # "exited with code 1", "killed by SIGKILL"
    ran_seconds: float  # from spawn to exit
    expected: bool  # the supervisor had asked it to stop
    stop_reason: str | None  # why it was asked ("stop asked", "health check failed 3 times"), else None


class ReloadResult(TypedDict):
    """The answer to `reload_detail(names)`."""

    programs: list[str]
    waited_for: list[str]  # programs whose reload was under way: this one waited for it, then rolled again
    joined: bool  # it shared a reload asked earlier that had not begun yet


class ProgramSpecInfo(TypedDict):
    """The answer to `spec(name)`."""

    spec: dict[str, Any]  # as parsed from the services file, secrets masked (see control.py)
    exits: list[ExitRecord]  # the last 50 at most, newest last


class SupervisorClient:
    """Talks newline-delimited JSON to `<run_dir>/control.sock`; one connection per call."""

    def __init__(self, socket_path: str | Path, timeout: float = 120.0) -> None:
        self.socket_path = Path(socket_path)
        self.timeout = timeout  # `stop` and `shutdown` answer only once the processes are gone

    def status(self, usage: bool = False) -> Status:
        """Every program instance and the supervisor's own pid, start time and version.

        With `usage`, each instance also carries `cpu_seconds` and `rss_bytes` (the supervisor reads /proc).
        """
        request: dict[str, Any] = {"cmd": "status", "usage": True} if usage else {"cmd": "status"}
        answer = self._call(request)
        return Status(programs=answer["programs"], supervisor=answer["supervisor"])

    def spec(self, name: str) -> ProgramSpecInfo:
        """Program `name`'s spec as the supervisor parsed it, and its recent exits (newest last)."""
        answer = self._call({"cmd": "spec", "name": name})
        return ProgramSpecInfo(spec=answer["spec"], exits=answer["exits"])

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

    def logs(self, name: str, lines: int = 100, since: float | None = None) -> list[str]:
        """The last `lines` log lines of a program (or "supervisor"), at or after `since` (Unix seconds)."""
        request: dict[str, Any] = {"cmd": "logs", "name": name, "lines": lines}
        if since is not None:
            request["since"] = since
        return cast(list[str], self._call(request)["lines"])

    def follow_logs(self, name: str, lines: int = 10, since: float | None = None) -> Iterator[str]:
        """The last `lines` lines, then every new line as it is written, until the caller stops iterating."""
        request: dict[str, Any] = {"cmd": "logs", "name": name, "lines": lines, "follow": True}
        if since is not None:
            request["since"] = since
        messages = self._stream(request, "logs", answer_first=True)
        first = next(messages, None)
        if first is None or not first.get("ok"):
            message = first.get("error") if first is not None else None
            raise SupervisorError(str(message or "the supervisor refused to follow the logs"))
        yield from cast(list[str], first["lines"])
        for message in messages:  # ends when the supervisor closes the connection (shutdown)
            if "line" not in message:  # {"ok": false, "error": "dropped: ..."}: too slow a reader
                raise SupervisorError(str(message.get("error", "the supervisor stopped the stream")))
            yield str(message["line"])

    def reload(self, names: list[str]) -> list[str]:
        """Replace these programs' processes one at a time (each new one ready before an old one stops).

        Returns once done; `SupervisorError` if a new process did not become ready (the old ones run on).
        """
        return cast(list[str], self._call({"cmd": "reload", "names": names})["programs"])

    def reload_detail(self, names: list[str]) -> ReloadResult:
        """`reload`, also saying whether it waited for a reload under way or joined one asked earlier."""
        answer = self._call({"cmd": "reload", "names": names})
        return ReloadResult(
            programs=list(answer["programs"]),
            waited_for=list(answer.get("waited_for", [])),
            joined=bool(answer.get("joined", False)),
        )

    def reload_config(self) -> dict[str, list[str]]:
        """Make the supervisor re-read its services file: {"changed", "added", "removed", "unchanged"}."""
        answer = self._call({"cmd": "reload-config"})
        return {key: list(answer[key]) for key in ("changed", "added", "removed", "unchanged")}

    def events(self, since: float | None = None) -> list[dict[str, Any]]:
        """The supervisor's recent events (at or after `since`, Unix seconds), oldest first."""
        request: dict[str, Any] = {"cmd": "events", "follow": False}
        if since is not None:
            request["since"] = since
        return cast(list[dict[str, Any]], self._call(request)["events"])

    def follow_events(self, since: float | None = None) -> Iterator[dict[str, Any]]:
        """The recent events, then each new one as it happens, until the caller stops iterating."""
        request: dict[str, Any] = {"cmd": "events", "follow": True}
        if since is not None:
            request["since"] = since
        for event in self._stream(request, "events", answer_first=False):
            if event.get("ok") is False:  # {"ok": false, "error": "dropped: ..."}: too slow a reader
                raise SupervisorError(str(event.get("error")))
            yield event

    def _stream(self, request: dict[str, Any], what: str, answer_first: bool) -> Iterator[dict[str, Any]]:
        """Send one following request and yield every JSON line the supervisor sends back. With
        `answer_first`, the first line is awaited within the client's timeout; later lines may be hours
        apart, so no timeout applies to them."""
        where = self.socket_path
        if not where.exists():
            raise SupervisorUnavailable(f"the supervisor is not running (no socket at {where})")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with sock, sock.makefile("rb") as stream:
            try:
                sock.settimeout(self.timeout)
                sock.connect(str(where))
                sock.sendall(json.dumps(request).encode() + b"\n")
                first = stream.readline() if answer_first else None
            except OSError as exc:
                raise SupervisorUnavailable(f"cannot follow {what} at {where}: {exc}") from exc
            sock.settimeout(None)
            lines = [first] if first else []
            for raw in itertools.chain(lines, stream):
                try:
                    message = json.loads(raw)
                except ValueError as exc:
                    raise SupervisorUnavailable(f"unreadable answer while following {what}: {exc}") from exc
                if not isinstance(message, dict):
                    raise SupervisorError(f"unexpected answer while following {what}: {message!r}")
                yield message

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
