"""The list envelope of every collection route: ``{"items": [...], "next_cursor": ...}``."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from appliance.services.common.pagination import DEFAULT_LIMIT, MAX_LIMIT

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page (1 to 200).")]
Cursor = Annotated[str | None, Query(max_length=1000, description="The next_cursor of the previous page.")]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None
    """Pass it as ?cursor= for the next page; null on the last page."""


__all__ = ["DEFAULT_LIMIT", "Cursor", "Limit", "Page"]
