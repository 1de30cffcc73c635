"""The doctor's checks of this host: the settings, the secret files' modes, disk space and inodes, the TLS
certificate, and the age of the newest backup. Each takes the Context and returns a Verdict."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

from appliance.doctor.finding import Context, Verdict, fail, ok, skip, warn
from appliance.errors import ConfigError

#: Free space or free inodes below these percentages of the file system: a warning, then a failure.
DISK_WARN_PERCENT = 15.0
DISK_FAIL_PERCENT = 5.0
#: A certificate that ends within this many days is a warning (an expired one is a failure).
CERTIFICATE_WARN_DAYS = 30


def config(ctx: Context) -> Verdict:
    """The settings loaded (they did, or there would be no Context) and the signing key is usable."""
    from appliance.keys import signing_key

    settings = ctx.settings
    try:
        signing_key(settings)
    except ConfigError as exc:
        return fail(str(exc), "fix what it names, then check with `appliance config check`")
    source = f"file {ctx.config_path}" if ctx.config_path else "no file (built-in defaults)"
    key = "security.secret_key" if settings.security.secret_key is not None else str(settings.secret_key_file)
    said = f"mode {settings.mode}, settings from {source}, signing key from {key}"
    if settings.mode == "development":
        return warn(said, 'development mode accepts weak secrets: set mode = "production" or "embedded"')
    return ok(said)


def secret_files(ctx: Context) -> Verdict:
    """The secrets directories and the key files in them are readable by their owner only."""
    settings = ctx.settings
    files = [settings.backup_key_file]
    if settings.security.secret_key is None:
        files.insert(0, settings.secret_key_file)
    directories = list(dict.fromkeys(path.parent for path in files))
    exposed: list[tuple[Path, int]] = []
    missing: list[Path] = []
    checked: list[Path] = []
    for path in [*directories, *files]:
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            missing.append(path)
            continue
        checked.append(path)
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            exposed.append((path, mode))
    if exposed:
        said = "; ".join(
            f"{path} is {stat.S_IMODE(mode):04o} ({stat.filemode(mode)})" for path, mode in exposed
        )
        fixes = "; ".join(f"chmod {700 if path in directories else 600} {path}" for path, _ in exposed)
        return fail(f"readable by others: {said}", f"make them owner-only: {fixes}")
    if missing:
        names = ", ".join(str(path) for path in missing)
        return warn(f"owner-only, but missing: {names}", "run `appliance init` to create the keys")
    return ok(f"owner-only: {', '.join(str(path) for path in checked)}")


def disk_data(ctx: Context) -> Verdict:
    """Free space and inodes of the data directory's file system (the database, the queue, the logs)."""
    verdict = _disk(ctx.settings.data_dir)
    floor = ctx.settings.api.min_free_disk_mb
    if verdict.status != "fail" and floor and _free_bytes(ctx.settings.data_dir) < floor * 1024 * 1024:
        return fail(
            f"{verdict.finding}: under api.min_free_disk_mb ({floor} MiB), so /health/ready answers 503",
            f"free space on the file system holding {ctx.settings.data_dir}",
        )
    return verdict


def disk_backups(ctx: Context) -> Verdict:
    """Free space and inodes where the backups are written."""
    shared = _device(ctx.settings.backup_dir) == _device(ctx.settings.data_dir)
    # Said, not warned: a small install may keep them there, knowing that a lost disk takes both.
    return _disk(ctx.settings.backup_dir, "the data directory's file system" if shared else "")


def _disk(path: Path, remark: str = "") -> Verdict:
    where = _existing(path)
    figures = os.statvfs(where)
    space = 100.0 * figures.f_bavail / figures.f_blocks if figures.f_blocks else 100.0
    inodes = 100.0 * figures.f_favail / figures.f_files if figures.f_files else None  # btrfs: no fixed count
    said = f"{path}: {_size(figures.f_bavail * figures.f_frsize)} free ({space:.0f}%)"
    said += f", {inodes:.0f}% of inodes free" if inodes is not None else ""
    remarks = [f"not created yet, measured at {where}"] if where != path else []
    remarks += [remark] if remark else []
    said += f" ({'; '.join(remarks)})" if remarks else ""
    worst = min(space, inodes if inodes is not None else 100.0)
    what = "inodes" if inodes is not None and inodes < space else "space"
    hint = (
        f"free {what} on the file system holding {path} (old logs, old backups) or grow it; "
        f"warning under {DISK_WARN_PERCENT:g}%, failure under {DISK_FAIL_PERCENT:g}%"
    )
    if worst < DISK_FAIL_PERCENT:
        return fail(said, hint)
    if worst < DISK_WARN_PERCENT:
        return warn(said, hint)
    return ok(said)


def _existing(path: Path) -> Path:
    """``path``, or its nearest ancestor that exists (a backup directory not made yet)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


def _device(path: Path) -> int:
    return _existing(path).stat().st_dev


def _free_bytes(path: Path) -> int:
    figures = os.statvfs(_existing(path))
    return figures.f_bavail * figures.f_frsize


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


def tls_certificate(ctx: Context) -> Verdict:
    """The certificate nginx serves (the nginx role's tls/appliance.crt), when this host has one."""
    from cryptography import x509

    paths = ctx.certificate_paths()
    path = next((p for p in paths if p.is_file()), None)
    if path is None:
        return skip(f"no certificate at {', '.join(str(p) for p in paths)}: this host terminates no TLS")
    certificate = x509.load_pem_x509_certificate(path.read_bytes())
    subject = certificate.subject.rfc4514_string() or "no subject"
    ends, begins = certificate.not_valid_after_utc, certificate.not_valid_before_utc
    now = ctx.clock()
    left = ends - now
    renew = (
        "renew it: set nginx_certificate and nginx_certificate_key and run `appliance reconfigure` "
        f"(a self-signed one: remove {path} and reconfigure to make a new one)"
    )
    if left <= dt.timedelta(0):
        return fail(f"{path} ({subject}) expired on {ends:%Y-%m-%d %H:%M} UTC", renew)
    if begins > now:
        return fail(
            f"{path} ({subject}) is not valid before {begins:%Y-%m-%d %H:%M} UTC", "check this host's clock"
        )
    said = f"{path} ({subject}) expires on {ends:%Y-%m-%d} ({left.days} days left)"
    if left < dt.timedelta(days=CERTIFICATE_WARN_DAYS):
        return warn(said, renew)
    return ok(said)


def backups(ctx: Context) -> Verdict:
    """The newest good full backup is younger than backups.max_age_hours."""
    from appliance.services.backups import catalog

    settings = ctx.settings
    directory, limit = settings.backup_dir, settings.backups.max_age_hours
    newest = catalog.newest_good(directory)
    if newest is None:
        if not settings.backups.schedule:
            return warn(
                f"no backup in {directory}, and none scheduled ([backups] schedule is empty)",
                "take one with `appliance backup create`, and set [backups] schedule",
            )
        return fail(
            f"no good backup in {directory}",
            "run `appliance backup create`; if the scheduled one fails, the worker's log says why",
        )
    hours = (ctx.clock() - newest.created_at).total_seconds() / 3600
    said = f"newest good backup {newest.name}, {hours:.1f} h old (backups.max_age_hours = {limit:g})"
    if hours > limit:
        return fail(
            said,
            "run `appliance backup create`; check that the worker runs the schedule "
            "(`appliance status`, `appliance logs worker`)",
        )
    return ok(said)
