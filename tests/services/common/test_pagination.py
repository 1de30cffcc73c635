"""The one cursor decoder: a cursor comes back as the key it was made from, and anything else is refused with
INVALID_CURSOR before a value from it can reach a query."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from typing import Any

import orjson
import pytest

from appliance.errors import InvalidInput
from appliance.services.common import pagination
from appliance.services.common.pagination import Keyset

TIMES = Keyset("things", dt.datetime, uuid.UUID)
NAMES = Keyset("things", str)


def forge(document: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(document)).decode().rstrip("=")


def test_a_cursor_gives_back_its_key() -> None:
    moment = dt.datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    ident = uuid.uuid4()
    key = TIMES.decode(TIMES.encode([moment, ident], "-created_at"), "-created_at")
    assert key == (moment, ident)
    assert key[0].tzinfo == dt.UTC
    assert NAMES.decode(NAMES.encode(["ß-😀"], "name"), "name") == ("ß-😀",)


@pytest.mark.parametrize(
    ("cursor", "why"),
    [
        ("", "it is not a cursor"),
        ("é", "it is not a cursor"),
        ("!!!", "it is not a cursor"),
        (forge([1]), "it is not a cursor"),
        (forge({"l": "things", "s": "", "k": [], "x": 1}), "it is not a cursor"),
        (forge({"l": "others", "s": "", "k": ["a"]}), "another list"),
        (forge({"l": "things", "s": "-name", "k": ["a"]}), "another sort"),
        (forge({"l": "things", "s": "", "k": []}), "parts"),
        (forge({"l": "things", "s": "", "k": ["a", "b"]}), "parts"),
        (forge({"l": "things", "s": "", "k": [7]}), "parts"),
        (forge({"l": "things", "s": "", "k": ["a\x00"]}), "parts"),
    ],
)
def test_anything_else_is_refused_naming_the_parameter(cursor: str, why: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        NAMES.decode(cursor)
    assert caught.value.code == "INVALID_CURSOR"
    assert caught.value.details["parameter"] == "cursor"
    assert why in caught.value.message


@pytest.mark.parametrize(
    "part",
    [
        {"t": "2026-01-01T00:00:00"},  # no time zone
        {"t": "0001-01-01T00:00:00+05:00"},  # before year 1 in UTC
        {"t": "soon"},
        {"t": 5},
        {"u": str(uuid.uuid4())},  # an id where a time goes
        {"t": "2026-01-01T00:00:00+00:00", "u": str(uuid.uuid4())},
        "2026-01-01T00:00:00+00:00",
        None,
    ],
)
def test_a_time_must_be_a_time_with_a_zone(part: Any) -> None:
    with pytest.raises(InvalidInput) as caught:
        TIMES.decode(forge({"l": "things", "s": "", "k": [part, {"u": str(uuid.uuid4())}]}))
    assert caught.value.code == "INVALID_CURSOR"


def test_a_keyset_makes_cursors_of_its_own_shape_only() -> None:
    with pytest.raises(TypeError):
        TIMES.encode([dt.datetime.now(dt.UTC)])
    with pytest.raises(TypeError):
        TIMES.encode(["x", uuid.uuid4()])
    with pytest.raises(ValueError, match="time zone"):
        TIMES.encode([dt.datetime(2026, 1, 1), uuid.uuid4()])


def test_the_unnamed_keyset_still_checks_its_keys() -> None:
    cursor = pagination.encode([dt.datetime.now(dt.UTC), uuid.uuid4()], "created_at")
    assert len(pagination.decode(cursor, "created_at")) == 2
    with pytest.raises(InvalidInput):
        pagination.decode(TIMES.encode([dt.datetime.now(dt.UTC), uuid.uuid4()], "created_at"), "created_at")
