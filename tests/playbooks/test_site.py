"""`sudo ./install.sh --production` converges this machine with the bundled playbooks (through `appliance
reconfigure` and the admin's variables file), and a second run changes nothing.

One converge and one re-run, shared by the module and started in the background as soon as the run is
collected (tests/background.py), both by install.sh from a snapshot of this checkout:
PostgreSQL (a cluster of its own), Redis, the appliance and nginx in front of it, each on a free port and,
where the roles allow it, under a temporary prefix named in the variables file. Where systemd is not PID 1
(this kind of machine) the roles start the services directly, which is what is cleaned up after.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import ssl
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from tests import background
from tests.servers import free_port, unavailable
from tests.support import clean_environ, copy_checkout, wait_for

pytestmark = pytest.mark.e2e

HOST = "localhost"  # this host, as `appliance reconfigure` names it
#: The system's tools only: install.sh makes its own venv (with the system's Python) in the snapshot.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Converged:
    prefix: Path
    variables: dict[str, object]
    first: subprocess.CompletedProcess[str]
    second: subprocess.CompletedProcess[str]
    credentials_after_first: dict[str, bytes]

    def path(self, name: str) -> Path:
        return Path(str(self.variables[name]))

    @property
    def user(self) -> str:
        return str(self.variables["common_user"])

    def port(self, name: str) -> int:
        return int(str(self.variables[name]))

    def install(self, *args: str) -> subprocess.CompletedProcess[str]:
        return install_production(self.prefix, *args)


def converge_vars(prefix: Path) -> dict[str, object]:
    """The admin's variables file: every port a free one, every path the roles allow under ``prefix``. No
    package source: install.sh passes its own checkout (appliance_source_dir)."""
    tag = prefix.name.removeprefix("fa-pb-").lower().replace("_", "x")
    https_port = free_port()
    user = f"forge-pb{tag}"  # the run's own account: two runs on one machine never share one
    return {
        "common_user": user,
        "common_group": user,
        "common_config_dir": f"{prefix}/etc",
        "common_data_dir": f"{prefix}/data",
        "common_log_dir": f"{prefix}/log",
        "common_private_address": "127.0.0.1",
        "common_credentials_dir": f"{prefix}/credentials",
        "common_apt_cache_valid_time": 31536000,  # no apt-get update when the packages are there
        "postgresql_cluster": f"forgetest{tag}",
        "postgresql_port": free_port(),
        "postgresql_data_dir": f"{prefix}/pgdata",
        "postgresql_memory_mb": 512,
        "postgresql_max_connections": 50,
        "redis_instance": f"forgetest{tag}",
        "redis_port": free_port(),
        "redis_config_file": f"{prefix}/redis.conf",
        "redis_data_dir": f"{prefix}/redis",
        "redis_pid_file": f"{prefix}/redis-run/redis.pid",
        "redis_log_file": f"{prefix}/redis-log/redis.log",
        "appliance_venv_dir": f"{prefix}/venv",
        "appliance_systemd_unit_dir": f"{prefix}/systemd",
        "appliance_api_port": free_port(),
        "appliance_api_instances": 1,
        "nginx_conf_file": f"{prefix}/nginx.conf",
        "nginx_pid_file": f"{prefix}/nginx.pid",
        "nginx_log_dir": f"{prefix}/nginx-log",
        "nginx_tls_dir": f"{prefix}/tls",
        "nginx_http_port": free_port(),
        "nginx_https_port": https_port,
        "nginx_server_name": "localhost",
        "prometheus_enabled": True,
        "prometheus_config_file": f"{prefix}/prometheus/prometheus.yml",
        "prometheus_storage_dir": f"{prefix}/prometheus-data",
        "prometheus_pid_file": f"{prefix}/prometheus.pid",
        "prometheus_listen": f"127.0.0.1:{free_port()}",
        "prometheus_scrape_interval": 1,
    }


def install_production(prefix: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The snapshot's install.sh as root runs it, the command linked under ``prefix`` (never into this
    machine's /usr/local/bin), the settings file under ``prefix`` too."""
    env = clean_environ() | {"PATH": SYSTEM_PATH, "APPLIANCE_CONFIG": str(prefix / "etc/appliance.toml")}
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        ["bash", str(prefix / "src/install.sh"), "--production", "--bin-dir", str(prefix / "bin"), *args],
        cwd=prefix,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )


