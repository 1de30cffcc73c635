"""docker-compose style `${NAME}` / `${NAME:-default}` expansion of strings in the services file."""

from __future__ import annotations

import re
from collections.abc import Mapping

# `$$` is a literal dollar; `${NAME}`, `${NAME:-default}` (default when unset or empty) and
# `${NAME-default}` (default only when unset), as docker-compose reads them. A `$` followed by anything
# else is kept as it is, so shell snippets such as `$1` survive.
_PATTERN = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>[^}]*))?\}|\$\{")


class UndefinedVariable(ValueError):
    """A `${NAME}` without a default names a variable that is not set."""

    def __init__(self, name: str) -> None:
        super().__init__(f"undefined variable ${{{name}}} (set it, or write ${{{name}:-default}})")
        self.name = name


class BadSubstitution(ValueError):
    """A `${` that does not open a well-formed `${NAME...}`."""


def expand(text: str, environ: Mapping[str, str]) -> str:
    """Return `text` with every `${...}` replaced from `environ`."""

    def replace(match: re.Match[str]) -> str:
        whole = match.group(0)
        if whole == "$$":
            return "$"
        name = match.group("name")
        if name is None:
            raise BadSubstitution(f"bad substitution in {text!r}: expected ${{NAME}} or ${{NAME:-default}}")
        value = environ.get(name)
        op = match.group("op")
        if op == ":-" and not value:
            return match.group("default")
        if op == "-" and value is None:
            return match.group("default")
        if value is None:
            raise UndefinedVariable(name)
        return value

    return _PATTERN.sub(replace, text)
