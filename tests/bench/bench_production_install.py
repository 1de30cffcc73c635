"""Benchmark of the production install on a bare Debian 12: `./install.sh --production` to the appliance
answering over HTTPS, then again, against a baseline of only the packages installed.

Run (as root: its own dockerd): .venv/bin/python tests/bench/bench_production_install.py [--rounds 3]
                                    [--ca-bundle FILE | --no-ca-bundle] [--logs DIR]

Each round, in new containers of the Debian 12 minbase image (compose/build-base.sh: no Python, no sudo,
no ca-certificates, no locales, no package lists; made once from the debootstrap tarball kept in ~/.cache
when there is one), with nothing cached inside (no apt package lists or .debs, no pip cache: every package
comes from Debian's mirror and PyPI each time):
1. baseline: the same Debian packages the roles install (python3, python3-venv, ca-certificates, openssl,
   PostgreSQL, Redis, nginx) with one `apt-get install`, and a venv with `pip install .[production]`: what
   any installer pays to download and unpack the same software, with no configuration;
2. this checkout copied in as a fresh clone has it (tests/ left out), the admin's choices in
   /etc/forge-appliance/reconfigure.yml (every port a free one of this machine, the private address
   127.0.0.1), then `./install.sh --production` until /health/ready answers 200 over HTTPS from this
   machine (through nginx, the self-signed certificate checked);
3. `./install.sh --production` again: its time and the changed count of its summary (goal: under 30 s
   with changed=0);
4. `appliance reconfigure` with no option, as an admin runs it after an edit: it must converge the same
   host again from what install.sh recorded (changed=0).

The containers run on this machine's network (`--network host`: the engine sets up no NAT, so apt and PyPI
are reached as this machine reaches them and every port is one of this machine's); tini is PID 1, not
systemd, so the roles start the services directly and say so. This machine's CA bundle
(/etc/ssl/certs/ca-certificates.crt, or `--ca-bundle FILE`) is copied in for pip (PIP_CERT): a
TLS-inspecting proxy may stand between this machine and PyPI; `--no-ca-bundle` leaves pip its own.

Each step's time and its CPU time (user + system of the command and the children it waited for, not of the
daemons it started) are reported, with the load average as it started: on a shared machine the time says
as much about the neighbours as about the install; the CPU time much less so.
Exit status 0 when every second run met the goal, 1 when one did not, 2 when an install failed.
"""

from __future__ import annotations

import argparse
import json
import re
import ssl
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import httpx

from tests.compose.engine import BASE_IMAGE, HOST_CA_BUNDLE, Engine, build_base, engine
from tests.servers import free_port
from tests.support import copy_checkout

SOURCE = "/root/forge-appliance"  # where the checkout is copied in the container
CERTIFICATE = "/etc/forge-appliance/tls/appliance.crt"  # the self-signed one nginx's role makes
CA_IN_CONTAINER = "/root/host-ca.crt"
BASELINE_PACKAGES = "python3 python3-venv ca-certificates openssl postgresql redis-server nginx"
SUMMARY = re.compile(r"^  localhost +(\d+) +(\d+) +(\d+) +(\d+) +(\d+)$", re.MULTILINE)
SECOND_RUN_GOAL = 30.0
TIMES_MARK = "@@bench-times@@"


@dataclass
class Step:
    seconds: float
    output: str
    returncode: int
    #: CPU seconds (user + system) of the command and the children it waited for (not the daemons it
    #: started): what the run cost, less sensitive than its time to what else the machine's cores run
    cpu: float = 0.0

    @property
    def counts(self) -> dict[str, int] | None:
        """ok, changed, failed, unreachable, skipped of the converge's summary (None: no summary)."""
        rows = SUMMARY.findall(self.output)
        if not rows:
            return None
        names = ("ok", "changed", "failed", "unreachable", "skipped")
        return dict(zip(names, map(int, rows[-1]), strict=True))

    @property
    def changed_tasks(self) -> list[str]:
        return re.findall(r"^  localhost: (.+)$", self.output.split("task(s) changed something:")[-1], re.M)


class Container:
    """A bare Debian 12 container on this machine's network, tini as PID 1."""

    def __init__(self, running: Engine, name: str, env: dict[str, str]) -> None:
        self.running, self.name, self.env = running, name, env
        running.docker(
            "run", "--detach", "--init", "--network=host", f"--name={name}", BASE_IMAGE, "sleep", "infinity"
        )

    def exec(self, command: str, timeout: float = 1800) -> Step:
        """``command`` through bash as root: its output (stdout and stderr together), time and CPU time."""
        env = [f"--env={key}={value}" for key, value in self.env.items()]
        script = f"{{ {command} ; }} 2>&1; rc=$?; echo {TIMES_MARK}; times; exit $rc"
        started = time.monotonic()
        done = self.running.docker(
            "exec", *env, self.name, "bash", "-c", script, timeout=timeout, check=False
        )
        seconds = time.monotonic() - started
        output, _, times = done.stdout.partition(f"{TIMES_MARK}\n")
        cpu = 0.0
        children = times.splitlines()[1:2]  # `times`: the shell's user and system time, then its children's
        for minutes, secs in re.findall(r"(\d+)m([\d.]+)s", children[0] if children else ""):
            cpu += int(minutes) * 60 + float(secs)
        return Step(seconds, output + done.stderr, done.returncode, cpu)

    def copy_in(self, source: Path, target: str) -> None:
        self.running.docker("cp", str(source), f"{self.name}:{target}")

    def remove(self) -> None:
        self.running.docker("rm", "--force", "--volumes", self.name, check=False)


