"""The one rule for rendering a time in a response body: ISO 8601 in UTC with ``Z``, to the microsecond.

``2026-11-22T01:27:39.104512Z``: always six digits of fraction, so that two times compare as strings as
they do as times (a client may sort by them), and a time read back equals the stored one (nothing is cut
off, so a time a client sends back as a filter matches the row it came from). Every datetime field of every
response schema is a :data:`Timestamp`; a route that serializes plain rows itself renders its times with
:func:`rfc3339` (appliance.api.schemas.projects.render_page)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import PlainSerializer, WithJsonSchema

EXAMPLE = "2026-11-22T01:27:39.104512Z"


def rfc3339(moment: dt.datetime) -> str:
    """``2026-11-22T01:27:39.104512Z``: UTC, microseconds (a naive time is taken as UTC, as the database
    stores it)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return f"{moment.isoformat(timespec='microseconds')}Z"  # isoformat: strftime's output, 5x as fast


#: A time in a response body, rendered as :func:`rfc3339` does.
Timestamp = Annotated[
    dt.datetime,
    PlainSerializer(rfc3339, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": [EXAMPLE]}),
]
