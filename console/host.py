"""What the views, the status bar and the palette may ask of the running console: a protocol below app.py.

The screens are shown by the app, so the app imports them; were they to import the app back (even for a
type), the two would form a cycle. They reach the app through :func:`host` instead, typed by
:class:`ConsoleHost`, which console.app.ConsoleApp satisfies (mypy checks it there).
"""

from __future__ import annotations

from typing import Any, Protocol, cast

from textual.app import App

from appliance.client.errors import Unauthorized
from console.commands import Command
from console.connection import Connection
from console.state import ConsoleState


class ConsoleHost(Protocol):
    """The running console, as the parts it shows see it."""

    connection: Connection
    state: ConsoleState
    signed_in_as: str | None
    tenants: dict[str, dict[str, Any]]
    session_generation: int  # counts sign-ins: a view reloads its data when it changes

    @property
    def read_only(self) -> bool:
        """Forced, or an operator without write rights: the one gate."""

    def allows(self, screen: str, action: str) -> bool: ...

    def refuse_if_read_only(self, screen: str, action: str) -> bool: ...

    async def sign_in(self, email: str, password: str, code: str | None) -> None: ...

    def action_sign_out(self) -> object: ...

    def session_ended(self, error: Unauthorized) -> None: ...

    def run_command(self, command: Command) -> None: ...

    def jump(self, view: str, key: str) -> None: ...

    def program_names(self) -> list[str]: ...


def host(app: App[Any]) -> ConsoleHost:
    """The console that runs ``app``'s screens (a ConsoleApp: the only App that shows them)."""
    return cast(ConsoleHost, app)
