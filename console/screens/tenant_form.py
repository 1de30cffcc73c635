"""Create a tenant: slug, name, plan and (optionally) its owner's e-mail."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select

PLANS = ("free", "team", "business", "enterprise")


@dataclass(frozen=True)
class NewTenant:
    slug: str
    name: str
    plan: str
    owner_email: str | None


class TenantForm(ModalScreen[NewTenant | None]):
    """Dismissed with the values, or None when cancelled. The API checks them; its refusal is shown."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="tenant-form"):
            yield Label("New tenant", classes="dialog-title")
            yield Input(placeholder="slug (lower-case letters, digits, '-')", id="slug")
            yield Input(placeholder="name", id="name")
            yield Select([(p, p) for p in PLANS], value="free", allow_blank=False, id="plan")
            yield Input(placeholder="owner e-mail (optional)", id="owner")
            yield Label("", id="form-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Create", id="create", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#slug", Input).focus()

    def _submit(self) -> None:
        slug = self.query_one("#slug", Input).value.strip()
        name = self.query_one("#name", Input).value.strip()
        if not slug or not name:
            self.query_one("#form-error", Label).update("A slug and a name are needed.")
            return
        plan = self.query_one("#plan", Select).value
        owner = self.query_one("#owner", Input).value.strip() or None
        self.dismiss(NewTenant(slug, name, str(plan), owner))

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "create":
            self._submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
