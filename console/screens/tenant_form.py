"""Create a tenant: slug, name, plan and (optionally) its owner's e-mail."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.widgets import Input, Select

from console.screens.form_dialog import FormDialog

PLANS = ("free", "team", "business", "enterprise")


@dataclass(frozen=True)
class NewTenant:
    slug: str
    name: str
    plan: str
    owner_email: str | None


class TenantForm(FormDialog[NewTenant]):
    """Dismissed with the values, or None when cancelled. The API checks them; its refusal is shown."""

    TITLE = "New tenant"
    DIALOG_ID = "tenant-form"
    FIRST = "slug"

    def fields(self) -> ComposeResult:
        yield Input(placeholder="slug (lower-case letters, digits, '-')", id="slug")
        yield Input(placeholder="name", id="name")
        yield Select([(p, p) for p in PLANS], value="free", allow_blank=False, id="plan")
        yield Input(placeholder="owner e-mail (optional)", id="owner")

    def parsed(self) -> NewTenant:
        slug, name = self.value("slug"), self.value("name")
        if not slug or not name:
            raise ValueError("A slug and a name are needed.")
        plan = str(self.query_one("#plan", Select).value)
        return NewTenant(slug, name, plan, self.value("owner") or None)
