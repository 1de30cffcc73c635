"""FastAPI dependencies: the app context and the request's session scope (the API's only commit point)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from appliance.api.context import AppContext


async def get_context(request: Request) -> AppContext:  # async: no thread-pool hop for a lookup
    ctx: AppContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[AppContext, Depends(get_context)]


def get_session(request: Request, ctx: ContextDep) -> Iterator[Session]:
    """One session per request: committed when the route returns, rolled back when it raises. Routes that
    act for a caller use appliance.api.auth's TenantSession or PlatformSession instead."""
    with ctx.database.session_scope(write=request.method not in ("GET", "HEAD", "OPTIONS")) as session:
        yield session


# scope="function": the session commits before the response is sent. With FastAPI's default ("request")
# it would commit after, so a client could be told 201 for a change whose commit then failed, or read
# the old state in its next request.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
