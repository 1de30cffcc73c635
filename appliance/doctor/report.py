"""Run every check of the doctor, each with a deadline, and render the findings as a table or as JSON.

Checks run side by side on threads, in waves: a check that needs another (the migrations need the
database) runs after it, and is skipped, naming it, when that one failed, so one dead dependency is one
failure and not five. A check that raises is a failure with its reason; one that has not answered by the
deadline is a failure saying so (its thread is left to finish on its own: it is a daemon, and every
connection it makes has a timeout of its own). Every text is scrubbed of secret values before it leaves.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from appliance.doctor import checks, database_checks, service_checks
from appliance.doctor.finding import Context, Finding, Overall, Verdict
from appliance.doctor.scrub import Scrubber
from appliance.errors import ApplianceError


@dataclass(frozen=True)
class Check:
    """One check: its name in the report, its function, and the checks it needs to have passed."""

    name: str
    run: Callable[[Context], Verdict]
    needs: tuple[str, ...] = ()


CHECKS: tuple[Check, ...] = (
    Check("config", checks.config),
    Check("secret-files", checks.secret_files),
    Check("disk-data", checks.disk_data),
    Check("disk-backups", checks.disk_backups),
    Check("database", database_checks.database),
    Check("migrations", database_checks.migrations, needs=("database",)),
    Check("row-level-security", database_checks.row_level_security, needs=("database",)),
    Check("app-role", database_checks.app_role, needs=("database",)),
    Check("clock", database_checks.clock, needs=("database",)),
    Check("redis", service_checks.redis_server),
    Check("queue", service_checks.queue, needs=("redis",)),
    Check("supervisor", service_checks.supervisor),
    Check("tls-certificate", checks.tls_certificate),
    Check("backups", checks.backups),
)


def run(ctx: Context, selected: Sequence[Check] = CHECKS) -> list[Finding]:
    """Every check's finding, in the order of ``selected``."""
    known = {check.name for check in selected}
    verdicts: dict[str, Verdict] = {}
    waiting = list(selected)
    try:
        while waiting:
            wave = [c for c in waiting if all(n in verdicts or n not in known for n in c.needs)] or waiting
            waiting = [c for c in waiting if c not in wave]
            runnable = []
            for check in wave:
                failed = [n for n in check.needs if n in verdicts and verdicts[n].status == "fail"]
                if failed:
                    verdicts[check.name] = Verdict("skip", f"not checked: {', '.join(failed)} failed")
                else:
                    runnable.append(check)
            verdicts.update(_run_wave(ctx, runnable))
    finally:
        ctx.close()
    scrub = Scrubber.of(ctx.settings).text
    return [
        Finding(
            c.name, verdicts[c.name].status, scrub(verdicts[c.name].finding), scrub(verdicts[c.name].hint)
        )
        for c in selected
    ]


def _run_wave(ctx: Context, wave: list[Check]) -> dict[str, Verdict]:
    """Run ``wave`` side by side; what has not answered by the deadline is a failure saying so."""
    results: dict[str, Verdict] = {}
    threads = [
        threading.Thread(target=_run_one, args=(ctx, c, results), name=f"doctor-{c.name}", daemon=True)
        for c in wave
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + ctx.timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    late = Verdict(
        "fail",
        f"no answer within {ctx.timeout:g} s",
        "what this check reaches hangs: see the other findings and `appliance logs`",
    )
    return {check.name: results.get(check.name, late) for check in wave}


def _run_one(ctx: Context, check: Check, results: dict[str, Verdict]) -> None:
    try:
        verdict = check.run(ctx)
    except ApplianceError as exc:
        verdict = Verdict("fail", str(exc), "fix what it names and run `appliance doctor` again")
    except Exception as exc:  # a check must never end the report: the failure is the finding
        verdict = Verdict("fail", f"the check failed: {type(exc).__name__}: {_first_line(exc)}", "")
    results[check.name] = verdict


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0]


def config_failure(message: str) -> list[Finding]:
    """The report when the settings cannot even be loaded: nothing else can be checked."""
    return [Finding("config", "fail", message, "fix what it names, then check with `appliance config check`")]


def overall(findings: Sequence[Finding]) -> Overall:
    """The worst status met (skips count as nothing)."""
    statuses = {finding.status for finding in findings}
    return "fail" if "fail" in statuses else "warn" if "warn" in statuses else "ok"


def as_json(findings: Sequence[Finding]) -> list[dict[str, str]]:
    return [finding.as_dict() for finding in findings]


def table(findings: Sequence[Finding]) -> str:
    """STATUS, CHECK and FINDING in columns, each hint under its row, then the counts."""
    width = max([len("CHECK"), *(len(f.check) for f in findings)])
    lines = [f"{'STATUS':6}  {'CHECK':{width}}  FINDING"]
    for finding in findings:
        lines.append(f"{finding.status.upper():6}  {finding.check:{width}}  {finding.finding}")
        if finding.hint:
            lines.append(f"{'':6}  {'':{width}}  fix: {finding.hint}")
    counts = Counter(finding.status for finding in findings)
    summary = ", ".join(f"{counts[s]} {s}" for s in ("ok", "warn", "fail", "skip") if counts[s])
    return "\n".join([*lines, "", f"{len(findings)} checks: {summary}"])
