"""Asynchronous client of the supervisor's control socket, for the console's event loop (standard library
only; the protocol is in appliance.supervisor.control). Each call opens its own connection and gives up
after `timeout`, so a hung supervisor shows as unavailable instead of freezing the caller; cancelling a
call (quitting the console) closes its connection at once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

from appliance.client.supervisor import ProgramStatus, Status, SupervisorError, SupervisorUnavailable

LIMIT = 8 << 20  # the longest answer line accepted (a logs answer of 10,000 lines)


class AsyncSupervisorClient:
    """Talks newline-delimited JSON to the supervisor's control socket."""

    def __init__(self, socket_path: str | Path, timeout: float = 5.0) -> None:
        self.socket_path = Path(socket_path)
        self.timeout = timeout

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        where = self.socket_path
        if not where.exists():
            raise SupervisorUnavailable(f"the supervisor is not running (no socket at {where})")
        try:
            return await asyncio.wait_for(asyncio.open_unix_connection(str(where), limit=LIMIT), self.timeout)
        except (ConnectionRefusedError, FileNotFoundError) as exc:
            raise SupervisorUnavailable(
                f"the supervisor is not running (nothing listens on {where})"
            ) from exc
        except TimeoutError as exc:
            raise SupervisorUnavailable(f"the supervisor did not answer within {self.timeout:g}s") from exc
        except OSError as exc:
            raise SupervisorUnavailable(f"cannot talk to the supervisor at {where}: {exc}") from exc

    @staticmethod
    def _decode(raw: bytes) -> dict[str, Any]:
        if not raw:
            raise SupervisorUnavailable("the supervisor closed the connection without answering")
        try:
            answer = json.loads(raw)
        except ValueError as exc:
            raise SupervisorUnavailable("the supervisor sent an answer that is not JSON") from exc
        if not isinstance(answer, dict):
            raise SupervisorUnavailable("the supervisor sent an unexpected answer")
        return answer

    async def call(self, request: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """One request, one answer; `SupervisorError` when the supervisor refuses it."""
        reader, writer = await self._open()
        try:
            writer.write(json.dumps(request).encode() + b"\n")
            await writer.drain()
            raw = await asyncio.wait_for(reader.readline(), timeout or self.timeout)
        except TimeoutError as exc:
            raise SupervisorUnavailable(
                f"the supervisor did not answer {request['cmd']!r} within {timeout or self.timeout:g}s"
            ) from exc
        except (OSError, ValueError) as exc:  # ValueError: a line longer than LIMIT
            raise SupervisorUnavailable(
                f"lost the supervisor while asking {request['cmd']!r}: {exc}"
            ) from exc
        finally:
            writer.close()
        answer = self._decode(raw)
        if not answer.get("ok"):
            raise SupervisorError(str(answer.get("error", "the supervisor refused the request")))
        return answer

    async def status(self, usage: bool = False) -> Status:
        request: dict[str, Any] = {"cmd": "status", "usage": True} if usage else {"cmd": "status"}
        answer = await self.call(request)
        return Status(programs=cast(list[ProgramStatus], answer["programs"]), supervisor=answer["supervisor"])

    async def act(self, verb: str, names: list[str], timeout: float = 120.0) -> list[str]:
        """start, stop, restart or reload programs; stop and reload answer when they are done."""
        if verb not in ("start", "stop", "restart", "reload"):
            raise ValueError(f"unknown verb {verb!r}")
        answer = await self.call({"cmd": verb, "names": names}, timeout=timeout)
        return cast(list[str], answer["programs"])

    async def spec(self, name: str) -> dict[str, Any]:
        """A program's spec and its recent exits: {"spec": {...}, "exits": [...]}."""
        answer = await self.call({"cmd": "spec", "name": name})
        return {"spec": answer.get("spec", {}), "exits": answer.get("exits", [])}

    async def events(self, since: float | None = None) -> list[dict[str, Any]]:
        request: dict[str, Any] = {"cmd": "events", "follow": False}
        if since is not None:
            request["since"] = since
        return cast(list[dict[str, Any]], (await self.call(request))["events"])

    async def logs(self, name: str, lines: int = 200) -> list[str]:
        return cast(list[str], (await self.call({"cmd": "logs", "name": name, "lines": lines}))["lines"])

    async def follow_logs(self, name: str, lines: int = 200) -> AsyncIterator[str]:
        """The last `lines` lines of a program's log, then each new one, until the caller stops."""
        reader, writer = await self._open()
        try:
            request = {"cmd": "logs", "name": name, "lines": lines, "follow": True}
            writer.write(json.dumps(request).encode() + b"\n")
            await writer.drain()
            first = self._decode(await asyncio.wait_for(reader.readline(), self.timeout))
            if not first.get("ok"):
                raise SupervisorError(str(first.get("error", "the supervisor refused to follow the logs")))
            for line in cast(list[str], first["lines"]):
                yield line
            while raw := await reader.readline():
                message = self._decode(raw)
                if "line" not in message:  # dropped for reading too slowly
                    raise SupervisorError(str(message.get("error", "the supervisor stopped the stream")))
                yield str(message["line"])
        except TimeoutError as exc:
            raise SupervisorUnavailable("the supervisor did not start the log stream in time") from exc
        except (OSError, ValueError) as exc:
            raise SupervisorUnavailable(f"lost the log stream of {name}: {exc}") from exc
        finally:
            writer.close()
