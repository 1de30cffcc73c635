"""``Idempotency-Key`` on POST requests (API.md): the guard claims the key before the route acts, the
request middleware stores the response once it is sent, and a repeat gets the stored response back.

Only authenticated requests take part: the key belongs to the caller (a user or an API key), so nobody
can replay another's response. Sign-in and token refresh are not idempotent by design (a replayed token
would outlive its rotation)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from appliance.api.context import AppContext
from appliance.errors import ApplianceError
from appliance.services import idempotency
from appliance.services.actors import RequestInfo

STATE_KEY = "idempotency"


class IdempotentReplay(Exception):
    """Raised by the guard to answer with the first response of a repeated request."""

    def __init__(self, replay: idempotency.Replay):
        super().__init__("replay")
        self.replay = replay


def _principal(request: Request, ctx: AppContext) -> str | None:
    authorization = request.headers.get("authorization", "")
    key = request.headers.get("x-api-key")
    try:
        if authorization.lower().startswith("bearer "):
            return ctx.auth.bearer(authorization[7:].strip(), RequestInfo()).principal
        if key:
            return ctx.auth.api_key(key, RequestInfo()).principal
    except ApplianceError:
        return None  # the route's own authentication refuses the request with the reason
    return None


async def guard(request: Request) -> None:
    """App-wide dependency; does nothing unless a POST carries an Idempotency-Key."""
    if request.method != "POST":
        return
    key = request.headers.get("idempotency-key")
    if key is None:
        return
    ctx: AppContext = request.app.state.ctx
    principal = await run_in_threadpool(_principal, request, ctx)
    if principal is None:
        return
    body = await request.body()
    outcome = await run_in_threadpool(
        lambda: idempotency.begin(
            ctx.database,
            principal=principal,
            key=key,
            method=request.method,
            path=request.url.path,
            body=body,
            now=ctx.auth.clock(),
        )
    )
    if isinstance(outcome, idempotency.Replay):
        raise IdempotentReplay(outcome)
    request.scope.setdefault("state", {})[STATE_KEY] = outcome


async def replay(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, IdempotentReplay)
    stored = exc.replay
    response = Response(stored.body, status_code=stored.status)
    for name, value in stored.headers:
        response.headers[name] = value
    response.headers["Idempotent-Replayed"] = "true"
    return response
