"""The example inventory for several hosts, converged for real: `ansible-playbook site.yml` run from this
machine over SSH against four separate machines (containers of a Debian 12 server image on a network of
their own, at the example's addresses moved into that network): app1 and app2 (the appliance; nginx on
app1), db1 (PostgreSQL) and redis1 (Redis). systemd is not PID 1 there: the roles start the services
directly.

One converge, shared by the module and run in the background from the end of the collection
(tests/background.py), once the server image and the appliance's wheels are built (tests/containers.py,
tests/playbooks/machines.py). The tests that change what runs come last: the concurrent migrations, then an
app host going down under load. A second converge (changed=0 on every host) adds more than a minute on a
2-core machine, past this module's share of the suite: it runs with FORGE_TEST_RECONVERGE=1; what it caught
(the generated credentials read as hosts by the next run) has a test of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from tests import background
from tests.containers import ENGINE, SERVER
from tests.playbooks.machines import DEPLOY, DEPLOY_SUDO_PASSWORD, Machines, machines
from tests.playbooks.support import failure_lines, recap
from tests.support import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]  # a fresh machine builds the image first

APP1, APP2 = "app1.example.com", "app2.example.com"
DB1, REDIS1 = "db1.example.com", "redis1.example.com"
EVERY_HOST = (APP1, APP2, DB1, REDIS1)
APPLIANCE = "/opt/forge-appliance/.venv/bin/appliance"  # the role's appliance_venv_dir
CONFIG = "/etc/forge-appliance/appliance.toml"  # appliance_config_file
LOG_DIR = "/var/log/forge-appliance"  # common_log_dir
RECONVERGE = os.environ.get("FORGE_TEST_RECONVERGE") == "1"
MIGRATIONS = sorted(Path(__file__).parents[2].glob("appliance/db/migrations/versions/[0-9]*.py"))


@dataclass
class Cluster:
    machines: Machines
    inventory: Path
    first: subprocess.CompletedProcess[str]
    second: subprocess.CompletedProcess[str] | None
    #: Trusts the self-signed certificate nginx's role made on app1.
    tls: ssl.SSLContext
    #: Seconds each converge took.
    took: list[float]

    def address(self, name: str) -> str:
        return self.machines.hosts[name].address

    @property
    def url(self) -> str:
        """nginx on app1, as users reach it (by address: the self-signed certificate names it)."""
        return f"https://{self.address(APP1)}"

    def exec(self, name: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.machines.exec(name, *argv, check=check)

    def appliance(self, name: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """An `appliance` command on an app host, as its own account (as the role runs them)."""
        return self.exec(name, "runuser", "-u", "forge-appliance", "--", APPLIANCE, *argv, check=check)

    def served_ids(self, name: str, prefix: str) -> list[str]:
        """The request ids starting with ``prefix`` in an app host's own access log."""
        found = self.exec(name, "grep", "-rhoE", f'"request_id":"{prefix}[0-9]+"', LOG_DIR, check=False)
        return [line.split(":")[1].strip('"') for line in found.stdout.split()]


def converge(stack: contextlib.ExitStack) -> Cluster:
    """The machines started (removed when the preparation closes) and site.yml run twice."""
    image = SERVER.result()
    hosts = stack.enter_context(machines(ENGINE.result(), image, secrets.token_hex(3)))
    # Sized to a test machine's share of memory (the example sizes PostgreSQL to a host of its own).
    inventory = hosts.write_inventory(hosts.work / "inventory", {"database": {"postgresql_memory_mb": 512}})
    started = time.monotonic()
    first = hosts.playbook(inventory)
    took = [time.monotonic() - started]
    second = None
    if first.returncode == 0 and RECONVERGE:
        second = hosts.playbook(inventory)
        took.append(time.monotonic() - took[0] - started)
    certificate = hosts.exec(APP1, "cat", "/etc/forge-appliance/tls/appliance.crt", check=False).stdout
    tls = ssl.create_default_context(cadata=certificate or None)
    return Cluster(hosts, inventory, first, second, tls, took)


#: Started in the background as soon as the run is collected (tests/background.py), after the server image
#: (tests/containers.py): it overlaps the tests that run before this module's.
CONVERGED_HOSTS = background.Preparation("converged_hosts", converge)


@pytest.fixture(scope="module")
def converged_hosts() -> Iterator[Cluster]:
    try:
        yield CONVERGED_HOSTS.result()
    finally:
        CONVERGED_HOSTS.close()


def output(run: subprocess.CompletedProcess[str]) -> str:
    return run.stdout[-8000:] + run.stderr[-4000:]


