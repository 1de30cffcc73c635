"""The command palette: every action of the command table, and a jump to any tenant or service."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from console import commands
from console.host import ConsoleHost, host

#: Tenants offered per query: the palette finds one to jump to, the tenants view lists them all.
TENANT_HITS = 30

Entry = tuple[str, str, Callable[[], object]]


class ConsoleCommands(Provider):
    """Actions first, then services and tenants by name."""

    @property
    def console(self) -> ConsoleHost:
        return host(self.app)

    def _actions(self) -> Iterator[Entry]:
        app = self.console
        for command in commands.COMMANDS:
            if command.action == "app.command_palette":
                continue
            where = "" if command.screen == commands.GLOBAL else f"{command.screen.title()}: "
            off = command.writes and app.read_only
            help_text = f"{command.help} (off: read-only)" if off else command.help
            yield f"{where}{command.title}", help_text, partial(app.run_command, command)

    def _services(self) -> Iterator[Entry]:
        for name in self.console.program_names():
            yield f"Service {name}", "show it in Services", partial(self.console.jump, "services", name)

    def _tenants(self, query: str) -> Iterator[Entry]:
        """Tenants whose slug or name contains the query's last word (a cheap cut before fuzzy matching:
        there may be ten thousand)."""
        words = query.lower().removeprefix("tenant").split()
        if not words:
            return
        needle, found = words[-1], 0
        for tenant in self.console.tenants.values():
            if needle in tenant["slug"] or needle in tenant["name"].lower():
                found += 1
                yield (
                    f"Tenant {tenant['slug']}",
                    f"{tenant['name']} · {tenant['plan']} · {tenant['status']}",
                    partial(self.console.jump, "tenants", str(tenant["id"])),
                )
                if found >= TENANT_HITS:
                    return

    async def discover(self) -> Hits:
        for title, help_text, run in self._actions():
            yield DiscoveryHit(title, run, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for entries in (self._actions(), self._services(), self._tenants(query)):
            for title, help_text, run in entries:
                score = matcher.match(title)
                if score > 0:
                    yield Hit(score, matcher.highlight(title), run, help=help_text)
