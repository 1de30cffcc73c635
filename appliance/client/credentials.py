"""The console's saved sign-ins: one access and refresh token per target, in a file only the owner can read.

The file (`~/.config/forge-appliance/credentials.json`, mode 0600, in a 0700 directory) is replaced
atomically on every change; a file that others can read is refused rather than used.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

from appliance.client.targets import config_dir


class CredentialsError(RuntimeError):
    """The credentials file cannot be used safely; the message says what to do."""


@dataclass(frozen=True)
class Credential:
    """A signed-in session at one target."""

    email: str
    access_token: str
    refresh_token: str
    expires_at: float  # Unix seconds: when the access token ends (refresh before)


def default_credentials_file() -> Path:
    return config_dir() / "credentials.json"


class CredentialStore:
    """Reads and writes the saved sessions, by target name."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_credentials_file()

    def _read(self) -> dict[str, dict[str, object]]:
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return {}
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise CredentialsError(
                f"{self.path} is readable by others (mode {stat.filemode(info.st_mode)}): "
                f"remove it or run 'chmod 600 {self.path}'"
            )
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # unreadable or damaged: the operator signs in again
        return data if isinstance(data, dict) else {}

    def get(self, target: str) -> Credential | None:
        entry = self._read().get(target)
        if not isinstance(entry, dict):
            return None
        try:
            return Credential(
                email=str(entry["email"]),
                access_token=str(entry["access_token"]),
                refresh_token=str(entry["refresh_token"]),
                expires_at=float(entry["expires_at"]),  # type: ignore[arg-type]
            )
        except (KeyError, TypeError, ValueError):
            return None

    def put(self, target: str, credential: Credential | None) -> None:
        """Save (or, with None, forget) the session of `target`."""
        data = self._read()
        if credential is None:
            if target not in data:
                return
            data.pop(target)
        else:
            data[target] = asdict(credential)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out)
            os.replace(temporary, self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