def choices() -> dict[str, object]:
    """The admin's reconfigure.yml: every port a free one of this machine (the container shares its
    network), PostgreSQL and Redis on loopback only; everything else the roles' defaults."""
    return {
        "common_private_address": "127.0.0.1",
        "postgresql_port": free_port(),
        "redis_port": free_port(),
        "appliance_api_port": free_port(),
        "nginx_http_port": free_port(),
        "nginx_https_port": free_port(),
    }


def wait_ready(container: Container, port: int, work: Path, timeout: float = 180) -> float:
    """Seconds until https://localhost:PORT/health/ready answers 200 from this machine, the container's
    self-signed certificate checked."""
    started = time.monotonic()
    cert = work / f"{container.name}.crt"
    while True:
        try:
            if not cert.exists():
                container.running.docker("cp", f"{container.name}:{CERTIFICATE}", str(cert))
            tls = ssl.create_default_context(cafile=str(cert))
            if httpx.get(f"https://localhost:{port}/health/ready", verify=tls, timeout=5).status_code == 200:
                return time.monotonic() - started
        except (AssertionError, httpx.TransportError, ssl.SSLError, OSError):
            pass
        if time.monotonic() - started > timeout:
            raise AssertionError(f"https://localhost:{port}/health/ready: no 200 within {timeout:g} s")
        time.sleep(0.5)


def keep_log(logs: Path, name: str, step: Step) -> Path:
    path = logs / f"{name}.log"
    path.write_text(step.output)
    return path


