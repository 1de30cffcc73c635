"""Every blocking route runs in one hop: its transaction, its work, its response, in one call on one thread.

FastAPI serves a plain ``def`` route in several thread-pool calls: the session dependency's set-up, the
route itself, the validation of its response, and the dependency's tear-down, which commits. A request
between the second and the last holds its connection and the locks its transaction took while it queues
for a thread; under a burst every thread can be waiting for a connection or a lock held by a request that
waits for a thread, and the process freezes until timeouts pick it apart. Here a route declared with
``def`` is served instead by one call on the API's offloader (appliance.api.offload), which:

1. runs the route with the sessions its dependencies made (they only make the Session object, which
   touches no connection until the route uses it; appliance.api.auth);
2. renders the response as FastAPI would (the route's response model, status code and headers);
3. stores an idempotent request's response in the same transaction (appliance.services.common.idempotency), so
   a retry gets the first answer even if the connection drops right after the commit;
4. commits (appliance.db.session.Database.transaction), and closes the sessions.

No connection is held between two calls, so a call never waits on a thread. A read (GET, HEAD) whose
connection turned out dead (the database restarted) is run once more on a fresh one; one that writes and
was refused SQLite's write lock as a reader is run once more as a writer.

Routers are made with `router()`; tests/api/test_routes.py fails for a route that uses a session without
being served in one hop.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.utils import get_typed_return_annotation, get_typed_signature
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError, ResponseValidationError
from fastapi.routing import APIRoute
from fastapi.utils import is_body_allowed_for_status_code
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from appliance.api import errors, idempotency, text_gate
from appliance.api.context import AppContext
from appliance.errors import ApplianceError, Unavailable

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

#: Marks an endpoint that is served in one hop (the route test reads it).
ONE_HOP = "__one_hop__"


class OneHopRoute(APIRoute):
    """An APIRoute whose blocking (``def``) endpoint is served in one call on the offloader, behind the
    text gate (appliance.api.text_gate) that every route's input passes first."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not _is_async(endpoint):
            endpoint = _one_hop(endpoint, self)
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        has_body = self.body_field is not None

        async def gated(request: Request) -> Response:
            if found := await text_gate.problems(request, has_body=has_body):
                raise RequestValidationError(found)
            return await handler(request)

        return gated


def router(**kwargs: Any) -> APIRouter:
    """An APIRouter whose blocking routes are served in one hop."""
    return APIRouter(route_class=OneHopRoute, **kwargs)


def _is_async(endpoint: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(endpoint) or inspect.isasyncgenfunction(endpoint)


def _one_hop(endpoint: Callable[..., Any], route: APIRoute) -> Callable[..., Any]:
    """An async endpoint with ``endpoint``'s parameters (plus the request and the response FastAPI hands
    over, when it does not take them itself) that serves it in one call."""
    signature = get_typed_signature(endpoint)
    params = list(signature.parameters.values())
    request_name = _named(params, Request) or "_one_hop_request"
    response_name = _named(params, Response) or "_one_hop_response"
    own = {p.name for p in params}
    for name, annotation in ((request_name, Request), (response_name, Response)):
        if name not in own:
            params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation))

    async def hop(**values: Any) -> Response:
        request: Request = values[request_name] if request_name in own else values.pop(request_name)
        sub_response: Response = values[response_name] if response_name in own else values.pop(response_name)
        ctx: AppContext = request.app.state.ctx
        return await ctx.offload.run(serve, Call(route, endpoint, values, request, sub_response))

    hop.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        params, return_annotation=get_typed_return_annotation(endpoint)
    )
    for attribute in ("__name__", "__qualname__", "__doc__", "__module__"):
        setattr(hop, attribute, getattr(endpoint, attribute))
    setattr(hop, ONE_HOP, True)
    return hop


def _named(params: list[inspect.Parameter], annotation: type) -> str | None:
    return next((p.name for p in params if p.annotation is annotation), None)


@dataclass(frozen=True)
class Call:
    """One request to a blocking route: what FastAPI solved for it and where the response goes."""

    route: APIRoute
    endpoint: Callable[..., Any]
    values: dict[str, Any]
    request: Request
    sub_response: Response
    """FastAPI's response for the route's headers and status code."""


def serve(call: Call) -> Response:
    """The blocking part of a request, on one thread: see the module's docstring."""
    ctx: AppContext = call.request.app.state.ctx
    try:
        return _transact(ctx, call)
    except Unavailable as exc:
        if call.request.method not in SAFE_METHODS:
            raise
        if _connection_lost(exc):
            # A read on a pooled connection the server had closed (the database restarted): SQLAlchemy
            # has dropped that pool's connections, so this try gets a fresh one.
            pass
        elif locked_out := [s for s in _sessions(call) if ctx.database.reader_was_locked_out(exc, s)]:
            # A safe-method route that writes (a heartbeat by GET) began as a reader on SQLite and was
            # refused the write lock: run it again as a writer, which waits its turn for the lock.
            for session in locked_out:
                ctx.database.as_writer(session)
        else:
            raise
    return _transact(ctx, call)


def _sessions(call: Call) -> list[Session]:
    """The distinct sessions the route's dependencies made."""
    return list({id(v): v for v in call.values.values() if isinstance(v, Session)}.values())


def _transact(ctx: AppContext, call: Call) -> Response:
    sessions = _sessions(call)
    pending = idempotency.pending(call.request)
    refusal: ApplianceError | None = None
    try:
        with ExitStack() as stack:
            for session in sessions:
                stack.enter_context(ctx.database.transaction(session))
            claimed = pending.claim(ctx, stack, sessions) if pending is not None else None
            try:
                response = render(call.route, call.endpoint(**call.values), call.sub_response)
            except ApplianceError as exc:
                refusal = exc
                if claimed is not None and exc.keep_changes:
                    claimed.complete(errors.rendered(exc))  # committed with what the refusal keeps
                raise
            if claimed is not None:
                claimed.complete(response)
            return response
    except ApplianceError as exc:
        if exc is refusal and pending is not None and not exc.keep_changes and errors.status_for(exc) < 500:
            # The route began and refused, changing nothing: the refusal is the key's answer too.
            pending.keep_refusal(ctx, errors.rendered(exc))
        raise


def _connection_lost(exc: Unavailable) -> bool:
    cause = exc.__cause__
    return isinstance(cause, DBAPIError) and cause.connection_invalidated


def render(route: APIRoute, raw: Any, sub_response: Response) -> Response:
    """The response FastAPI would send for ``raw`` returned by ``route``'s endpoint."""
    if isinstance(raw, Response):
        return raw
    status = sub_response.status_code or route.status_code or 200
    field = route.response_field
    response: Response
    if field is not None and isinstance(route.response_class, DefaultPlaceholder):
        value, problems = field.validate(raw, {}, loc=("response",))
        if problems:
            raise ResponseValidationError(errors=problems, body=raw)
        content = field.serialize_json(
            value,
            include=route.response_model_include,
            exclude=route.response_model_exclude,
            by_alias=route.response_model_by_alias,
            exclude_unset=route.response_model_exclude_unset,
            exclude_defaults=route.response_model_exclude_defaults,
            exclude_none=route.response_model_exclude_none,
        )
        response = Response(content, status_code=status, media_type="application/json")
    else:
        response_class = route.response_class
        if isinstance(response_class, DefaultPlaceholder):
            response_class = response_class.value
        response = response_class(jsonable_encoder(raw), status_code=status)
    if not is_body_allowed_for_status_code(status):
        response.body = b""
    response.headers.raw.extend(sub_response.headers.raw)
    return response
