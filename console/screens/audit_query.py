"""Ask the API for audit records by action (or a prefix: `tenant.*`), actor and time, where a time is
RFC 3339 or an age (`30m`, `1h`, `2d`). Input that cannot be a filter is refused in the dialog, with the
reason, and never sent."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.widgets import Input

from console.screens.form_dialog import QueryDialog

AGE = re.compile(r"^(\d{1,9})\s*([smhdw])$")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
ACTION = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*)?$")
ACTION_MAX = 100  # the API's limit
TIME_HELP = "RFC 3339 (2026-11-22T01:27:39Z) or an age (30m, 1h, 2d, 1w)"


def parse_time(text: str, now: dt.datetime) -> dt.datetime:
    """An age before `now` (`1h`) or an RFC 3339 time, in UTC; ValueError saying what is wrong."""
    value = text.strip()
    age = AGE.match(value.lower())
    try:
        if age:
            return now - dt.timedelta(seconds=int(age[1]) * SECONDS[age[2]])
        moment = dt.datetime.fromisoformat(value)
    except (ValueError, OverflowError):
        raise ValueError(f"{value!r} is not a time: use {TIME_HELP}") from None
    return moment.astimezone(dt.UTC)  # a time without an offset is the operator's local time


def rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class AuditQuery:
    """Server-side filters as typed (checked by `parse`); an age is turned into a time at each load."""

    action: str = ""
    actor: str = ""
    since: str = ""
    until: str = ""

    @classmethod
    def parse(cls, action: str, actor: str, since: str, until: str, now: dt.datetime) -> AuditQuery:
        """The filters, or ValueError naming the field and the value that cannot be one."""
        action, actor, since, until = (v.strip() for v in (action, actor, since, until))
        action = action.lower()
        if action and (len(action) > ACTION_MAX or not ACTION.match(action)):
            raise ValueError(
                f"action: {action!r} is not an action (tenant.create) or a prefix ending in .* (tenant.*)"
            )
        if actor:
            try:
                actor = str(uuid.UUID(actor))
            except ValueError:
                raise ValueError(f"actor: {actor!r} is not a user id (a UUID)") from None
        times: dict[str, dt.datetime] = {}
        for name, value in (("since", since), ("until", until)):
            if value:
                try:
                    times[name] = parse_time(value, now)
                except ValueError as exc:
                    raise ValueError(f"{name}: {exc}") from None
        if "since" in times and "until" in times and times["since"] >= times["until"]:
            raise ValueError("since must be before until")
        return cls(action, actor, since, until)

    def params(self, now: dt.datetime) -> dict[str, str]:
        """The query parameters of GET /api/v1/audit-logs/platform, ages counted back from `now`."""
        params = {"action": self.action, "actor": self.actor}
        for name, value in (("since", self.since), ("until", self.until)):
            if value:
                params[name] = rfc3339(parse_time(value, now))
        return {k: v for k, v in params.items() if v}

    def describe(self) -> str:
        parts = [f"{k} {v}" for k, v in vars(self).items() if v]
        return ", ".join(parts) if parts else "no filter"


class AuditQueryDialog(QueryDialog[AuditQuery]):
    """Dismissed with the new filters (all empty: no filter), or None when cancelled."""

    TITLE = "Query the platform's audit trail"
    DIALOG_ID = "audit-query"
    CLASSES = "dialog wide"
    FIRST = "action"

    def fields(self) -> ComposeResult:
        current = self.current
        yield Input(current.action, placeholder="action: tenant.create, or a prefix: tenant.*", id="action")
        yield Input(current.actor, placeholder="actor: a user id (UUID)", id="actor")
        since = "since: 1h, 2d, or 2026-11-22T01:27:39Z (without an offset: local time)"
        yield Input(current.since, placeholder=since, id="since")
        yield Input(current.until, placeholder="until: 30m, or 2026-11-22T02:00:00Z", id="until")

    def parsed(self) -> AuditQuery:
        action, actor, since, until = (self.value(name) for name in ("action", "actor", "since", "until"))
        return AuditQuery.parse(action, actor, since, until, dt.datetime.now(dt.UTC))

    def empty(self) -> AuditQuery:
        return AuditQuery()
