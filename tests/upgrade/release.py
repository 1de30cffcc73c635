"""The previous release as an admin has it installed: its source (the git tag, else the commit recorded in
PREVIOUS_RELEASE), a venv that runs it, and an appliance started from that venv with data in it.

Venvs are cheap here: `venv --without-pip` and a .pth naming the release's source. Their third-party
packages come from this test run's own venv through PYTHONPATH, which every process of the appliance
inherits (the supervisor hands its environment to its programs), so the venv that `appliance upgrade`
makes with a real `pip install` (PIP_NO_DEPS: the appliance only) runs too.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.support import REPOSITORY, appliance_env, wait_for

#: "<tag> <commit>": the release before this one, for a clone without tags.
RECORD = Path(__file__).with_name("PREVIOUS_RELEASE")
SITE_PACKAGES = sysconfig.get_paths()["purelib"]
BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)


def previous_release(target: Path) -> tuple[str, Path]:
    """The previous release's version tag and its source tree, extracted into `target` (git archive)."""
    tag, commit = RECORD.read_text().split()
    ref = tag if _git("rev-parse", "--verify", "--quiet", f"{tag}^{{commit}}").returncode == 0 else commit
    archive = _git("archive", "--format=tar", ref, text=False)
    if archive.returncode != 0:
        raise RuntimeError(
            f"neither the tag {tag} nor the commit {commit} is in this clone: {archive.stderr!r}"
        )
    target.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")
    return tag, target


def _git(*args: str, text: bool = True) -> subprocess.CompletedProcess[Any]:
    return subprocess.run(["git", *args], cwd=REPOSITORY, capture_output=True, text=text, check=False)


def make_venv(venv: Path, source: Path) -> Path:
    """A venv whose `appliance` is the one in `source`."""
    subprocess.run([BASE_PYTHON, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(purelib, "forge_appliance_source.pth").write_text(f"{source}\n")
    return venv


@dataclass
class Install:
    """An appliance installed in `venv` (the path its programs start from), run as a user would."""

    venv: Path
    env: dict[str, str]
    data: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['APPLIANCE_API__PORT']}"

    def appliance(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`appliance ARGS` as the venv's Python runs it (-P: the working directory stays out)."""
        done = subprocess.run(
            [str(self.venv / "bin" / "python"), "-P", "-m", "appliance", *args],
            env=self.env,
            cwd=self.data.parent,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert not check or done.returncode == 0, done.stdout + done.stderr
        return done

    def python(self, script: str) -> str:
        done = subprocess.run(
            [str(self.venv / "bin" / "python"), "-P", "-c", script],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def api_pids(self) -> set[int]:
        status = json.loads(self.appliance("status", "--json").stdout)
        return {p["pid"] for p in status["programs"] if p["name"].startswith("api")}

    def served_version(self) -> str:
        version: str = httpx.get(f"{self.url}/api/v1", timeout=10).json()["version"]
        return version

    def stop(self) -> None:
        self.appliance("down", check=False)
        shutil.rmtree(self.data, ignore_errors=True)


def install(root: Path, source: Path, database_url: str | None, name: str) -> Install:
    """The release in `source` installed under `root` (`root/.venv`), initialised and migrated by itself."""
    env, data = appliance_env(name)
    env |= {
        "PYTHONPATH": SITE_PACKAGES,
        "PIP_NO_DEPS": "1",
        "APPLIANCE_SECURITY__PASSWORD_HASH_MEMORY_KIB": "1024",
    }
    env["APPLIANCE_SECURITY__PASSWORD_HASH_PASSES"] = "1"
    if database_url:
        env["APPLIANCE_DATABASE__URL"] = database_url
    env.pop("PYTHONSAFEPATH", None)
    installed = Install(make_venv(root / ".venv", source), env, data)
    installed.appliance("init")
    installed.appliance("migrate")
    return installed


#: Run by the installed release's own Python: a tenant with its owner, an organization and a project, and
#: an operator account; prints the operator's one-time password.
SEED = """
from appliance.configfile import load_settings
from appliance.db.session import Database
from appliance.db.tenancy import set_tenant
from appliance.services.access.actors import Actor, cli_operator
from appliance.services.identity import passwords
from appliance.services.tenancy import operators, organizations, projects, tenants

settings = load_settings()
passwords.configure(1024, 1)
database = Database(settings)
with database.session_scope() as session:
    made = tenants.create(session, cli_operator(), slug="survivor", name="Survivor", plan="team",
                          owner_email="owner@survivor.test")
    tenant_id, owner_id = made.tenant.id, made.owner.user.id
    operator = operators.create(session, "operator@survivor.test", "Operator")
with database.session_scope() as session:
    set_tenant(session, tenant_id)
    actor = Actor(user_id=owner_id, tenant_id=tenant_id)
    organization = organizations.create(session, actor, name="Research", slug="research")
    session.flush()
    projects.create(session, actor, organization_id=organization.id, name="Keeps its data")
database.dispose()
print(operator.one_time_password)
"""
NEW_PASSWORD = "correct-horse-battery-staple-42"


def seed(installed: Install) -> str:
    """Data in the installed appliance; an operator's access token, signed in through its API."""
    one_time = installed.python(SEED).strip()
    login = httpx.post(
        f"{installed.url}/api/v1/auth/login",
        json={"email": "operator@survivor.test", "password": one_time},
        timeout=30,
    )
    assert login.status_code == 200, login.text
    token = str(login.json()["access_token"])
    changed = httpx.post(
        f"{installed.url}/api/v1/auth/password",
        json={"current_password": one_time, "new_password": NEW_PASSWORD},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert changed.status_code == 204, changed.text
    return token


def tenants_seen(installed: Install, token: str) -> list[str]:
    """The tenants the running API lists to the operator."""
    page = httpx.get(
        f"{installed.url}/api/v1/tenants", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert page.status_code == 200, page.text
    return sorted(t["slug"] for t in page.json()["items"])


def stored(database_url: str) -> dict[str, list[str]]:
    """What the database holds of the seed, read directly (as the superuser or the SQLite file's owner)."""
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            wanted = (("tenants", "slug"), ("projects", "name"), ("users", "email"))
            return {
                table: sorted(str(v) for v in conn.execute(text(f"SELECT {column} FROM {table}")).scalars())
                for table, column in wanted
            }
    finally:
        engine.dispose()


def up(installed: Install) -> None:
    installed.appliance("up")
    wait_for(lambda: httpx.get(f"{installed.url}/health/ready", timeout=5).status_code == 200, what="ready")