def load_average() -> float:
    """This machine's 1-minute load average (2 cores: above 2, something else wants the CPU too)."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def baseline(running: Engine, name: str, env: dict[str, str], context: Path, ca: Path | None) -> Step:
    """Installing the same packages with no configuration: apt, then the venv and pip."""
    container = Container(running, name, env)
    try:
        if ca:
            container.copy_in(ca, CA_IN_CONTAINER)
        container.copy_in(context, SOURCE)
        command = (
            "export DEBIAN_FRONTEND=noninteractive && apt-get update -qq"
            f" && apt-get install -y -qq --no-install-recommends {BASELINE_PACKAGES} >/dev/null"
            " && python3 -m venv /opt/baseline"
            f" && /opt/baseline/bin/pip install --quiet '{SOURCE}[production]'"
        )
        return container.exec(command)
    finally:
        container.remove()


@dataclass
class Round:
    baseline: Step
    first: Step
    ready_after: float
    second: Step
    reconfigure: Step
    loads: tuple[float, ...]  # the load average as each of the four steps started

    @property
    def to_https(self) -> float:
        return self.first.seconds + self.ready_after


def checked(step: Step, what: str, logs: Path, name: str) -> Step:
    path = keep_log(logs, name, step)
    if step.returncode != 0:
        raise AssertionError(f"{what} failed (exit {step.returncode}; {path}):\n{step.output[-5000:]}")
    return step


def one_round(running: Engine, index: int, context: Path, ca: Path | None, work: Path, logs: Path) -> Round:
    env = {"PIP_CERT": CA_IN_CONTAINER} if ca else {}
    loads = [load_average()]
    base = checked(
        baseline(running, f"fa-bench-base-{index}", env, context, ca),
        "the baseline",
        logs,
        f"round{index}-baseline",
    )
    print(
        f"round {index}: baseline (apt + pip, no configuration) {base.seconds:.0f} s, CPU {base.cpu:.0f} s",
        flush=True,
    )
    container = Container(running, f"fa-bench-prod-{index}", env)
    try:
        if ca:
            container.copy_in(ca, CA_IN_CONTAINER)
        container.copy_in(context, SOURCE)
        variables = choices()
        (work / "reconfigure.yml").write_text(json.dumps(variables, indent=1))  # JSON is YAML
        checked(container.exec("mkdir -p /etc/forge-appliance"), "mkdir", logs, f"round{index}-mkdir")
        container.copy_in(work / "reconfigure.yml", "/etc/forge-appliance/reconfigure.yml")
        install = f"cd {SOURCE} && ./install.sh --production"
        loads.append(load_average())
        first = checked(container.exec(install), "the first install", logs, f"round{index}-first")
        ready = wait_ready(container, int(str(variables["nginx_https_port"])), work)
        print(
            f"round {index}: first install.sh --production {first.seconds:.0f} s (CPU {first.cpu:.0f} s), "
            f"HTTPS ready {ready:.1f} s after",
            flush=True,
        )
        loads.append(load_average())
        second = checked(container.exec(install), "the second install", logs, f"round{index}-second")
        print(
            f"round {index}: second {second.seconds:.1f} s (CPU {second.cpu:.1f} s), {second.counts}",
            flush=True,
        )
        loads.append(load_average())
        again = checked(
            container.exec("appliance reconfigure"),
            "appliance reconfigure",
            logs,
            f"round{index}-reconfigure",
        )
        print(
            f"round {index}: appliance reconfigure {again.seconds:.1f} s (CPU {again.cpu:.1f} s), "
            f"{again.counts}",
            flush=True,
        )
        return Round(base, first, ready, second, again, tuple(loads))
    finally:
        container.remove()


def span(values: list[float], digits: int = 0) -> str:
    low, high = (f"{value:.{digits}f}" for value in (min(values), max(values)))
    return low if low == high else f"{low}-{high}"


def changed(step: Step) -> str:
    counts = step.counts
    return "no summary" if counts is None else str(counts["changed"])


def report(rounds: list[Round]) -> bool:
    """Print the table; whether every second run met the goal."""
    print(f"\n{len(rounds)} round(s), each in new bare Debian 12 containers (nothing cached in them)\n")
    print(
        "| round | load avg at each start | baseline s (CPU) | first to HTTPS s (CPU) | ratio | "
        "second s (CPU) | changed | reconfigure s (CPU) | changed |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for n, r in enumerate(rounds, 1):
        cells = [
            str(n),
            " / ".join(f"{x:.1f}" for x in r.loads),
            f"{r.baseline.seconds:.0f} ({r.baseline.cpu:.0f})",
            f"{r.to_https:.0f} ({r.first.cpu:.0f})",
            f"{r.to_https / r.baseline.seconds:.2f}",
            f"{r.second.seconds:.1f} ({r.second.cpu:.1f})",
            changed(r.second),
            f"{r.reconfigure.seconds:.1f} ({r.reconfigure.cpu:.1f})",
            changed(r.reconfigure),
        ]
        print(f"| {' | '.join(cells)} |")
    print("\n| measure | range | CPU s |\n|---|---:|---:|")
    rows = (
        (
            "baseline: apt-get install of the same packages + pip install .[production], no configuration",
            [r.baseline.seconds for r in rounds],
            [r.baseline.cpu for r in rounds],
            0,
        ),
        (
            "first `./install.sh --production`, bare container to /health/ready 200 over HTTPS",
            [r.to_https for r in rounds],
            [r.first.cpu for r in rounds],
            0,
        ),
        (
            "second `./install.sh --production`",
            [r.second.seconds for r in rounds],
            [r.second.cpu for r in rounds],
            1,
        ),
        (
            "`appliance reconfigure` (no option) after it",
            [r.reconfigure.seconds for r in rounds],
            [r.reconfigure.cpu for r in rounds],
            1,
        ),
    )
    for what, seconds, cpu, digits in rows:
        print(f"| {what} | {span(seconds, digits)} s | {span(cpu, digits)} |")
    for n, r in enumerate(rounds, 1):
        for step, what in ((r.second, "second install"), (r.reconfigure, "reconfigure")):
            if step.changed_tasks:
                print(f"round {n}, {what} changed: {'; '.join(step.changed_tasks)}")
    met = all(
        step.seconds < SECOND_RUN_GOAL and step.counts is not None and step.counts["changed"] == 0
        for r in rounds
        for step in (r.second, r.reconfigure)
    )
    goal = f"the second run, and a plain reconfigure, under {SECOND_RUN_GOAL:.0f} s with changed=0"
    print(f"\ngoal ({goal}): {'met' if met else 'NOT met'}")
    return met


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--ca-bundle",
        type=Path,
        default=HOST_CA_BUNDLE if HOST_CA_BUNDLE.is_file() else None,
        help=f"a CA bundle for pip in the containers (default: {HOST_CA_BUNDLE})",
    )
    parser.add_argument(
        "--no-ca-bundle",
        dest="ca_bundle",
        action="store_const",
        const=None,
        help="pip in the containers with its own CA bundle only",
    )
    parser.add_argument("--logs", type=Path, help="keep every run's output here (default: a new /tmp dir)")
    args = parser.parse_args()
    logs = args.logs or Path(tempfile.mkdtemp(prefix="fa-bench-prod-logs-"))
    logs.mkdir(parents=True, exist_ok=True)
    print(f"outputs in {logs}", flush=True)
    rounds: list[Round] = []
    with engine() as running, tempfile.TemporaryDirectory(prefix="fa-bench-prod-") as tmp:
        work = Path(tmp)
        build_base(running)
        context = copy_checkout(work / "forge-appliance", tests=False)
        try:
            for index in range(1, args.rounds + 1):
                rounds.append(one_round(running, index, context, args.ca_bundle, work, logs))
        except AssertionError as exc:
            print(f"\n{exc}", file=sys.stderr)
            if rounds:
                report(rounds)
            return 2
    return 0 if report(rounds) else 1


if __name__ == "__main__":
    sys.exit(main())
