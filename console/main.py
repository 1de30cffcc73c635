"""Starting the console: `appliance console` builds a Target from the settings (or a targets file) and
calls `run`."""

from __future__ import annotations

import gc

from appliance.client.credentials import CredentialStore
from appliance.client.targets import Target
from console.app import ConsoleApp
from console.connection import Connection

#: Young objects collected after this many allocations, not Python's 700: a page of 200 jobs is thousands of
#: objects, and the default had the collector run about 150 times and a full pass (0.1 s, every object of the
#: app) once in each load of 10,000 jobs.
YOUNG_COLLECTION = 20_000


def collect_less() -> None:
    """Keep the garbage collector off the screen's path: what is loaded at start (the modules, Textual's
    and Rich's tables, about 200k objects) is left out of its full passes, and young objects are collected
    in larger batches. Called once, before the app starts."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION, middle, old)


def run(target: Target, *, read_only: bool = False, refresh: float = 2.0, view: str = "dashboard") -> None:
    """Run the console full screen until the operator quits."""
    collect_less()
    app = ConsoleApp(
        Connection.open(target, CredentialStore()), read_only=read_only, refresh=refresh, first_view=view
    )
    app.run()
