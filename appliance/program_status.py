"""Each long-lived program tells the supervisor whether it can do its work, so that failure is loud.

A process can run and still be useless: the API or a worker whose database refuses the app role's password
keeps running (it retries by itself), and to the supervisor it looked "running". A `StatusReporter` thread
checks the program's dependencies (the database answers at the schema this code needs, the queue answers)
every few seconds and sends each change on the supervisor's notify socket (appliance/supervisor/notify.py):

    X_READY=0
    STATUS=not ready: database unavailable: password authentication failed for user "forge_app"

and `X_READY=1` / `STATUS=ready` once it works again. The supervisor shows it in `appliance status`, writes
it to its log and stderr (the journal) and to its events. Without a notify socket (a process not run by the
supervisor) nothing is started. The reporter owns a database handle of its own that keeps no connection
between checks, so that it neither waits for the program's busy pool nor holds a connection.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from appliance.config import Settings
from appliance.db import migrate
from appliance.db.session import Database
from appliance.errors import Unavailable
from appliance.supervisor.notify import notify

log = logging.getLogger(__name__)

OK_EVERY_S = 15.0  # seconds between two checks while everything answers
FAILING_EVERY_S = 5.0  # ... and while something does not, so that recovery shows soon


def dependency_check(settings: Settings, ping_queue: Callable[[], None]) -> Callable[[], str | None]:
    """A check of the database (reachable, at the schema this code needs) and of the queue: None when
    both answer, else what is wrong in a few words ("database unavailable: <the driver's reason>").

    ``ping_queue`` raises Unavailable unless the queue answers (appliance.workers.queue.ping on the
    program's queue): given by the caller, so that this module, which the workers use, imports none of
    them."""
    database = Database(settings)

    def check() -> str | None:
        try:
            problem = migrate.schema_problem(database.ping())
        except Unavailable as exc:
            return f"database unavailable: {exc.reason or exc.message}"
        finally:
            database.dispose()  # no connection kept between checks
        if problem:
            return f"database schema: {problem}"
        try:
            ping_queue()
        except Unavailable as exc:
            return f"queue unavailable: {exc.reason or exc.message}"
        return None

    return check


class StatusReporter:
    """Runs `check` now and then on a daemon thread; sends what it finds when it changes."""

    def __init__(
        self,
        check: Callable[[], str | None],
        notify_socket: str | None,
        *,
        send: Callable[[str, str | None], bool] = notify,
        ok_every: float = OK_EVERY_S,
        failing_every: float = FAILING_EVERY_S,
    ) -> None:
        self.check, self.notify_socket, self.send = check, notify_socket, send
        self.ok_every, self.failing_every = ok_every, failing_every
        self._last: str | None = ""  # "" until the first check: the first result is always sent
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="status-reporter", daemon=True)

    def start(self) -> StatusReporter:
        """Start checking (nothing happens without a notify socket)."""
        if self.notify_socket:
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop checking (at most one check in flight is awaited)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def report_once(self) -> str | None:
        """Check once and send the result if it changed; return the problem (None when all is well)."""
        try:
            problem = self.check()
        except Exception as exc:  # a bug in a check must not end the reports
            log.exception("the status check failed")
            problem = f"the status check failed: {type(exc).__name__}: {exc}"
        if problem != self._last:
            if problem:
                log.warning("not ready: %s", problem)
                self.send(f"X_READY=0\nSTATUS=not ready: {problem}", self.notify_socket)
            else:
                if self._last:
                    log.info("ready again")
                self.send("X_READY=1\nSTATUS=ready", self.notify_socket)
            self._last = problem
        return problem

    def _run(self) -> None:
        while not self._stop.is_set():
            problem = self.report_once()
            self._stop.wait(self.failing_every if problem else self.ok_every)
