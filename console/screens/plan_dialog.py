"""Change a tenant's plan: the dialog names the tenant and its current plan."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Select

from console.screens.tenant_form import PLANS


class PlanDialog(ModalScreen[str | None]):
    """Dismissed with the new plan, or None when cancelled or unchanged."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, slug: str, current: str) -> None:
        super().__init__()
        self.slug, self.current = slug, current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Change the plan of tenant {self.slug}", classes="dialog-title")
            yield Label(f"Now: {self.current}. Its rate limits follow the plan.")
            yield Select([(p, p) for p in PLANS], value=self.current, allow_blank=False, id="plan")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Change", id="change", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        plan = str(self.query_one(Select).value)
        self.dismiss(plan if event.button.id == "change" and plan != self.current else None)

    def action_cancel(self) -> None:
        self.dismiss(None)
