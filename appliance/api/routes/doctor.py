"""/api/v1/platform/doctor: the checks of `appliance doctor`, run by this API process for operators (the
console's Health view)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import Depends

from appliance.api import routing
from appliance.api.auth import require_operator
from appliance.api.deps import ContextDep
from appliance.api.schemas.doctor import DoctorReport
from appliance.api.schemas.errors import error_responses
from appliance.doctor import report
from appliance.doctor.finding import Context, utc_now
from appliance.errors import ConfigError
from appliance.services.access import platform_permissions
from appliance.services.access.actors import Actor

router = routing.router(
    prefix="/platform/doctor", tags=["platform"], responses=error_responses(401, 403, 422, 429)
)

Read = Annotated[Actor, Depends(require_operator(platform_permissions.PLATFORM_HEALTH))]


@router.get("")
def run_doctor(actor: Read, ctx: ContextDep) -> DoctorReport:
    """Run every check of `appliance doctor` (settings, secret files, disk, database, migrations,
    row-level security, the app role, the clock, Redis, the queue, the supervisor's programs, the TLS
    certificate, the backups) and return what each found, with a fix for each warning and failure. The
    checks run in this API process, with its settings; each has a deadline, so a dead dependency is a
    failure within seconds, never a hang. A blocking route: it runs on the API's threads, off the event
    loop."""
    started = utc_now()
    findings = report.run(Context(ctx.settings, _settings_file()))
    return DoctorReport.of(findings, report.overall(findings), started)


def _settings_file() -> Path | None:
    """The settings file this process read (the supervisor passes it on in APPLIANCE_CONFIG), whose
    directory may hold the TLS certificate."""
    from appliance.configfile import locate

    try:
        return locate(None)
    except ConfigError:
        return None
