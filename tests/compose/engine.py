"""A Docker engine of the tests' own and the images of the container install, built as an admin would.

The engine is a `dockerd` started here with its own data root, exec root, pid file and socket (nothing is
assumed to run, and another engine on the machine is left alone); it sets up no iptables rule (builds use
the host's network, the stack's containers talk over their own bridges) and takes its networks from an
address pool of its own. Its data root lives in the cache directory, locked while in use, so that a second
run on one machine reuses the base image and the layers that did not change; on a fresh machine, or while
another run holds the lock, it starts from an empty one. The debootstrap tarball is kept there too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from tests.servers import unavailable
from tests.support import copy_checkout, wait_for

REPO = Path(__file__).resolve().parents[2]
COMPOSE_DIR = REPO / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
BASE_IMAGE = "forge-debian:12"
ADDRESS_POOL = "base=10.231.0.0/16,size=24"


def cache_dir() -> Path:
    """Where what can be kept between runs on this machine lives."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = base / "forge-appliance" / "compose"
    path.mkdir(parents=True, exist_ok=True)
    return path


def tools_or_skip() -> None:
    """Skip (fail under CI=true) unless this machine can run an engine and build the base."""
    if os.geteuid() != 0:
        unavailable("the container tests start their own dockerd and run debootstrap: they need root")
    tools = ("dockerd", "docker", "docker-compose", "debootstrap")
    missing = [tool for tool in tools if not shutil.which(tool)]
    if missing:
        packages = "docker.io docker-compose debootstrap"
        unavailable(f"not installed: {', '.join(missing)} (apt-get install {packages})")


