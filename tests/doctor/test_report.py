"""The doctor's runner and the checks that read files: a check that raises or hangs is a failure saying so
(never a traceback, never a hang), a dead dependency fails within its timeout, the certificate's end is
judged by the clock given, and the table and JSON say the same."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from appliance.doctor import checks, report
from appliance.doctor.finding import Context, Verdict, ok
from tests.doctor.conftest import doctor
from tests.support import make_settings


def test_a_check_that_raises_or_hangs_is_a_failure_and_the_others_still_report(tmp_path: Path) -> None:
    released = threading.Event()

    def raises(ctx: Context) -> Verdict:
        raise RuntimeError("the probe broke\nsecond line")

    def hangs(ctx: Context) -> Verdict:
        released.wait()
        return ok("late")

    selected = (
        report.Check("raises", raises),
        report.Check("hangs", hangs),
        report.Check("after-hangs", lambda ctx: ok("ran"), needs=("hangs",)),
        report.Check("fine", lambda ctx: ok("fine")),
    )
    try:
        findings = report.run(Context(make_settings(tmp_path), timeout=1), selected)
    finally:
        released.set()
    assert [f.as_dict() for f in findings] == [
        {
            "check": "raises",
            "status": "fail",
            "finding": "the check failed: RuntimeError: the probe broke",
            "hint": "",
        },
        {
            "check": "hangs",
            "status": "fail",
            "finding": "no answer within 1 s",
            "hint": "what this check reaches hangs: see the other findings and `appliance logs`",
        },
        {"check": "after-hangs", "status": "skip", "finding": "not checked: hangs failed", "hint": ""},
        {"check": "fine", "status": "ok", "finding": "fine", "hint": ""},
    ]
    assert report.overall(findings) == "fail"
    table = report.table(findings)
    assert table.splitlines()[0].split() == ["STATUS", "CHECK", "FINDING"]
    assert "FAIL    hangs        no answer within 1 s" in table
    assert table.endswith("4 checks: 1 ok, 2 fail, 1 skip")


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that takes connections (the kernel's backlog) and never says a word: a hung server."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_a_hung_database_and_redis_fail_within_their_timeouts(tmp_path: Path, silent_port: int) -> None:
    settings = make_settings(
        tmp_path,
        f"postgresql+psycopg://app:pw@127.0.0.1:{silent_port}/hung",
        f"redis://127.0.0.1:{silent_port}/0",
        migrated=False,
        database={"connect_timeout": 1},
    )
    findings = report.run(Context(settings, timeout=3, certificates=()))
    by_name = {f.check: f for f in findings}
    assert by_name["database"].status == "fail"
    assert f"cannot reach 127.0.0.1:{silent_port}/hung as app" in by_name["database"].finding
    assert by_name["redis"].status == "fail"
    assert f"no answer from 127.0.0.1:{silent_port}/0 (queue, rate limits)" in by_name["redis"].finding
    assert by_name["queue"].finding == "not checked: redis failed"
    assert "no answer within" not in json.dumps([f.as_dict() for f in findings])  # their own timeouts said it


def _certificate(path: Path, begins: dt.datetime, ends: dt.datetime) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "forge.example.com")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(begins)
        .not_valid_after(ends)
        .sign(key, hashes.SHA256())
    )
    path.parent.mkdir(parents=True)
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


def test_the_certificate_beside_the_settings_file_is_judged_by_its_end(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    config = tmp_path / "etc" / "appliance.toml"
    now = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    path = _certificate(
        config.parent / "tls" / "appliance.crt", now - dt.timedelta(days=1), now + dt.timedelta(days=60)
    )

    def judged(at: dt.datetime) -> Verdict:
        return checks.tls_certificate(Context(settings, config, clock=lambda: at))

    assert judged(now) == ok(f"{path} (CN=forge.example.com) expires on 2026-04-30 (60 days left)")
    soon = judged(now + dt.timedelta(days=40))
    assert (soon.status, soon.finding) == (
        "warn",
        f"{path} (CN=forge.example.com) expires on 2026-04-30 (20 days left)",
    )
    assert "appliance reconfigure" in soon.hint
    ended = judged(now + dt.timedelta(days=61))
    assert (ended.status, ended.finding) == (
        "fail",
        f"{path} (CN=forge.example.com) expired on 2026-04-30 00:00 UTC",
    )
    gone = checks.tls_certificate(Context(settings, tmp_path / "other.toml", certificates=None))
    assert gone.status == "skip"
    assert str(tmp_path / "tls" / "appliance.crt") in gone.finding


def test_the_disk_checks_name_the_directory_and_its_free_space(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    findings = doctor(settings, tmp_path)
    data = findings["disk-data"]
    assert data.finding.startswith(f"{settings.data_dir}: ")
    assert "free (" in data.finding
    assert "% of inodes free" in data.finding
    backups = findings["disk-backups"]
    assert f"not created yet, measured at {settings.data_dir}" in backups.finding
    assert "the data directory's file system" in backups.finding