def converged(cluster: Cluster) -> None:
    """The tests below need the converge to have succeeded."""
    if cluster.first.returncode != 0:
        pytest.fail("site.yml did not converge the hosts (test_site_yml_converges_every_host_over_ssh)")


def test_site_yml_converges_every_host_over_ssh(converged_hosts: Cluster) -> None:
    cluster = converged_hosts
    print(f"\nconverges of four hosts over SSH: {', '.join(f'{t:.0f} s' for t in cluster.took)}")
    run = cluster.first
    assert run.returncode == 0, output(run)
    counts = recap(run.stdout)
    assert sorted(counts) == sorted(EVERY_HOST), run.stdout[-3000:]
    for host, row in counts.items():
        assert (row["failed"], row["unreachable"]) == (0, 0), (host, row)
        assert row["changed"] > 0, (host, row)
        # Each machine says that it starts its services itself.
        assert f"{host}: systemd is not PID 1 here" in run.stdout, host


def test_the_inventory_is_still_the_four_hosts_once_credentials_are_generated(
    converged_hosts: Cluster,
) -> None:
    cluster = converged_hosts
    converged(cluster)
    assert sorted(p.name for p in (cluster.inventory / "credentials").iterdir()) == [
        "appliance_secret_key", "postgresql_app_password", "postgresql_backup_password",
        "postgresql_owner_password", "redis_password",
    ]  # fmt: skip
    # The generated passwords live in the inventory's directory (common_credentials_dir): the next run, given
    # the directory as its inventory, must not read them as host names.
    listed = cluster.machines.ansible("ansible-inventory", "-i", str(cluster.inventory), "--list")
    assert listed.returncode == 0, output(listed)
    assert sorted(json.loads(listed.stdout)["_meta"]["hostvars"]) == sorted(EVERY_HOST)


@pytest.mark.skipif(not RECONVERGE, reason="a second converge of four hosts: set FORGE_TEST_RECONVERGE=1")
def test_a_second_converge_changes_nothing_on_any_host(converged_hosts: Cluster) -> None:
    cluster = converged_hosts
    converged(cluster)
    run = cluster.second
    assert run is not None
    assert run.returncode == 0, output(run)
    counts = recap(run.stdout)
    assert {host: row["changed"] for host, row in counts.items()} == dict.fromkeys(EVERY_HOST, 0), run.stdout


def test_requests_through_nginx_are_served_by_both_app_hosts(converged_hosts: Cluster) -> None:
    cluster = converged_hosts
    converged(cluster)
    prefix = f"probe-{secrets.token_hex(4)}-"
    with httpx.Client(base_url=cluster.url, verify=cluster.tls, timeout=30) as client:
        for number in range(20):
            answer = client.get("/health/ready", headers={"X-Request-ID": f"{prefix}{number}"})
            assert answer.status_code == 200, answer.text
            checks = answer.json()["checks"]
            assert checks["database"]["detail"]["backend"] == "postgresql"
            assert checks["queue"]["detail"]["backend"] == "redis"
    # Each app host's own access log names the requests it served: every one was served once, by one of the
    # two, and each served some. (Clients see neither host's address.)
    by_host = {name: cluster.served_ids(name, prefix) for name in (APP1, APP2)}
    assert sorted(by_host[APP1] + by_host[APP2]) == sorted(f"{prefix}{n}" for n in range(20)), by_host
    assert by_host[APP1], by_host
    assert by_host[APP2], by_host


def test_a_token_issued_by_one_app_host_is_accepted_by_both(converged_hosts: Cluster) -> None:
    cluster = converged_hosts
    converged(cluster)
    # The first operator, made on one app host as the README says; signed in through nginx.
    created = cluster.appliance(APP2, "--config", CONFIG, "admin", "create", "--email", "ops@example.com")
    password = re.search(r"one-time password: (\S+)", created.stdout)
    assert password, created.stdout
    prefix = f"auth-{secrets.token_hex(4)}-"
    with httpx.Client(base_url=cluster.url, verify=cluster.tls, timeout=30) as client:
        login = client.post("/api/v1/auth/login", json={"email": "ops@example.com", "password": password[1]})
        assert login.status_code == 200, login.text
        bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
        for number in range(12):
            me = client.get("/api/v1/auth/me", headers=bearer | {"X-Request-ID": f"{prefix}{number}"})
            assert me.status_code == 200, me.text
    # Both app hosts took the token: they share the signing key and the database.
    assert cluster.served_ids(APP1, prefix), "app1 served no request"
    assert cluster.served_ids(APP2, prefix), "app2 served no request"


