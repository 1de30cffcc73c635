"""The backup key: an age identity made once by `appliance init`, kept owner-only beside the signing key.

Archives are encrypted to the current identity's public recipient. Rotating makes a new identity and keeps
the old ones in the same file (one per line, newest first), so that older archives stay readable; an
archive is decrypted with any identity of the file. The file is the standard age identity format: the
admin can also open an archive with `age --decrypt -i backup.key FILE`.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import pyrage

from appliance.errors import ConfigError, NotFound
from appliance.keys import create_secret_file

_HEADER = "# forge-appliance backup key: keep a copy off this machine; the first identity is the current one"


@dataclass(frozen=True)
class BackupKey:
    """The identities of a key file, the current (newest) one first."""

    path: Path
    identities: tuple[pyrage.x25519.Identity, ...]
    lines: tuple[str, ...]

    @property
    def recipient(self) -> pyrage.x25519.Recipient:
        return self.identities[0].to_public()

    @property
    def public(self) -> str:
        """The current identity's public key (``age1...``): safe to show, it only encrypts."""
        return str(self.identities[0].to_public())


def create(path: Path) -> bool:
    """Write a new key file at ``path`` (mode 0600) unless one is there; True when one was written."""
    return create_secret_file(path, _render([_stamped(pyrage.x25519.Identity.generate())]))


def load(path: Path) -> BackupKey:
    """The key file at ``path``; a missing, unreadable, group/world-readable or malformed file is a
    ConfigError that names it."""
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except FileNotFoundError:
        raise NotFound(
            f"the backup key {path} does not exist: run `appliance init` (to read an archive of another "
            "appliance, give its key with --key-file)",
            details={"file": str(path)},
        ) from None
    except OSError as exc:
        message = f"cannot read the backup key {path}: {exc.strerror}"
        raise ConfigError(message, details={"file": str(path)}) from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"the backup key {path} is readable by others (mode {stat.filemode(mode)}): "
            f"run `chmod 600 {path}`",
            details={"file": str(path)},
        )
    lines = tuple(line.strip() for line in text.splitlines() if line.strip().startswith("AGE-SECRET-KEY-"))
    if not lines:
        raise ConfigError(f"the backup key {path} holds no age identity", details={"file": str(path)})
    identities = []
    for number, line in enumerate(lines, 1):
        try:
            identities.append(pyrage.x25519.Identity.from_str(line))
        except pyrage.IdentityError:
            raise ConfigError(
                f"the backup key {path}: identity {number} is not a valid age identity",
                details={"file": str(path)},
            ) from None
    stamped = tuple(_stamp_of(text, line) for line in lines)
    return BackupKey(path, tuple(identities), stamped)


def rotate(path: Path) -> BackupKey:
    """Make a new current identity; the previous ones stay in the file for reading older archives."""
    old = load(path)
    fresh = pyrage.x25519.Identity.generate()
    text = _render([_stamped(fresh), *old.lines])
    temporary = path.with_name(path.name + ".new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(temporary, path)
    return load(path)


def _stamped(identity: pyrage.x25519.Identity) -> str:
    created = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"# created: {created}\n# public key: {identity.to_public()}\n{identity}"


def _stamp_of(text: str, line: str) -> str:
    """The identity's line with the comment lines above it (its creation time and public key)."""
    all_lines = text.splitlines()
    at = next(i for i, item in enumerate(all_lines) if item.strip() == line)
    start = at
    while start > 0 and all_lines[start - 1].startswith("# ") and all_lines[start - 1] != _HEADER:
        start -= 1
    return "\n".join(all_lines[start : at + 1])


def _render(blocks: list[str]) -> str:
    return _HEADER + "\n" + "\n".join(blocks) + "\n"
