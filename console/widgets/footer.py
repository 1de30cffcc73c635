"""The views' footer: Textual's, rebuilt only when the keys it shows change.

Textual's footer rebuilds itself (every key a widget, each styled again) after every change of the screen's
bindings: each focus change, screen switch or refresh of the read-only gates, one rebuild per call even within
one frame. Showing a view with 30 keys while its table fills did that five times (about 0.3 s of a 10,000-row
load went to it). This one asks once per frame, and rebuilds only when the keys, their labels or their
enabled state differ from what it shows."""

from __future__ import annotations

from typing import Any

from textual.screen import Screen
from textual.widgets import Footer


class ViewFooter(Footer):
    _rebuild_asked = False
    _showing: tuple[Any, ...] | None = None

    def bindings_changed(self, screen: Screen[Any]) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus or self._rebuild_asked:
            return
        if self.is_attached and screen is self.screen:
            self._rebuild_asked = True
            self.call_after_refresh(self._rebuild_if_changed)

    async def _rebuild_if_changed(self) -> None:
        self._rebuild_asked = False
        if not self.is_attached:
            return
        showing = self.keys_shown()
        if showing != self._showing:
            self._showing = showing
            await self.recompose()

    def keys_shown(self) -> tuple[Any, ...]:
        """What the footer draws from: each active binding's key, action, label, tooltip and whether it is
        shown and enabled."""
        return tuple(
            (binding.key, binding.action, binding.description, binding.show, enabled, tooltip)
            for _node, binding, enabled, tooltip in self.screen.active_bindings.values()
        )
