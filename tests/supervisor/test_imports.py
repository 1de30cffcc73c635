"""The supervisor (`python -m appliance.supervisor`, which `appliance supervise` becomes) loads the standard
library only, so it stays small and works when all else breaks. tests/test_systemd_unit.py checks that the
process `appliance supervise` leaves running is that one. So does the helper that runs a container program."""

from __future__ import annotations

import subprocess
import sys

from tests.support import clean_environ

#: The appliance's modules outside the supervisor and the client that the supervisor may load: each one
#: standard library only (the third-party check below holds that), and shared with the rest of the appliance.
SHARED = ["appliance.hostport"]


def test_supervisor_loads_only_the_standard_library() -> None:
    code = (
        f"import sys\nSHARED = {SHARED!r}\n"
        "import runpy\n"
        "sys.argv = ['appliance.supervisor', '--help']\n"
        "import appliance.supervisor.runtime, appliance.supervisor.control, appliance.client.supervisor\n"
        "import appliance.supervisor.container\n"  # the helper that runs a container program
        "try:\n    runpy.run_module('appliance.supervisor', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "top = {m.split('.')[0] for m in sys.modules}\n"
        "allowed = set(sys.stdlib_module_names) | {'appliance', '__main__'}\n"
        "loaded_at_startup = {t for t in top if t.startswith(('__editable__', '_distutils_hack'))}\n"
        "print(sorted(t for t in top if t not in allowed and t not in loaded_at_startup))\n"
        "print(sorted(m for m in sys.modules if m.startswith('appliance.') and not m.startswith("
        "('appliance.supervisor', 'appliance.client')) and m not in SHARED))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=clean_environ(), check=True
    )
    *_, third_party, appliance_modules = run.stdout.strip().splitlines()
    assert third_party == "[]", third_party
    assert appliance_modules == "[]", appliance_modules
    assert "--run-dir" in run.stdout
