"""`appliance jobs list|show|retry|cancel` as an operator runs them (real processes, both databases)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

from appliance.db.session import Database
from appliance.models import Job, JobState
from appliance.services.jobs import durable as jobs
from appliance.workers.tasks import NOOP
from tests.support import make_settings, settings_env


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", "jobs", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_operator_lists_shows_cancels_and_retries_jobs(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url)
    env = settings_env(settings)
    database = Database(settings)
    with database.session_scope() as session:
        job_id = str(jobs.enqueue(session, NOOP, {"echo": "hello"}, tenant_id=None).id)

    listed = run(env, "list")
    assert listed.returncode == 0, listed.stderr
    assert job_id in listed.stdout
    assert "system.noop" in listed.stdout
    assert run(env, "list", "--state", "dead").stdout.strip() == "no jobs"
    shown = json.loads(run(env, "show", job_id).stdout)
    assert (shown["state"], shown["payload"]) == ("queued", {"echo": "hello"})

    assert run(env, "cancel", job_id).stdout.strip() == f"job {job_id} is cancelled"
    refused = run(env, "cancel", job_id)
    assert refused.returncode == 1
    assert "only queued jobs can be cancelled" in refused.stderr
    assert run(env, "retry", job_id).stdout.strip() == f"job {job_id} is queued"
    with database.session_scope(write=False) as session:
        job = session.get(Job, uuid.UUID(job_id))
        assert job is not None
        assert (job.state, job.attempts) == (JobState.QUEUED, 0)
    database.dispose()


def test_bad_names_are_one_line_errors(tmp_path: Path) -> None:
    env = settings_env(make_settings(tmp_path))
    for args, message in (
        (("show", "nope"), "'nope' is not a job id"),
        (("show", "00000000-0000-0000-0000-000000000000"), "was not found"),
        (("list", "--state", "exploded"), "'exploded' is not a job state"),
        (("list", "--tenant", "nobody"), "nobody"),
    ):
        result = run(env, *args)
        assert result.returncode == 1, (args, result.stdout)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
