"""Starting the console: `appliance console` builds a Target from the settings (or a targets file) and
calls `run`."""

from __future__ import annotations

from appliance.client.credentials import CredentialStore
from appliance.client.targets import Target
from console.app import ConsoleApp
from console.collector import freeze_start_up
from console.connection import Connection


def run(target: Target, *, read_only: bool = False, refresh: float = 2.0, view: str = "dashboard") -> None:
    """Run the console full screen until the operator quits."""
    freeze_start_up()
    app = ConsoleApp(
        Connection.open(target, CredentialStore()), read_only=read_only, refresh=refresh, first_view=view
    )
    app.run()