def test_plain_http_on_the_proxy_is_redirected_to_https(converged_hosts: Cluster) -> None:
    cluster = converged_hosts
    converged(cluster)
    answer = httpx.get(f"http://{cluster.address(APP1)}/health/live", timeout=30)
    assert answer.status_code == 301
    assert answer.headers["location"] == f"https://{cluster.address(APP1)}/health/live"


def test_postgresql_admits_the_app_hosts_only(converged_hosts: Cluster) -> None:
    cluster = converged_hosts
    converged(cluster)
    password = (cluster.inventory / "credentials" / "postgresql_app_password").read_text().strip()
    target = f"host={cluster.address(DB1)} port=5432 dbname=forge_appliance user=forge_app"

    def psql(name: str) -> subprocess.CompletedProcess[str]:
        return cluster.exec(
            name,
            "env",
            f"PGPASSWORD={password}",
            "psql",
            "-XAt",
            target,
            "-c",
            "SELECT current_user",
            check=False,
        )

    assert psql(APP2).stdout.strip() == "forge_app"
    refused = psql(REDIS1)  # on the same network, with the right password, but not an app host
    assert refused.returncode != 0
    assert f'no pg_hba.conf entry for host "{cluster.address(REDIS1)}", user "forge_app"' in refused.stderr


# --------------------------------------------------------------------------- bad input over SSH


def test_an_unreachable_host_stops_the_run_before_any_role_naming_it(
    converged_hosts: Cluster, tmp_path: Path
) -> None:
    cluster = converged_hosts
    converged(cluster)
    missing = str(cluster.machines.subnet.network_address + 13) if cluster.machines.subnet else ""
    inventory = cluster.machines.write_inventory(tmp_path / "inventory")
    add_host(inventory, "app", "app3.example.com", missing)  # an address where no machine answers
    run = cluster.machines.playbook(inventory)
    assert run.returncode != 0
    assert "fatal: [app3.example.com]: UNREACHABLE!" in run.stdout, output(run)
    (line,) = failure_lines(run)
    assert f'Data could not be sent to remote host "{missing}"' in line, line
    assert f"ssh: connect to host {missing} port 22" in line, line
    assert_stopped_after_facts(run, failed="app3.example.com", unreachable=True)


def test_a_wrong_become_password_stops_the_run_at_the_first_task_naming_the_host(
    converged_hosts: Cluster, tmp_path: Path
) -> None:
    cluster = converged_hosts
    converged(cluster)
    inventory = cluster.machines.write_inventory(tmp_path / "inventory")
    # redis1 reached as an account whose sudo asks for its password, given a wrong one.
    (inventory / "host_vars").mkdir()
    (inventory / "host_vars" / f"{REDIS1}.yml").write_text(
        f"ansible_user: {DEPLOY}\nansible_become_password: not-{DEPLOY_SUDO_PASSWORD}\n"
    )
    run = cluster.machines.playbook(inventory)
    assert run.returncode != 0
    fatal = (
        f"fatal: [{REDIS1}]: FAILED! => \n    changed: false\n    msg: 'Task failed: Incorrect sudo password'"
    )
    assert fatal in run.stdout, output(run)
    assert failure_lines(run) == ["[ERROR]: Task failed: Incorrect sudo password"]
    assert_stopped_after_facts(run, failed=REDIS1, unreachable=False)


def add_host(inventory: Path, group: str, name: str, address: str) -> None:
    hosts_file = inventory / "hosts.yml"
    tree = yaml.safe_load(hosts_file.read_text())
    tree["all"]["children"][group]["hosts"][name] = {"ansible_host": address}
    hosts_file.write_text(yaml.safe_dump(tree))


def assert_stopped_after_facts(run: subprocess.CompletedProcess[str], failed: str, unreachable: bool) -> None:
    """Facts were gathered from the other hosts, and then no task ran anywhere: nothing changed."""
    assert re.findall(r"^TASK \[(.*?)\]", run.stdout, re.MULTILINE) == ["Gathering Facts"], run.stdout
    counts = recap(run.stdout)
    assert counts[failed]["unreachable" if unreachable else "failed"] == 1
    for host in EVERY_HOST:
        if host != failed:
            assert counts[host] == {"ok": 1, "changed": 0, "unreachable": 0, "failed": 0}, (host, counts)


# --------------------------------------------------------------------------- changing what runs


