"""FastAPI dependencies: the app context and the request's session (committed by the route's one hop)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from appliance.api.context import AppContext

log = logging.getLogger(__name__)


async def get_context(request: Request) -> AppContext:  # async: no thread-pool hop for a lookup
    ctx: AppContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[AppContext, Depends(get_context)]


@asynccontextmanager
async def unused_after(ctx: AppContext, session: Session) -> AsyncIterator[None]:
    """Yield to the route, then make sure ``session`` holds nothing: the one hop (appliance.api.routing)
    has committed and closed it. One still in a transaction was used by a route that is not served in one
    hop (an ``async def`` route): it is rolled back, off the event loop, and the mistake logged loudly."""
    try:
        yield
    finally:
        if session.in_transaction():
            log.error("a session was used outside a one-hop route; its transaction is rolled back")
            await ctx.offload.run(session.close)


async def get_session(request: Request, ctx: ContextDep) -> AsyncIterator[Session]:
    """One session per request, with no tenant (sign-in, token refresh). Routes that act for a caller use
    appliance.api.auth's TenantSession, PlatformSession or CallerSession instead."""
    session = ctx.database.new_session(write=request.method not in ("GET", "HEAD", "OPTIONS"))
    async with unused_after(ctx, session):
        yield session


# scope="function": the dependency ends before the response is sent, like the commit of the route's hop.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
