"""Create an operator: e-mail address, display name (optional) and whether they may only read."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.widgets import Checkbox, Input, Label

from console.screens.form_dialog import FormDialog


@dataclass(frozen=True)
class NewOperator:
    email: str
    display_name: str | None
    read_only: bool


class OperatorForm(FormDialog[NewOperator]):
    """Dismissed with the values, or None when cancelled. The API checks them; its refusal is shown."""

    TITLE = "New operator"
    DIALOG_ID = "operator-form"
    FIRST = "email"

    def fields(self) -> ComposeResult:
        yield Input(placeholder="e-mail address (their login)", id="email")
        yield Input(placeholder="display name (optional)", id="display-name")
        yield Checkbox("Read-only: sees everything, changes nothing", id="read-only")
        yield Label("A one-time password is shown once; they choose their own at the first sign-in.")

    def parsed(self) -> NewOperator:
        email = self.value("email")
        if "@" not in email:
            raise ValueError("An e-mail address is needed.")
        read_only = self.query_one("#read-only", Checkbox).value
        return NewOperator(email, self.value("display-name") or None, read_only)