def test_appliance_migrate_on_both_app_hosts_at_once_makes_one_schema(converged_hosts: Cluster) -> None:
    cluster = converged_hosts
    converged(cluster)
    # The database as a fresh one: everything the schema owner made is dropped (the database stays).
    cluster.exec(DB1, "runuser", "-u", "postgres", "--", "psql", "-XAt", "-d", "forge_appliance",
                 "-c", "DROP OWNED BY forge_owner")  # fmt: skip
    config = ("--config", CONFIG)
    barrier = threading.Barrier(2)

    def migrate(name: str) -> subprocess.CompletedProcess[str]:
        barrier.wait()
        return cluster.appliance(name, *config, "migrate", check=False)

    with ThreadPoolExecutor(2) as pool:
        runs = dict(zip((APP1, APP2), pool.map(migrate, (APP1, APP2)), strict=True))
    for name, run in runs.items():
        assert run.returncode == 0, (name, run.stdout, run.stderr)
    # One applied every migration; the other waited for its lock and found nothing left to do.
    said = sorted(run.stdout.strip().split(" (")[0].split(":")[0] for run in runs.values())
    assert said == [f"applied {len(MIGRATIONS)} migration(s)", "the database was already up to date"], runs
    check = cluster.appliance(APP1, *config, "migrate", "--check", check=False)
    assert check.returncode == 0, check.stdout
    assert "the database is up to date" in check.stdout, check.stdout
    versions = cluster.exec(DB1, "runuser", "-u", "postgres", "--", "psql", "-XAt", "-d", "forge_appliance",
                            "-c", "SELECT version_num FROM alembic_version")  # fmt: skip
    assert len(versions.stdout.split()) == 1, versions.stdout
    # Both app hosts serve from it.
    with httpx.Client(base_url=cluster.url, verify=cluster.tls, timeout=30) as client:
        assert all(client.get("/health/ready").status_code == 200 for _ in range(4))


class Load:
    """Clients sending GET requests through nginx over keep-alive connections until stopped, counting what
    was served and recording every failure (an exception or a status other than 200) with the moment its
    request started."""

    def __init__(self, url: str, tls: ssl.SSLContext, clients: int = 4):
        self.url, self.tls = url, tls
        self.clients = clients
        self.served = 0
        self.failures: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(clients)]

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, verify=self.tls, timeout=60) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    answer = client.get("/health/live")
                except httpx.HTTPError as exc:
                    self.failures.append((started, repr(exc)))
                    continue
                if answer.status_code != 200:
                    self.failures.append((started, f"HTTP {answer.status_code}: {answer.text[:200]}"))
                self.served += 1

    def failed_since(self, moment: float) -> list[str]:
        return [failure for started, failure in self.failures if started >= moment]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=90)

    def wait_for_more(self, count: int, what: str) -> None:
        start = self.served
        wait_for(lambda: self.served >= start + count, timeout=60, what=what)


def test_an_app_host_going_down_under_load_loses_no_request(converged_hosts: Cluster) -> None:
    cluster = converged_hosts
    converged(cluster)
    app2 = re.escape(f'upstream: "http://{cluster.address(APP2)}:8080')
    log = "/var/log/nginx/error.log"  # nginx_log_dir on app1
    logged_before = int(cluster.exec(APP1, "stat", "--format=%s", log).stdout)

    def new_log() -> str:
        return cluster.exec(APP1, "tail", "--bytes", f"+{logged_before + 1}", log).stdout

    with Load(cluster.url, cluster.tls) as load:
        load.wait_for_more(100, "requests through nginx")
        # app2 goes down as a machine does: every process killed, its address gone. A request app2 had begun
        # to answer (nginx already passing its headers on) cannot be sent anywhere else: at most one per
        # client, in flight at that instant. Every request sent after it is answered.
        cluster.machines.running.docker("kill", cluster.machines.container(APP2))
        after_kill = time.monotonic()
        # nginx marks it down: the requests it had sent there (their connections reset) were sent to app1.
        wait_for(
            lambda: re.search(rf"upstream server temporarily disabled .*{app2}", new_log()),
            timeout=30, interval=0.5, what="nginx to mark app2 down",
        )  # fmt: skip
        # nginx_upstream_fail_timeout later it tries app2 again, a connection that cannot succeed; that
        # request too is served by app1.
        wait_for(
            lambda: re.search(rf"\) while connecting to upstream, .*{app2}", new_log()),
            timeout=60, interval=0.5, what="nginx to try app2 again",
        )  # fmt: skip
        load.wait_for_more(100, "requests once app2 is down")
    assert load.failed_since(after_kill) == [], load.failed_since(after_kill)[:10]
    in_flight = [failure for started, failure in load.failures if started < after_kill]
    assert len(in_flight) <= load.clients, in_flight
    assert all(not failure.startswith("HTTP ") for failure in in_flight), in_flight
