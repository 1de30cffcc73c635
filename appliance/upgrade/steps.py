"""The upgrade step by step, run by the new version from the venv the stage made: preflight, backup,
migrate, switch, restart, health; on any failure after the preflight, the rollback (rollback.py).

The old version serves throughout: the backup is taken online, the migrations are expanding ones (a
contracting one is refused while old processes run, unless the admin accepts a stop), the switch is one
rename, and the supervisor replaces each process only once its successor is ready.
"""

from __future__ import annotations

import fcntl
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from appliance import __version__
from appliance.config import Settings
from appliance.db import migrate
from appliance.errors import ApplianceError, InvalidInput, OperationFailed
from appliance.upgrade import backup, preflight, schema
from appliance.upgrade.journal import Context, Echo, Journal
from appliance.upgrade.layout import MARKER, Layout, remove_venv
from appliance.upgrade.rollback import rollback
from appliance.upgrade.running import check_replaced, client_for, roll, wait_serving

STEPS = ("preflight", "backup", "migrate", "switch", "restart", "health")
SERVING_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Request:
    """`appliance upgrade ... --staged DIR`: the stable venv path, the venv staged for the new version, how
    to read the settings (with this version's rules), and the options."""

    layout: Layout
    staged: Path
    config_path: Path | None
    load_settings: Callable[[], Settings]
    echo: Echo
    check_only: bool = False
    allow_downtime: bool = False


def upgrade(request: Request) -> None:
    """Upgrade to this version; OperationFailed (after the rollback) when it could not."""
    _check_staged(request.layout, request.staged)
    with _alone(request.layout):
        _upgrade(request)


