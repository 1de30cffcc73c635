"""The services package wires the domains' subscriptions, whatever a program imports."""

from __future__ import annotations

import json
import subprocess
import sys

from appliance.services.webhooks import events


def test_a_program_that_imports_only_the_audit_log_still_publishes_the_events_of_its_records() -> None:
    # A command that records a change (say, `appliance tenants suspend`) imports the audit log and not the
    # webhooks domain; its records must still become the tenant's webhook events.
    code = (
        "import json, appliance.services.audit.log as log;print(json.dumps(sorted(log.listened_actions())))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == sorted(events.AUDIT_EVENTS)
