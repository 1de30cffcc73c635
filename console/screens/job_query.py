"""Ask the API for jobs by state, kind and tenant (by slug). Input that cannot be a filter is refused in the
dialog, with the reason, and never sent."""

from __future__ import annotations

import re
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select

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


class JobQueryDialog(ModalScreen[JobQuery | None]):
    """Dismissed with the new filters (all empty: every job), or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, current: JobQuery) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        query = self.current
        with Vertical(classes="dialog", id="job-query"):
            yield Label("Query the jobs of every tenant", classes="dialog-title")
            yield Select(
                [("any state", ""), *((f"state: {s}", s) for s in STATES)],
                value=query.state,
                allow_blank=False,
                id="state",
            )
            yield Input(query.kind, placeholder="kind: webhooks.deliver, tenants.export…", id="kind")
            yield Input(query.tenant, placeholder="tenant: a slug (acme)", id="tenant")
            yield Label("", id="query-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Query", id="apply", variant="primary")
                yield Button("Clear", id="clear")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#state", Select).focus()

    @property
    def error(self) -> str:
        """The message shown for input that cannot be sent ("" when there is none)."""
        return str(self.query_one("#query-error", Label).content)

    def _submit(self) -> None:
        try:
            query = JobQuery.parse(
                str(self.query_one("#state", Select).value),
                self.query_one("#kind", Input).value,
                self.query_one("#tenant", Input).value,
            )
        except ValueError as exc:
            self.query_one("#query-error", Label).update(str(exc))
            return
        self.dismiss(query)

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "apply":
            self._submit()
        elif event.button.id == "clear":
            self.dismiss(JobQuery())
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