def summary_row(stdout: str) -> dict[str, int]:
    """This host's counts in the summary `appliance reconfigure` ends with."""
    rows = re.findall(rf"^  {HOST} +(\d+) +(\d+) +(\d+) +(\d+) +(\d+)$", stdout, re.MULTILINE)
    assert len(rows) == 1, stdout[-4000:]
    return dict(zip(("ok", "changed", "failed", "unreachable", "skipped"), map(int, rows[0]), strict=True))


def postgres_version() -> str:
    return str(max(int(p.name) for p in Path("/usr/lib/postgresql").iterdir() if p.name.isdigit()))


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def clean_up(prefix: Path, variables: dict[str, object]) -> None:
    """Stop what the run started, drop its cluster, remove its account and files."""
    config = prefix / "etc/appliance.toml"
    appliance = prefix / "venv/bin/appliance"
    user = str(variables["common_user"])
    if appliance.exists() and config.exists():
        subprocess.run(
            ["runuser", "-u", user, "--", str(appliance), "--config", str(config), "down"],
            capture_output=True,
            check=False,
            timeout=180,
        )
    if (prefix / "nginx.conf").exists():
        subprocess.run(
            ["nginx", "-c", str(prefix / "nginx.conf"), "-s", "quit"], capture_output=True, check=False
        )
    for pid_file in (prefix / "redis-run/redis.pid", prefix / "prometheus.pid"):
        pid = read_pid(pid_file)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    if Path("/usr/lib/postgresql").is_dir():
        subprocess.run(
            ["pg_dropcluster", "--stop", postgres_version(), str(variables["postgresql_cluster"])],
            capture_output=True,
            check=False,
        )
    subprocess.run(["userdel", user], capture_output=True, check=False)
    subprocess.run(["groupdel", user], capture_output=True, check=False)
    shutil.rmtree(prefix, ignore_errors=True)


def converge(stack: contextlib.ExitStack) -> Converged:
    """install.sh --production twice on a snapshot of this checkout; what it started is cleaned up when the
    preparation closes."""
    if os.geteuid() != 0:
        unavailable("converging this machine with the playbooks needs root")
    if shutil.which("apt-get") is None or shutil.which("runuser") is None:
        unavailable("the playbooks need a Debian or Ubuntu machine (apt-get, runuser)")
    if shutil.which("prometheus") is None:
        unavailable("Prometheus is not installed (apt-get install --no-install-recommends prometheus)")
    prefix = Path(tempfile.mkdtemp(prefix="fa-pb-", dir="/tmp"))  # short: the control socket's path
    prefix.chmod(0o755)  # postgres, redis, www-data and the appliance's account reach their parts under it
    variables = converge_vars(prefix)
    stack.callback(clean_up, prefix, variables)
    copy_checkout(prefix / "src", tests=False)
    (prefix / "reconfigure.yml").write_text(json.dumps(variables, indent=1))  # JSON is YAML
    first = install_production(prefix, "--vars", "reconfigure.yml")  # relative to where it is run
    credentials = (
        {p.name: p.read_bytes() for p in (prefix / "credentials").iterdir()}
        if (prefix / "credentials").is_dir()
        else {}
    )
    second = install_production(prefix, "--vars", "reconfigure.yml") if first.returncode == 0 else first
    return Converged(prefix, variables, first, second, credentials)


#: Started in the background as soon as the run is collected (tests/background.py): it overlaps the tests
#: that run before this module's.
CONVERGED = background.Preparation("converged", converge)


@pytest.fixture(scope="module")
def converged() -> Iterator[Converged]:
    try:
        yield CONVERGED.result()
    finally:
        CONVERGED.close()


