"""Separate machines for the multi-host converge: containers of a Debian 12 server image (hosts/Dockerfile)
on a network of their own with fixed addresses, reached over SSH as Ansible reaches real servers, and the
appliance as wheels built on this machine (the containers have no network).

* :func:`build_server` (run in the background by tests/containers.py): the image, the dependencies' wheels
  (made by pip with the hosts' own Python, kept in the cache between runs, keyed by pyproject.toml's
  dependencies and that Python) and the appliance's own wheel (built from a copy of the checkout every run).
* :class:`Machines`: the containers of one test module, their SSH key and known_hosts, commands run in
  them, and an inventory written from the example's.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.compose.engine import BASE_IMAGE, HOST_CA_BUNDLE, Engine, build_image, cache_dir
from tests.playbooks.support import BIN, PLAYBOOKS, REPO, ansible_env
from tests.support import copy_checkout

SERVER_IMAGE = "forge-server:test"
HOSTS_DIR = Path(__file__).with_name("hosts")
EXAMPLE_INVENTORY = PLAYBOOKS / "inventories" / "example" / "multi"
#: Where the app hosts find the dependencies' wheels (appliance_pip_args).
WHEELS_ON_HOST = "/srv/wheels"
#: The account Ansible logs in as (the example's ansible_user), and one whose sudo wants a password.
ADMIN, DEPLOY = "admin", "deploy"
DEPLOY_SUDO_PASSWORD = "deploy-sudo-password"  # hosts/Dockerfile
#: Subnets tried for the hosts' network: the tail of the engine's own address pool (ADDRESS_POOL), which it
#: hands out from the start; one already routed on this machine (another run's engine) is skipped.
SUBNETS = [f"10.231.{third}.0/24" for third in range(250, 200, -1)]


@dataclass(frozen=True)
class ServerImage:
    tag: str
    #: The dependencies' wheels on this machine (mounted read-only at WHEELS_ON_HOST on the hosts).
    wheelhouse: Path
    #: The appliance's wheel built from this checkout, on the controller (appliance_wheel).
    wheel: Path


def hosts_cache() -> Path:
    path = cache_dir().parent / "hosts"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _pip(python: Path | str, *args: str, timeout: float = 900) -> None:
    done = subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise AssertionError(f"pip {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")


def _key(*parts: object) -> str:
    return hashlib.sha256(
        json.dumps([sys.version_info[:2], platform.machine(), *parts]).encode()
    ).hexdigest()[:16]


def _kept(name: str, make: Callable[[Path], None]) -> Path:
    """A directory of the cache made once by ``make(path)``: made beside it and renamed into place, so that
    an interrupted build is never taken for a finished one; older ones of the same kind are removed."""
    target = hosts_cache() / name
    if target.is_dir():
        return target
    kind = name.rsplit("-", 1)[0]
    partial = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=hosts_cache()))
    partial.chmod(0o755)
    try:
        make(partial)
        partial.rename(target)
    except OSError:  # another run made it meanwhile
        shutil.rmtree(partial, ignore_errors=True)
        if not target.is_dir():
            raise
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    for old in hosts_cache().glob(f"{kind}-*"):
        if old != target:
            shutil.rmtree(old, ignore_errors=True)
    return target


def dependency_wheelhouse(running: Engine, image: str) -> Path:
    """Wheels of every dependency of the appliance, made by pip with the hosts' own Python in a container of
    ``image`` (on this machine's network, its pip cache mounted): the environment markers are the hosts'
    (Debian's Python 3.11.2 needs async-timeout, a newer 3.11 does not). Made again only when
    pyproject.toml's dependencies or the hosts' Python change."""
    requirements = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    python = running.docker(
        "run", "--rm", "--network=none", image, "python3", "-c",
        "import platform; print(platform.python_version(), platform.machine())",
    ).stdout.strip()  # fmt: skip

    def make(path: Path) -> None:
        (path / "requirements.txt").write_text("\n".join(requirements) + "\n")
        pip_cache = Path.home() / ".cache" / "pip"
        pip_cache.mkdir(parents=True, exist_ok=True)
        mounts = ["--volume", f"{path}:/wheels", "--volume", f"{pip_cache}:/root/.cache/pip"]
        if HOST_CA_BUNDLE.is_file():  # a TLS-inspecting proxy's CA may stand between this machine and PyPI
            mounts += ["--volume", f"{HOST_CA_BUNDLE}:/etc/ssl/certs/ca-certificates.crt:ro"]
        running.docker(
            "run", "--rm", "--network=host", *mounts, image, "sh", "-c",
            "python3 -m venv /tmp/pip && /tmp/pip/bin/pip --disable-pip-version-check wheel --quiet"
            " --wheel-dir /wheels -r /wheels/requirements.txt",
            timeout=900,
        )  # fmt: skip
        (path / "requirements.txt").unlink()

    return _kept(f"wheelhouse-{_key(python, requirements)}", make)


def build_tools() -> Path:
    """A venv with the build backend pyproject.toml asks for (build-system.requires)."""
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]

    def make(path: Path) -> None:
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, capture_output=True)
        _pip(path / "bin" / "python", "install", "--quiet", *requires)

    return _kept(f"build-tools-{_key(requires)}", make)


def appliance_wheel(scratch: Path) -> Path:
    """The appliance's wheel, built from a copy of the checkout as a fresh clone has it."""
    source = copy_checkout(scratch / "src", tests=False)
    dist = scratch / "dist"
    python = build_tools() / "bin" / "python"
    _pip(
        python, "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir", str(dist), str(source)
    )
    shutil.rmtree(source)
    (wheel,) = dist.glob("forge_appliance-*.whl")
    return wheel


def build_server(running: Engine, scratch: Path) -> ServerImage:
    """The server image on the run's engine, the wheelhouse and the appliance's wheel."""
    build_image(running, SERVER_IMAGE, HOSTS_DIR, BASE_IMAGE=BASE_IMAGE)
    return ServerImage(SERVER_IMAGE, dependency_wheelhouse(running, SERVER_IMAGE), appliance_wheel(scratch))


# --------------------------------------------------------------------------- the machines of a test module


@dataclass(frozen=True)
class Host:
    name: str  # the inventory's name (app1.example.com)
    short: str  # the machine's own host name (app1)
    address: str
    groups: tuple[str, ...]


def example_hosts() -> dict[str, tuple[str, tuple[str, ...]]]:
    """The example inventory's hosts: name -> (address, groups)."""
    tree = yaml.safe_load((EXAMPLE_INVENTORY / "hosts.yml").read_text())
    hosts: dict[str, tuple[str, tuple[str, ...]]] = {}
    for group, body in tree["all"]["children"].items():
        for name, host_vars in (body.get("hosts") or {}).items():
            address, groups = hosts.get(name, ("", ()))
            hosts[name] = ((host_vars or {}).get("ansible_host", address), (*groups, group))
    return hosts


def routed_networks() -> list[ipaddress.IPv4Network]:
    """The IPv4 networks this machine routes, the default route aside (/proc/net/route: destination and mask
    in hex, host order)."""
    found = []
    for line in Path("/proc/net/route").read_text().splitlines()[1:]:
        fields = line.split()
        destination, mask = (int(value, 16).to_bytes(4, "little") for value in (fields[1], fields[7]))
        if any(mask):
            found.append(
                ipaddress.IPv4Network(f"{ipaddress.IPv4Address(destination)}/{ipaddress.IPv4Address(mask)}")
            )
    return found


class Machines:
    """The example inventory's hosts as containers of ``image``, each at the example's address moved into a
    subnet of its own (10.0.0.11 -> 10.231.250.11), sshd listening, the run's key authorised."""

    def __init__(self, running: Engine, image: ServerImage, work: Path, tag: str):
        self.running, self.image, self.work, self.tag = running, image, work, tag
        self.network = f"fa-hosts-{tag}"
        self.ssh_dir = work / "ssh"
        self.hosts: dict[str, Host] = {}
        self.subnet: ipaddress.IPv4Network | None = None

    # ---- lifecycle

    def start(self) -> None:
        self._make_key()
        self._make_network()
        assert self.subnet is not None
        for name, (example_address, groups) in example_hosts().items():
            last = int(ipaddress.ip_address(example_address)) & 0xFF
            address = str(self.subnet.network_address + last)
            short = name.split(".")[0]
            self.hosts[name] = Host(name, short, address, groups)
            mounts = ["--volume", f"{self.ssh_dir / 'authorized'}:/etc/ssh/authorized_keys.d:ro"]
            if "app" in groups:
                mounts += ["--volume", f"{self.image.wheelhouse}:{WHEELS_ON_HOST}:ro"]
            self.running.docker(
                "run", "--detach", f"--name={self.container(name)}", f"--hostname={short}",
                f"--network={self.network}", f"--ip={address}", *mounts, self.image.tag,
            )  # fmt: skip
        self._write_known_hosts()

    def close(self) -> None:
        names = [self.container(name) for name in self.hosts]
        if names:
            self.running.docker("rm", "--force", "--volumes", *names, check=False)
        self.running.docker("network", "rm", self.network, check=False)

    def container(self, name: str) -> str:
        return f"fa-{self.tag}-{name.split('.', maxsplit=1)[0]}"

    def _make_key(self) -> None:
        (self.ssh_dir / "authorized").mkdir(parents=True)
        self.ssh_dir.chmod(0o700)
        (self.ssh_dir / "authorized").chmod(0o755)
        subprocess.run(
            [
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                f"forge-test-{self.tag}",
                "-f",
                str(self.key),
            ],
            check=True,
            capture_output=True,
        )
        public = (self.ssh_dir / "id_ed25519.pub").read_text()
        for user in (ADMIN, DEPLOY):
            (self.ssh_dir / "authorized" / user).write_text(public)
            (self.ssh_dir / "authorized" / user).chmod(0o644)

    def _make_network(self) -> None:
        taken = routed_networks()
        for candidate in map(ipaddress.IPv4Network, SUBNETS):
            if any(candidate.overlaps(net) for net in taken):
                continue
            made = self.running.docker(
                "network", "create", f"--subnet={candidate}", self.network, check=False
            )
            if made.returncode == 0:
                self.subnet = candidate
                return
        raise AssertionError(f"no free subnet among {SUBNETS[0]} .. {SUBNETS[-1]} for the hosts' network")

    def _write_known_hosts(self) -> None:
        """Each host's key as sshd has it (read from the container, not accepted blindly on first use)."""
        lines = []
        for host in self.hosts.values():
            key = self.exec(host.name, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[:2]
            lines.append(f"{host.address} {' '.join(key)}\n")
        self.known_hosts.write_text("".join(lines))

    # ---- reaching them

    @property
    def key(self) -> Path:
        return self.ssh_dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.ssh_dir / "known_hosts"

    def exec(
        self, name: str, *argv: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """A command as root in a host (docker exec: the test's own look behind the scenes, not Ansible's)."""
        return self.running.docker("exec", self.container(name), *argv, check=check, timeout=timeout)

    def env(self) -> dict[str, str]:
        """ansible-playbook's environment: the run's key and known_hosts, SSH's control sockets here."""
        control = self.work / "cp"
        control.mkdir(exist_ok=True)
        return ansible_env() | {
            "ANSIBLE_PRIVATE_KEY_FILE": str(self.key),
            "ANSIBLE_SSH_COMMON_ARGS": f"-o UserKnownHostsFile={self.known_hosts}"
            " -o StrictHostKeyChecking=yes",
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control),
        }

    def playbook(self, inventory: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """`ansible-playbook -i INVENTORY site.yml` from the playbooks' directory, as an admin runs it."""
        return self.ansible(
            "ansible-playbook", "-i", str(inventory), str(PLAYBOOKS / "site.yml"), *args, timeout=timeout
        )

    def ansible(self, command: str, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """One of Ansible's commands (this venv's) from the playbooks' directory."""
        return subprocess.run(
            [str(BIN / command), *args],
            cwd=PLAYBOOKS,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    # ---- the inventory

    def write_inventory(self, target: Path, overrides: Mapping[str, Mapping[str, object]] = {}) -> Path:
        """The example inventory copied to ``target`` and edited as an admin edits it: the real addresses,
        the package source (this checkout's wheel, the dependencies from the hosts' wheelhouse), and
        ``overrides``: {group_vars file stem: {variable: value}} set in that file (a new file if none)."""
        shutil.copytree(EXAMPLE_INVENTORY, target)
        hosts_file = target / "hosts.yml"
        text = hosts_file.read_text()
        for name, host in self.hosts.items():
            example_address = example_hosts()[name][0]
            text, count = re.subn(
                rf"ansible_host: {re.escape(example_address)}\n", f"ansible_host: {host.address}\n", text
            )
            assert count == 1, f"{name}'s address {example_address} not found in {hosts_file}"
        hosts_file.write_text(text)
        changes: dict[str, dict[str, object]] = {
            "app": {
                "appliance_wheel": str(self.image.wheel),
                "appliance_pip_args": ["--no-index", "--find-links", WHEELS_ON_HOST],
            }
        }
        for stem, values in overrides.items():
            changes.setdefault(stem, {}).update(values)
        for stem, values in changes.items():
            path = target / "group_vars" / f"{stem}.yml"
            text = path.read_text() if path.exists() else "---\n"
            for variable, value in values.items():
                line = f"{variable}: {json.dumps(value)}\n"  # JSON is YAML
                text, count = re.subn(rf"^{re.escape(variable)}:.*\n", line, text, flags=re.MULTILINE)
                if count == 0:
                    text += line
            path.write_text(text)
        return target


@contextlib.contextmanager
def machines(running: Engine, image: ServerImage, tag: str) -> Iterator[Machines]:
    """The example inventory's hosts, started; removed afterwards (and the work directory with them)."""
    work = Path(tempfile.mkdtemp(prefix=f"fa-h{tag}-", dir="/tmp"))  # short: SSH control sockets live here
    started = Machines(running, image, work, tag)
    try:
        started.start()
        yield started
    finally:
        started.close()
        shutil.rmtree(work, ignore_errors=True)