@dataclass
class Engine:
    """A running dockerd of the tests' own; `env` points the docker CLI and compose at it."""

    process: subprocess.Popen[bytes]
    run_dir: Path
    data_root: Path
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    def run(
        self,
        *argv: str,
        timeout: float = 600,
        stdin: IO[bytes] | None = None,
        check: bool = True,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """A docker (or docker-compose) command against this engine (`env` added to its environment); its
        output in the error."""
        done = subprocess.run(
            list(argv),
            env=self.env | (env or {}),
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def docker(
        self, *args: str, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.run("docker", *args, timeout=timeout, check=check)

    def image_size(self, image: str) -> int:
        return int(self.docker("image", "inspect", "--format", "{{.Size}}", image).stdout)

    def clean(self) -> None:
        """Remove what an earlier run left in a kept data root: containers (a restart policy would start
        them again with the engine), their volumes and networks, and images no tag names any more."""
        ids = self.docker("ps", "-aq").stdout.split()
        if ids:
            self.docker("rm", "-f", "-v", *ids)
        self.docker("volume", "prune", "-f")
        self.docker("network", "prune", "-f")
        self.docker("image", "prune", "-f")


@contextlib.contextmanager
def engine(*, fresh: bool = False) -> Iterator[Engine]:
    """Start a dockerd of our own; stop it (and everything in it) afterwards. ``fresh``: on an empty data
    root (no image, no layer: what a fresh machine has), removed afterwards."""
    tools_or_skip()
    cache = cache_dir()
    with contextlib.ExitStack() as stack:
        lock = stack.enter_context((cache / "docker.lock").open("w"))
        try:
            if fresh:
                raise BlockingIOError
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            data_root = cache / "docker"
        except BlockingIOError:  # another run uses the kept data root: start from an empty one
            data_root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fa-docker-data-")))
        # Short paths: the engine's and containerd's Unix sockets live under the exec root.
        run_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fa-dk-", dir="/tmp")))
        socket = run_dir / "docker.sock"
        log = run_dir / "dockerd.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    "dockerd",
                    "--data-root", str(data_root),
                    "--exec-root", str(run_dir / "exec"),
                    "--pidfile", str(run_dir / "docker.pid"),
                    "-H", f"unix://{socket}",
                    "--iptables=false",
                    "--ip-masq=false",
                    "--bridge=none",
                    "--default-address-pool", ADDRESS_POOL,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        env = {key: value for key, value in os.environ.items() if not key.startswith(("DOCKER_", "FORGE_"))}
        env |= {
            "DOCKER_HOST": f"unix://{socket}",
            # The classic builder: what compose v1 uses too, and no buildx plugin is needed.
            "DOCKER_BUILDKIT": "0",
            "COMPOSE_DOCKER_CLI_BUILD": "0",
            "DOCKER_CLI_HINTS": "false",
        }
        running = Engine(process=process, run_dir=run_dir, data_root=data_root, log=log, env=env)
        stack.callback(_stop, running)
        deadline = time.monotonic() + 60
        while running.docker("version", check=False, timeout=30).returncode != 0:
            if process.poll() is not None or time.monotonic() > deadline:
                unavailable(f"dockerd did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        running.clean()
        yield running


def _stop(running: Engine) -> None:
    if running.process.poll() is None:
        running.process.send_signal(signal.SIGTERM)
        try:
            running.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            running.process.kill()
            running.process.wait()
    # dockerd leaves its network namespace's bind mount (exec/netns/default) behind, and a killed one more.
    for root in (running.run_dir, running.data_root):
        _unmount_under(root)


def _unmount_under(root: Path) -> None:
    prefix = f"{root}/"
    with open("/proc/self/mountinfo") as mounts:
        points = [
            line.split()[4].encode().decode("unicode_escape")
            for line in mounts
            if line.split()[4].startswith(prefix)
        ]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], check=False, capture_output=True)


def build_base(running: Engine) -> None:
    """compose/build-base.sh: debootstrap once per machine (the tarball is kept in the cache), then import;
    not again while the engine holds the image (a new import is a new image: every layer above it would be
    built anew)."""
    if running.docker("image", "inspect", BASE_IMAGE, check=False).returncode == 0:
        return
    env = running.env | {"FORGE_BASE_CACHE": str(cache_dir())}
    done = subprocess.run(
        [str(COMPOSE_DIR / "build-base.sh"), BASE_IMAGE], env=env, capture_output=True, text=True, timeout=900
    )
    if done.returncode != 0:
        raise AssertionError(f"build-base.sh exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr}")


def build_context(target: Path) -> Path:
    """The appliance image's build context in ``target``: the checkout's files as a fresh clone would have
    them (tests aside; others may edit the checkout meanwhile), and this host's CA bundle for the build
    stage's pip (compose/ca-certificates/: a TLS-inspecting proxy may stand between this machine and PyPI)."""
    copy_checkout(target, tests=False)
    if HOST_CA_BUNDLE.is_file():
        shutil.copy(HOST_CA_BUNDLE, target / "compose" / "ca-certificates" / "host.crt")
    return target


def build_image(
    running: Engine,
    tag: str,
    context: Path,
    dockerfile: str = "Dockerfile",
    target: str = "",
    **build_args: str,
) -> None:
    """`docker build` of ``context`` (on the host's network: the engine sets up no NAT); ``target``: up to
    that stage only."""
    args = [f"--build-arg={key}={value}" for key, value in build_args.items()]
    if target:
        args.append(f"--target={target}")
    running.docker(
        "build", "--network=host", "--quiet", f"--tag={tag}", f"--file={context / dockerfile}", *args,
        str(context),
        timeout=1200,
    )  # fmt: skip


@dataclass(frozen=True)
class Images:
    appliance: str
    postgresql: str
    redis: str


@dataclass
class Stack:
    """compose/docker-compose.yml as a project on an engine, with these images, secrets and HTTP port."""

    running: Engine
    images: Images
    project: str
    secrets: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        env = {
            "FORGE_APPLIANCE_IMAGE": self.images.appliance,
            "FORGE_POSTGRESQL_IMAGE": self.images.postgresql,
            "FORGE_REDIS_IMAGE": self.images.redis,
            "FORGE_SECRETS_DIR": str(self.secrets),
            "FORGE_HTTP_BIND": "127.0.0.1",
            "FORGE_HTTP_PORT": str(self.port),
        }
        argv = ("docker-compose", "-f", str(COMPOSE_FILE), "-p", self.project, *args)
        return self.running.run(*argv, timeout=timeout, env=env)

    def up(self) -> None:
        """`docker-compose up -d`, returning once /health/ready answers 200 on the published port."""
        self.compose("up", "-d", "--no-build")

        def ready() -> bool:
            try:
                return httpx.get(f"{self.url}/health/ready", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        try:
            wait_for(ready, timeout=240, interval=0.5, what=f"{self.url}/health/ready")
        except AssertionError as exc:
            logs = self.compose("logs", "--no-color", "--tail", "40").stdout
            raise AssertionError(f"{exc}\n{logs}") from None

    def appliance(self, *argv: str) -> str:
        return self.compose("exec", "-T", "appliance", *argv).stdout

    def health(self) -> str:
        container = self.compose("ps", "-q", "appliance").stdout.strip()
        return self.running.docker(
            "inspect", "--format", "{{.State.Health.Status}}", container
        ).stdout.strip()