@pytest.mark.timeout(1800)  # the first test waits for the converge (two install.sh runs: minutes)
def test_the_first_run_converges_the_host_and_prints_the_url_and_password(converged: Converged) -> None:
    run = converged.first
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert "installing forge-appliance with the production extra (Ansible)" in run.stdout
    assert f"variables file: {converged.prefix}/reconfigure.yml" in run.stdout
    counts = summary_row(run.stdout)
    assert counts["failed"] == 0
    assert counts["unreachable"] == 0
    assert counts["changed"] > 0
    assert (
        f"Forge Appliance is running at https://localhost:{converged.port('nginx_https_port')}\n"
        in run.stdout
    )
    assert "operator admin@appliance.local created\none-time password: " in run.stdout
    assert "the operator account printed above" in run.stdout


def test_the_appliance_answers_over_https_through_nginx(converged: Converged) -> None:
    tls = ssl.create_default_context(cafile=str(converged.path("nginx_tls_dir") / "appliance.crt"))
    port = converged.port("nginx_https_port")
    answer = httpx.get(f"https://localhost:{port}/health/ready", verify=tls, timeout=30)
    assert answer.status_code == 200, answer.text
    checks = answer.json()["checks"]
    assert checks["database"]["detail"]["backend"] == "postgresql"
    assert checks["queue"]["detail"]["backend"] == "redis"


def test_plain_http_is_redirected_to_https(converged: Converged) -> None:
    http, https = converged.port("nginx_http_port"), converged.port("nginx_https_port")
    answer = httpx.get(f"http://localhost:{http}/health/ready?x=1", timeout=30)
    assert answer.status_code == 301
    assert answer.headers["location"] == f"https://localhost:{https}/health/ready?x=1"


def test_a_second_run_changes_nothing_and_makes_no_new_password(converged: Converged) -> None:
    run = converged.second
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert "is up to date with this checkout" in run.stdout
    assert summary_row(run.stdout)["changed"] == 0, run.stdout[-4000:]
    assert "no task changed anything" in run.stdout
    assert "an operator account exists already; none created" in run.stdout
    assert "one-time password" not in run.stdout
    assert (
        f"Forge Appliance is running at https://localhost:{converged.port('nginx_https_port')}" in run.stdout
    )
    # The command it prints for the next converge names no package: install.sh recorded its checkout beside
    # the settings file, where a plain `appliance reconfigure` finds it; the same choices.
    prefix = converged.prefix
    assert f"--config {prefix}/etc/appliance.toml reconfigure --vars {prefix}/reconfigure.yml " in run.stdout
    record = (prefix / "etc/source.yml").read_text()
    assert record.endswith(f'\nappliance_source_dir: "{prefix}/src"\n'), record


def test_a_second_run_leaves_apt_alone_when_every_package_is_installed(converged: Converged) -> None:
    # dpkg's list says every package is there: no apt run (no `apt-get update`, no network) on a re-run.
    out = converged.second.stdout
    assert "task: common : List the installed packages\n  ok: localhost\n" in out, out[-4000:]
    for task in (
        "common : Install the base packages",
        "postgresql : Install PostgreSQL",
        "redis : Install Redis",
        "nginx : Install nginx",
    ):
        assert f"task: {task}\n  skipped: localhost\n" in out, task


def test_a_variables_file_that_is_not_a_mapping_stops_install_sh_before_anything_changes(
    converged: Converged,
) -> None:
    bad = converged.prefix / "bad.yml"
    bad.write_text("- nginx_https_port: 8443\n")
    run = converged.install("--vars", str(bad))
    assert run.returncode == 1
    assert (
        f"appliance: error: the variables file {bad} must be a YAML mapping of variable names to values"
        in run.stderr
    )
    assert "this host did not converge" in run.stderr
    assert "Forge Appliance is running" not in run.stdout
    assert "task:" not in run.stdout


def test_secrets_are_kept_owner_only_and_never_made_again(converged: Converged) -> None:
    credentials = converged.prefix / "credentials"
    assert converged.credentials_after_first, "no password was generated"
    assert {p.name: p.read_bytes() for p in credentials.iterdir()} == converged.credentials_after_first
    for path in credentials.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    key = converged.path("common_data_dir") / "secrets/signing.key"
    info = key.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert pwd.getpwuid(info.st_uid).pw_name == converged.user
    assert (
        key.read_text().strip() == converged.credentials_after_first["appliance_secret_key"].decode().strip()
    )
    config = converged.path("common_config_dir") / "appliance.toml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o640  # it holds the database and Redis passwords


