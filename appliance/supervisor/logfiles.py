"""Program logs as a whole: rotating files, housekeeping, `logs` answers and followers."""

from __future__ import annotations

import os
import selectors
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.supervisor.control import Detach, Reply, error
from appliance.supervisor.logfollow import Follower
from appliance.supervisor.logpolicy import LogPolicy, read_log_policy
from appliance.supervisor.logread import MAX_LINES, read_tail
from appliance.supervisor.output import LogFile
from appliance.supervisor.rotation import Housekeeper
from appliance.supervisor.specs import ServicesSpec

SUPERVISOR = "supervisor"  # the name of the supervisor's own log, `supervisor.log`
QUOTA_INTERVAL = 60.0  # seconds between quota checks when nothing rotates (current files grow too)
DEFAULT_LINES = 100


@dataclass(frozen=True)
class LogsRequest:
    """A checked `{"cmd": "logs", ...}` request."""

    name: str
    lines: int
    since: float | None
    follow: bool


def parse_logs_request(request: Mapping[str, Any]) -> LogsRequest:
    """Check the fields of a `logs` request; ValueError says which one is wrong."""
    name, lines, since = request.get("name"), request.get("lines"), request.get("since")
    follow = request.get("follow", False)
    if not isinstance(name, str) or not name:
        raise ValueError('"logs" needs "name": a program name, or "supervisor"')
    if lines is None:
        lines = DEFAULT_LINES if since is None else MAX_LINES
    if isinstance(lines, bool) or not isinstance(lines, int) or lines < 0:
        raise ValueError(f'"lines" must be a whole number >= 0 (at most {MAX_LINES} are sent), not {lines!r}')
    if since is not None and (isinstance(since, bool) or not isinstance(since, int | float)):
        raise ValueError(f'"since" must be Unix seconds, not {since!r}')
    if not isinstance(follow, bool):
        raise ValueError(f'"follow" must be true or false, not {follow!r}')
    return LogsRequest(name, lines, None if since is None else float(since), follow)


class LogManager:
    """Everything about program logs that the runtime needs, behind four calls: open, tick, handle, close."""

    def __init__(
        self,
        services: ServicesSpec,
        log_dir: Path,
        log: Callable[[str], None],
        selector: selectors.BaseSelector,
        *,
        policy: LogPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.log_dir, self.selector, self.clock = log_dir, selector, clock
        self.policy = read_log_policy(services.path) if policy is None else policy
        # A program name stands for all its instances; an instance label (`api-2`) for itself.
        self.names: dict[str, list[str]] = {SUPERVISOR: [SUPERVISOR]}
        for spec in services.programs:
            labels = [spec.label(i) for i in range(1, spec.instances + 1)]
            self.names[spec.name] = labels
            self.names.update({label: [label] for label in labels})
        self.housekeeper = Housekeeper(log_dir, self.policy, log)
        self._files: list[LogFile] = []
        self._followers: dict[str, set[Follower]] = {}
        self._next_quota = 0.0
        self._supervisor_offset: int | None = None  # how far supervisor.log was sent to its followers

    def open(self, label: str) -> LogFile:
        """The rotating `<label>.log` (OSError if it cannot be opened)."""
        path = self.log_dir / f"{label}.log"
        file = LogFile(
            path,
            self.policy,
            on_rotated=self.housekeeper.rotated,
            on_line=self._line_writer(label),
            clock=self.clock,
        )
        self._files.append(file)
        return file

    def tick(self, now: float) -> None:
        """Rotate quiet files by age, check the quota now and then, feed followers of `supervisor`."""
        for file in self._files:
            file.tick(now)
        if now >= self._next_quota:
            self._next_quota = now + QUOTA_INTERVAL
            self.housekeeper.check_quota()
        if self._followers.get(SUPERVISOR):
            self._feed_supervisor_followers()
        monotonic = time.monotonic()
        for followers in self._followers.values():
            for follower in list(followers):
                follower.expire(monotonic)

    def handle(self, request: Mapping[str, Any], reply: Reply, detach: Detach | None) -> None:
        """Answer one `logs` request; with `follow`, take the connection over and stream new lines."""
        try:
            req = parse_logs_request(request)
        except ValueError as exc:
            reply(error(str(exc)))
            return
        labels = self.names.get(req.name)
        if labels is None:
            known = ", ".join(sorted(self.names))
            reply(error(f"unknown program {req.name!r} (logs: {known})"))
            return
        lines = read_tail(self.log_dir, labels, req.lines, req.since)
        if not req.follow:
            reply({"ok": True, "lines": lines})
            return
        if detach is None:
            reply(error('"follow" needs a connection of its own'))
            return
        follower = Follower(detach(), self.selector, self._forget)
        follower.send({"ok": True, "lines": lines})
        for label in labels:
            self._followers.setdefault(label, set()).add(follower)
        if SUPERVISOR in labels and self._supervisor_offset is None:
            self._supervisor_offset = self._supervisor_size()

    def close(self) -> None:
        """Close every follower; let the housekeeper finish compressing (bounded)."""
        for followers in list(self._followers.values()):
            for follower in list(followers):
                follower.close()
        self.housekeeper.close()

    def _line_writer(self, label: str) -> Callable[[str], None]:
        def on_line(text: str) -> None:
            followers = self._followers.get(label)
            if followers:
                for follower in list(followers):
                    if not follower.send({"line": text}):
                        followers.discard(follower)

        return on_line

    def _forget(self, follower: Follower) -> None:
        for followers in self._followers.values():
            followers.discard(follower)

    def _supervisor_size(self) -> int:
        try:
            return os.stat(self.log_dir / f"{SUPERVISOR}.log").st_size
        except OSError:
            return 0

    def _feed_supervisor_followers(self) -> None:
        # The event log writes its file directly, so its followers are fed from the file on each tick.
        offset = self._supervisor_offset or 0
        try:
            with open(self.log_dir / f"{SUPERVISOR}.log", "rb") as handle:
                handle.seek(offset)
                data = handle.read(1 << 20)
        except OSError:
            return
        complete = data[: data.rfind(b"\n") + 1]
        self._supervisor_offset = offset + len(complete)
        on_line = self._line_writer(SUPERVISOR)
        for raw in complete.splitlines():
            on_line(raw.decode(errors="replace"))
