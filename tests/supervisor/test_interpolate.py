"""`${NAME}` expansion, as docker-compose does it."""

from __future__ import annotations

import pytest

from appliance.supervisor.interpolate import BadSubstitution, UndefinedVariable, expand

ENV = {"HOST": "10.0.0.1", "EMPTY": ""}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${HOST}:80", "10.0.0.1:80"),
        ("${PORT:-8080}", "8080"),
        ("${HOST:-127.0.0.1}", "10.0.0.1"),
        ("${EMPTY:-fallback}", "fallback"),
        ("${EMPTY-fallback}", ""),
        ("${UNSET-fallback}", "fallback"),
        ("$$HOME and $1", "$HOME and $1"),
        ("no variables", "no variables"),
    ],
)
def test_expand(text: str, expected: str) -> None:
    assert expand(text, ENV) == expected


def test_undefined_variable_without_default_is_named() -> None:
    with pytest.raises(UndefinedVariable, match=r"\$\{NOPE\}"):
        expand("x ${NOPE} y", ENV)


def test_malformed_substitution_is_refused() -> None:
    with pytest.raises(BadSubstitution):
        expand("${not closed", ENV)
