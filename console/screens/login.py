"""Sign in to the target's API as an operator; escape goes on without (services still work)."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from appliance.client.errors import ApiError, ApiUnavailable, Unauthorized
from console.host import ConsoleHost, host


class LoginScreen(ModalScreen[bool]):
    """Dismissed with True once signed in, False when skipped."""

    BINDINGS = [Binding("escape", "skip", "Continue without signing in")]

    def __init__(self, reason: str = "", email: str = "") -> None:
        super().__init__()
        self.reason, self.email = reason, email

    @property
    def console(self) -> ConsoleHost:
        return host(self.app)

    def compose(self) -> ComposeResult:
        target = self.console.connection.target
        with Vertical(classes="dialog", id="login"):
            yield Label(f"Sign in to {target.name} ({target.api_url})", classes="dialog-title")
            yield Label(self.reason, id="login-reason")
            yield Input(value=self.email, placeholder="operator e-mail", id="email")
            yield Input(placeholder="password", password=True, id="password")
            yield Input(placeholder="two-factor code (if enabled)", id="mfa")
            yield Label("", id="login-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Sign in", id="sign-in", variant="primary")
                yield Button("Skip", id="skip")

    def on_mount(self) -> None:
        self.query_one("#login-reason", Label).display = bool(self.reason)
        self.query_one("#password" if self.email else "#email", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "email":
            self.query_one("#password", Input).focus()
        else:
            self.attempt()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "sign-in":
            self.attempt()
        else:
            self.dismiss(False)

    def action_skip(self) -> None:
        self.dismiss(False)

    @work(exclusive=True, group="login")
    async def attempt(self) -> None:
        email = self.query_one("#email", Input).value.strip()
        password = self.query_one("#password", Input).value
        code = self.query_one("#mfa", Input).value.strip() or None
        error = self.query_one("#login-error", Label)
        if not email or not password:
            error.update("Enter the e-mail and the password.")
            return
        error.update("Signing in…")
        try:
            await self.console.sign_in(email, password, code)
        except ApiUnavailable as exc:
            error.update(f"Cannot reach the API: {exc.message}")
            return
        except ApiError as exc:
            if exc.code.startswith("MFA"):
                error.update(f"{exc.message}: enter the code from the authenticator app.")
                self.query_one("#mfa", Input).focus()
            else:
                error.update(f"Not signed in: {exc.message}")
                if isinstance(exc, Unauthorized):
                    self.query_one("#password", Input).value = ""
                    self.query_one("#password", Input).focus()
            return
        self.dismiss(True)