def test_the_app_role_logs_in_without_bypassing_row_level_security(converged: Converged) -> None:
    query = (
        "SELECT r.rolname, r.rolcanlogin, r.rolbypassrls, r.rolsuper FROM pg_roles r "
        "WHERE r.rolname IN ('forge_app', 'forge_owner') ORDER BY 1; "
        "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'forge_appliance'"
    )
    port = str(converged.port("postgresql_port"))
    out = subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-p", port, "-XAt", "-F", " ", "-c", query],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    assert out[:3] == ["forge_app t f f", "forge_owner t f f", "forge_owner"]


def test_the_service_user_backs_up_and_verifies_through_the_backup_role(converged: Converged) -> None:
    """Production's path: pg_dump over TCP as forge_backup (BYPASSRLS, pg_read_all_data), a scratch
    database for verify (CREATEDB), the key made by `appliance init` under the data directory."""
    appliance = converged.path("appliance_venv_dir") / "bin/appliance"
    config = converged.path("common_config_dir") / "appliance.toml"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = ["runuser", "-u", converged.user, "--", str(appliance), "--config", str(config), *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)

    made = run("backup", "create", "--json")
    assert made.returncode == 0, made.stderr
    archive = json.loads(made.stdout)
    assert archive["database"] == "postgresql"
    assert archive["rows"]["users"] >= 1  # the operator install.sh made
    verified = run("backup", "verify", archive["path"])
    assert verified.returncode == 0, verified.stderr + verified.stdout
    assert "all intact" in verified.stdout
    assert Path(archive["path"]).parent == converged.path("common_data_dir") / "backups"


def test_redis_wants_its_password(converged: Converged) -> None:
    port = converged.port("redis_port")
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=port, socket_timeout=5).ping()
    password = converged.credentials_after_first["redis_password"].decode().strip()
    client = redis.Redis(port=port, password=password, socket_timeout=5)
    assert client.ping()
    assert client.config_get("appendonly") == {"appendonly": "yes"}


def test_the_written_unit_passes_systemd_analyze(converged: Converged) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        unavailable("systemd-analyze is not installed")
    assert analyze is not None
    unit = converged.path("appliance_systemd_unit_dir") / "forge-appliance.service"
    text = unit.read_text()
    assert f"ExecStart={converged.path('appliance_venv_dir')}/bin/appliance supervise" in text
    assert f"User={converged.user}" in text
    run = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stderr.strip() == "", run.stderr


def test_the_run_says_when_services_are_started_without_systemd(converged: Converged) -> None:
    if Path("/run/systemd/system").is_dir():
        pytest.skip("systemd runs this machine: the roles use it")
    assert "systemd is not PID 1 here" in converged.first.stdout


def test_prometheus_scrapes_the_appliance_with_its_alert_rules(converged: Converged) -> None:
    prometheus = f"http://{converged.variables['prometheus_listen']}"

    def target() -> dict[str, object] | None:
        try:
            answer = httpx.get(f"{prometheus}/api/v1/targets", timeout=5)
        except httpx.TransportError:
            return None
        active = answer.json()["data"]["activeTargets"]
        return active[0] if active and active[0]["health"] == "up" else None

    wait_for(lambda: target() is not None, timeout=60, interval=0.5, what="Prometheus scraping the appliance")
    scraped = target()
    assert scraped is not None
    assert scraped["scrapeUrl"] == f"http://127.0.0.1:{converged.port('appliance_api_port')}/metrics"
    up = httpx.get(f"{prometheus}/api/v1/query", params={"query": 'up{job="appliance"}'}, timeout=5).json()
    assert [sample["value"][1] for sample in up["data"]["result"]] == ["1"]
    rules = httpx.get(f"{prometheus}/api/v1/rules", timeout=5).json()["data"]["groups"]
    assert rules, "no alert rule loaded"
    assert all(group["file"].endswith("forge-appliance-alerts.yml") for group in rules)
