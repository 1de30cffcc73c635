"""Ask the API for jobs by state, kind and tenant (by slug). Input that cannot be a filter is refused in the
dialog, with the reason, and never sent."""

from __future__ import annotations

import re
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.widgets import Input, Select

from console.screens.form_dialog import QueryDialog

#: The job states of the API (queued, running, succeeded, dead, cancelled), in their lifecycle's order.
STATES = ("queued", "running", "succeeded", "dead", "cancelled")
KIND = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")
KIND_MAX = 64  # the API's limit
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")  # the API's rule for a tenant's slug


@dataclass(frozen=True)
class JobQuery:
    """Server-side filters as typed and checked by `parse`; "" is no filter. The tenant is a slug: the view
    looks its id up."""

    state: str = ""
    kind: str = ""
    tenant: str = ""

    @classmethod
    def parse(cls, state: str, kind: str, tenant: str) -> JobQuery:
        """The filters, or ValueError naming the field and the value that cannot be one."""
        state, kind, tenant = state.strip().lower(), kind.strip().lower(), tenant.strip().lower()
        if state and state not in STATES:
            raise ValueError(f"state: {state!r} is not a job state (one of: {', '.join(STATES)})")
        if kind and (len(kind) > KIND_MAX or not KIND.match(kind)):
            raise ValueError(f"kind: {kind!r} is not a job kind (such as webhooks.deliver)")
        if tenant and not SLUG.match(tenant):
            raise ValueError(f"tenant: {tenant!r} is not a tenant's slug (lower-case letters, digits, '-')")
        return cls(state, kind, tenant)

    def describe(self) -> str:
        parts = [f"{name} {value}" for name, value in vars(self).items() if value]
        return ", ".join(parts) if parts else "every job"


class JobQueryDialog(QueryDialog[JobQuery]):
    """Dismissed with the new filters (all empty: every job), or None when cancelled."""

    TITLE = "Query the jobs of every tenant"
    DIALOG_ID = "job-query"
    FIRST = "state"

    def fields(self) -> ComposeResult:
        current = self.current
        yield Select(
            [("any state", ""), *((f"state: {s}", s) for s in STATES)],
            value=current.state,
            allow_blank=False,
            id="state",
        )
        yield Input(current.kind, placeholder="kind: webhooks.deliver, tenants.export…", id="kind")
        yield Input(current.tenant, placeholder="tenant: a slug (acme)", id="tenant")

    def parsed(self) -> JobQuery:
        state = str(self.query_one("#state", Select).value)
        return JobQuery.parse(state, self.value("kind"), self.value("tenant"))

    def empty(self) -> JobQuery:
        return JobQuery()