@contextmanager
def _alone(layout: Layout) -> Iterator[None]:
    """One upgrade of an installation at a time: a second one would switch and roll the same processes."""
    with (layout.releases / ".upgrade.lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OperationFailed(f"another upgrade of {layout.venv} is running") from None
        yield


def _upgrade(request: Request) -> None:
    began = time.monotonic()
    layout, staged, echo = request.layout, request.staged, request.echo
    ctx = Context(layout, staged, request.config_path, echo)
    previous = layout.current()

    _header(echo, "preflight")
    inputs = preflight.Inputs(request.load_settings, layout, allow_downtime=request.allow_downtime)
    findings = preflight.run(inputs, lambda check: echo(_check_line(check)))
    if findings.failures or request.check_only:
        remove_venv(staged)
    if findings.failures:
        first = findings.failures[0]
        more = f" (and {len(findings.failures) - 1} more above)" if len(findings.failures) > 1 else ""
        raise OperationFailed(f"upgrade refused: {first.name}: {first.detail}{more}; nothing was changed")
    if request.check_only:
        echo(f"preflight passed: `appliance upgrade` can go to {__version__} (nothing was changed)")
        return
    assert findings.settings is not None
    journal = Journal(findings.settings, findings.old_version, __version__, findings.running, previous)
    step = STEPS[1]
    try:
        for step, action in zip(STEPS[1:], (_backup, _migrate, _switch, _restart, _health), strict=True):
            _header(echo, step)
            action(ctx, journal, findings)
    except (Exception, KeyboardInterrupt) as exc:  # anything at all: the appliance goes back to where it was
        reason = exc.message if isinstance(exc, ApplianceError) else f"{type(exc).__name__}: {exc}"
        echo(f"FAILED at {step}: {reason}")
        echo("rolling back")
        problems = rollback(ctx, journal)
        what = f"the upgrade {journal.old_version} -> {__version__} failed at {step}: {reason}"
        if problems:
            raise OperationFailed(f"{what}; the rollback did not finish: {'; '.join(problems)}") from exc
        raise OperationFailed(f"{what}; rolled back: {journal.old_version} runs as before") from exc
    removed = layout.prune([staged, journal.previous])
    echo(f"upgraded {journal.old_version} -> {__version__} in {time.monotonic() - began:.0f} s")
    echo(f"  the previous venv, kept for a rollback: {journal.previous}")
    echo(f"  the backup made before migrating: {journal.backup}")
    for path in removed:
        echo(f"  older venv removed: {path}")


def _check_staged(layout: Layout, staged: Path) -> None:
    """`--staged` names the venv this very command runs from, made by the stage beside the stable path."""
    layout.check()
    here = Path(sys.prefix).resolve()
    if staged.resolve() != here or staged.parent.resolve() != layout.releases.resolve():
        raise InvalidInput(
            f"--staged is for the upgrade's own use: {staged} is not this command's venv ({here}) in "
            f"{layout.releases}; run `appliance upgrade WHEEL|CHECKOUT`"
        )
    if not (staged / MARKER).is_file() or staged.resolve() == layout.current():
        raise InvalidInput(f"{staged} is not a venv staged for an upgrade")


def _header(echo: Echo, step: str) -> None:
    echo(f"[{STEPS.index(step) + 1}/{len(STEPS)}] {step}")


def _check_line(check: preflight.Check) -> str:
    return f"      {check.name:<11} {'OK' if check.ok else 'FAIL':<4}  {check.detail}"


def _backup(ctx: Context, journal: Journal, _: preflight.Findings) -> None:
    # The new version's init makes what it needs and the old one did not (the backup key).
    ctx.run("init", what="the new version's init", python=ctx.staged / "bin" / "python")
    journal.backup = backup.take(journal.settings, ctx.config_path)
    ctx.echo(f"      {journal.backup}")


def _migrate(ctx: Context, journal: Journal, findings: preflight.Findings) -> None:
    if findings.needs_downtime:
        ctx.echo(
            "      stopping the appliance: contracting migrations cannot run beside it (--allow-downtime)"
        )
        ctx.run("down", what="stopping the appliance")
        journal.stopped = True
    journal.revision = schema.revision(journal.settings)
    journal.fingerprint = schema.fingerprint(journal.settings)
    journal.migrated = migrate.upgrade(journal.settings)
    done = ", ".join(journal.migrated) if journal.migrated else "nothing to apply"
    ctx.echo(f"      {done} (the database is at {migrate.head_revision()})")


def _switch(ctx: Context, journal: Journal, _: preflight.Findings) -> None:
    adopted = ctx.layout.adopt()
    if adopted is not None:
        journal.previous = adopted
        ctx.echo(f"      {ctx.layout.venv} was a directory: moved to {adopted}, and now a link")
    ctx.layout.switch(ctx.staged)
    journal.switched = True
    ctx.echo(f"      {ctx.layout.venv} -> {ctx.staged}")


def _restart(ctx: Context, journal: Journal, _: preflight.Findings) -> None:
    if journal.stopped:
        journal.started = True  # before: a start that fails halfway still leaves processes to stop
        ctx.run("up", what="starting the new version")
        return
    if journal.running is None:
        ctx.echo("      the appliance is not running: nothing to restart (start it with `appliance up`)")
        return
    journal.rolled = list(journal.running.programs)  # a failure halfway leaves some of them replaced
    rolled = roll(client_for(journal.settings.run_dir), journal.rolled, reread=True)
    journal.rolled, journal.reshaped = rolled.programs, rolled.reshaped
    ctx.echo(f"      {', '.join(rolled.programs)}: each process replaced once its successor was ready")


def _health(ctx: Context, journal: Journal, _: preflight.Findings) -> None:
    if journal.running is None and not journal.started:
        ctx.echo("      not checked: the appliance is not running")
        return
    if journal.running is not None and not journal.started:
        check_replaced(client_for(journal.settings.run_dir), ctx.layout.venv, journal.running)
    wait_serving(journal.settings.api_url, __version__, SERVING_TIMEOUT_S)
    ctx.echo(f"      the API is ready and serves {__version__}; every process runs the new version")
