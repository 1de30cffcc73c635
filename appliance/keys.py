"""The token signing key: generated once by `appliance init`, readable by its owner only."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from appliance.config import MIN_SECRET_LENGTH, PLACEHOLDER_SECRET, Settings
from appliance.errors import ConfigError


def create_signing_key(path: Path) -> bool:
    """Write a new random key to ``path`` (mode 0600) unless one is there; True when one was written."""
    return create_secret_file(path, secrets.token_urlsafe(48) + "\n")


def create_secret_file(path: Path, content: str) -> bool:
    """Write ``content`` to a new file ``path`` readable by its owner only (its directory too, when made
    here) unless the file is there; True when it was written. Never replaces a key that exists."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        fh.write(content)
    return True


def signing_key(settings: Settings) -> str:
    """The key that signs tokens; refuses a missing, placeholder or weak one outside development."""
    if settings.security.secret_key is not None:
        key, origin = settings.security.secret_key.get_secret_value(), "security.secret_key"
    else:
        path = settings.secret_key_file
        try:
            mode = path.stat().st_mode
            key = path.read_text().strip()
        except FileNotFoundError:
            if settings.mode == "development":
                return secrets.token_urlsafe(48)
            raise ConfigError(
                f"the signing key file {path} does not exist: run `appliance init` first",
                details={"file": str(path)},
            ) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"the signing key file {path} is readable by others (mode {stat.filemode(mode)}): "
                f"run `chmod 600 {path}`",
                details={"file": str(path)},
            )
        origin = str(path)
    if settings.mode != "development" and (key == PLACEHOLDER_SECRET or len(key) < MIN_SECRET_LENGTH):
        raise ConfigError(
            f"the signing key from {origin} is the placeholder or shorter than {MIN_SECRET_LENGTH} "
            "characters; a real key is required outside development mode (`appliance init` makes one)",
            details={"source": origin},
        )
    return key
