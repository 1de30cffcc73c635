"""Secret values taken out of text before it leaves the host (the doctor's findings, the support bundle).

Two nets: the exact values of every secret the settings name or point at (the password of every URL
setting: database, queue, rate limits, backups..., raw and URL-encoded; the signing key, inline or in its
file; every identity of the backup key; any SecretStr or secret-named setting), each replaced by
"[redacted]" wherever it occurs; then patterns that catch what no list knows (the password in any URL's
user info, ``password=...``, ``"secret": "..."``, ``Bearer ...``). Values shorter than MIN_SECRET_CHARS are
left to the patterns: a two-letter password replaced everywhere would leave nothing readable (and tell
nobody anything).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from pydantic import SecretStr

from appliance.config import Settings
from appliance.configfile import SECRET_NAME

REDACTED = "[redacted]"
MIN_SECRET_CHARS = 4

_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)(?P<secret>[^@/\s]+)(?=@)")
_ASSIGNED = re.compile(
    r"(?P<head>(?P<quote>[\"']?)\b(?:password|passwd|pwd|secret|secret_key|api_key)\b(?P=quote)\s*[=:]\s*"
    r"[\"']?)(?P<secret>[^\s\"'&;,}]+)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<head>\bBearer\s+)(?P<secret>[A-Za-z0-9._~+/=-]{8,})", re.IGNORECASE)


@dataclass(frozen=True)
class Scrubber:
    """Replaces the known secret values, longest first, then the secret-looking patterns."""

    values: tuple[str, ...]

    @classmethod
    def of(cls, settings: Settings) -> Scrubber:
        return cls(tuple(sorted(secret_values(settings), key=lambda value: (-len(value), value))))

    def text(self, content: str) -> str:
        for value in self.values:
            if value in content:
                content = content.replace(value, REDACTED)
        for pattern in (_USERINFO, _ASSIGNED, _BEARER):
            content = pattern.sub(_keep_head, content)
        return content

    def json(self, node: Any) -> Any:
        """``text`` over every string of JSON-like data, keys included, leaving its structure alone (a
        pattern run over serialized JSON could take a ``null`` for a password, and a secret with a quote in
        it is escaped there)."""
        if isinstance(node, str):
            return self.text(node)
        if isinstance(node, dict):
            return {self.text(str(key)): self.json(value) for key, value in node.items()}
        if isinstance(node, list | tuple):
            return [self.json(item) for item in node]
        return node

    def data(self, content: bytes) -> bytes:
        """``text`` over bytes that need not be UTF-8 (a log line may be anything): undecodable bytes pass
        through as they are."""
        return self.text(content.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")


def _keep_head(match: re.Match[str]) -> str:
    return match.group("head") + REDACTED


def secret_values(settings: Settings) -> set[str]:
    """Every secret value the settings hold or point at, in the forms it may be written in."""
    found: set[str] = set()
    _walk(settings.model_dump(), found)
    if settings.security.secret_key is None:
        found |= _file_lines(settings.secret_key_file)
    found |= _file_lines(settings.backup_key_file)
    return {variant for value in found for variant in _forms(value) if len(variant) >= MIN_SECRET_CHARS}


def _walk(node: Any, found: set[str], secret: bool = False) -> None:
    if isinstance(node, SecretStr):
        found.add(node.get_secret_value())
    elif isinstance(node, dict):
        for key, value in node.items():
            named = bool(SECRET_NAME.search(str(key))) and not str(key).endswith("_file")
            _walk(value, found, secret or named)
    elif isinstance(node, list | tuple):
        for item in node:
            _walk(item, found, secret)
    elif isinstance(node, str) and node:
        if secret:
            found.add(node)
        elif "://" in node:  # any URL setting (database, queue, rate limits, backups...): its password
            found |= _url_secrets(node)


def _url_secrets(url: str) -> set[str]:
    try:
        password = urlsplit(url).password
    except ValueError:
        return set()
    return {password} if password else set()


def _file_lines(path: Path) -> set[str]:
    """The lines of a key file that are not comments (each a whole secret: a key, an age identity)."""
    try:
        content = path.read_text(errors="replace")
    except OSError:
        return set()
    return {
        line.strip() for line in content.splitlines() if line.strip() and not line.lstrip().startswith("#")
    }


def _forms(value: str) -> Iterable[str]:
    """A value as written, URL-decoded and URL-encoded (a password in a URL may be in either), and as
    escaped inside a JSON string (the appliance's log lines are JSON)."""
    forms = {value, unquote(value), quote(value, safe=""), quote(value)}
    return forms | {json.dumps(form)[1:-1] for form in forms}
