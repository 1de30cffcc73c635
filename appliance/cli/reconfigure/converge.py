"""Run the playbooks on this host through ansible-runner: find them, build the local inventory, set up the
environment Ansible's executables need, and hand every event to the progress display.

Where the playbooks are: a built wheel carries the checkout's `playbooks/` as `appliance/playbooks/` (the
build step in build_support.py), so `pip install .` finds them beside the package; an editable install or a
checkout on PYTHONPATH finds `playbooks/` next to the `appliance/` source directory.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.cli.reconfigure.progress import Progress
from appliance.cli.reconfigure.variables import CREDENTIALS_VAR, DEFAULT_CREDENTIALS
from appliance.errors import NotFound, OperationFailed

PLAYBOOK = "site.yml"
#: The one-host layout whose groups this host joins when no inventory is given.
SINGLE_HOST_EXAMPLE = Path("inventories/example/single/hosts.yml")
#: Where the appliance role writes the settings file, unless --config or APPLIANCE_CONFIG names another.
DEFAULT_CONFIG = Path("/etc/forge-appliance/appliance.toml")
INSTALL_HINT = "install the production extra: pip install 'forge-appliance[production]'"
#: The locale Ansible and the roles' commands run under. Ansible refuses to start under a locale the host
#: does not have (an SSH client's LANG=en_US.UTF-8 on a Debian without the locales package), and the roles
#: read the commands' English output; glibc has this one built in.
CONVERGE_LOCALE = "C.UTF-8"


@dataclass(frozen=True)
class Run:
    """One converge: what to run, where, and how."""

    playbooks: Path
    config_file: Path
    inventory: Path | None = None
    limit: str | None = None
    check: bool = False
    #: Every variable passed to the playbooks (variables.converge_variables)
    variables: Mapping[str, Any] = field(default_factory=dict)


def bundled_playbooks() -> Path:
    """The playbooks this package came with: inside the installed package, else the checkout's."""
    package = Path(__file__).resolve().parents[2]
    inside = package / "playbooks"
    return inside if inside.is_dir() else package.parent / "playbooks"


def playbook_file(directory: Path) -> Path:
    """``site.yml`` in ``directory``, or an error that names what is missing."""
    if not directory.is_dir():
        raise NotFound(
            f"the playbooks directory {directory} does not exist", details={"path": str(directory)}
        )
    site = directory / PLAYBOOK
    if not site.is_file():
        raise NotFound(f"{site} does not exist (the playbooks directory has no {PLAYBOOK})")
    return site


def local_inventory(playbooks: Path) -> dict[str, Any]:
    """This host only, reached without SSH, and in every group the playbooks' single-host example puts its
    one host in: this host plays every part.

    Modules run with this venv's Python: it is there and new enough wherever the command runs, and the
    modules that need a system library (ansible.builtin.apt and python3-apt) start again under the system's
    python3 by themselves. As root there is nothing to become (and sudo may not even be installed)."""
    host: dict[str, Any] = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    if os.geteuid() == 0:
        host["ansible_become"] = False
    groups = {name: {"hosts": {"localhost": None}} for name in single_host_groups(playbooks)}
    return {"all": {"hosts": {"localhost": host}, "children": groups}}


def single_host_groups(playbooks: Path) -> list[str]:
    """The groups of ``inventories/example/single/hosts.yml`` (none when there is no such example)."""
    example = playbooks / SINGLE_HOST_EXAMPLE
    if not example.is_file():
        return []
    import yaml  # ansible-core's dependency: present with the production extra

    try:
        data = yaml.safe_load(example.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise OperationFailed(f"{example} cannot be read: {exc}") from exc
    children = data.get("all", {}).get("children") if isinstance(data, dict) else None
    return sorted(children) if isinstance(children, dict) else []


def keep_credentials(directory: Path) -> None:
    """The credentials directory, root only (0700): made if missing, its mode put right if not."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.chmod(0o700)
    except OSError as exc:
        raise OperationFailed(
            f"the credentials directory {directory} cannot be made: {exc.strerror} (run as root)",
            details={"path": str(directory)},
        ) from exc


def executables_dir() -> str:
    """The venv's bin directory, where ansible-playbook was installed beside this Python."""
    return str(Path(sys.executable).parent)


def converge(run: Run, progress: Progress) -> int:
    """Run ``site.yml`` and feed ``progress``; return ansible-playbook's exit code."""
    playbook_file(run.playbooks)
    if run.inventory is not None and not run.inventory.exists():
        raise NotFound(f"the inventory {run.inventory} does not exist", details={"path": str(run.inventory)})
    try:
        import ansible_runner
    except ImportError as exc:
        raise OperationFailed(f"ansible-runner is not installed: {INSTALL_HINT}") from exc
    # ansible-runner starts ansible-playbook by name: the venv's bin comes first, so that users of a venv
    # that is not activated (systemd, sudo, install.sh) need not set PATH.
    path = os.pathsep.join([executables_dir(), os.environ.get("PATH", "")])
    os.environ["PATH"] = path
    if shutil.which("ansible-playbook", path=path) is None:
        raise OperationFailed(f"ansible-core is not installed (no ansible-playbook): {INSTALL_HINT}")
    inventory: Any = str(run.inventory.resolve()) if run.inventory else local_inventory(run.playbooks)
    if run.inventory is None and run.variables.get(CREDENTIALS_VAR) == str(DEFAULT_CREDENTIALS):
        keep_credentials(DEFAULT_CREDENTIALS)
    private = Path(tempfile.mkdtemp(prefix="appliance-reconfigure-"))
    try:
        result = ansible_runner.run(
            private_data_dir=str(private),
            project_dir=str(run.playbooks.resolve()),
            playbook=PLAYBOOK,
            inventory=inventory,
            limit=run.limit,
            extravars=dict(run.variables),
            cmdline="--check --diff" if run.check else None,
            envvars={"ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "0", "LC_ALL": CONVERGE_LOCALE},
            event_handler=progress.handle,
            quiet=True,
        )
        rc = result.rc
    finally:
        shutil.rmtree(private, ignore_errors=True)
    return int(rc) if isinstance(rc, int) else 1
