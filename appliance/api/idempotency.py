"""``Idempotency-Key`` on POST requests (API.md), the HTTP side of appliance.services.common.idempotency.

The app-wide `guard` reads the key and the body before anything acts; the route's one hop
(appliance.api.routing) claims the key in the route's own transaction and writes the response there before
the commit; a repeat gets the stored response back (`replay`). A request that fails validation never gets
as far as a claim, so it does not use up its key.

Only authenticated requests take part: the key belongs to the caller (a user or an API key) inside its
tenant. Sign-in and token refresh are not idempotent by design (a replayed token would outlive its rotation).
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from appliance.api.context import AppContext
from appliance.services.access.actors import Actor
from appliance.services.common import idempotency

STATE_KEY = "idempotency"
#: Where appliance.api.auth leaves the request's authenticated caller.
ACTOR_KEY = "actor"


class IdempotentReplay(Exception):
    """Raised in the route's hop to answer with the first response of a repeated request."""

    def __init__(self, replay: idempotency.Replay):
        super().__init__("replay")
        self.replay = replay


@dataclass(frozen=True)
class Pending:
    """A POST that carries an Idempotency-Key, not yet claimed."""

    request: Request
    key: str
    digest: str

    def claim(self, ctx: AppContext, stack: ExitStack, sessions: list[Session]) -> Claimed | None:
        """Claim the key in the first session's transaction (in a session of its own, entered on ``stack``,
        for a route that uses none); None for a caller that is not authenticated."""
        target = self.target()
        if target is None:
            return None
        if sessions:
            session = sessions[0]
        else:
            session = stack.enter_context(ctx.database.transaction(ctx.database.new_session()))
        outcome = idempotency.claim(session, target, ctx.auth.clock())
        if isinstance(outcome, idempotency.Replay):
            raise IdempotentReplay(outcome)
        return Claimed(outcome, ctx)

    def keep_refusal(self, ctx: AppContext, response: Response) -> None:
        """Store the refusal of a route that began and changed nothing, as the key's answer."""
        target = self.target()
        if target is not None:
            answer = idempotency.Replay(response.status_code, _headers(response), bytes(response.body))
            idempotency.keep(ctx.database, target, answer, ctx.auth.clock())

    def target(self) -> idempotency.Request | None:
        actor: Actor | None = self.request.scope.get("state", {}).get(ACTOR_KEY)
        if actor is None:
            return None
        return idempotency.Request(
            tenant_id=actor.tenant_id,
            scope=idempotency.scope(actor.tenant_id, actor.principal),
            key=self.key,
            method=self.request.method,
            path=self.request.url.path,
            digest=self.digest,
        )


@dataclass(frozen=True)
class Claimed:
    claim: idempotency.Claim
    ctx: AppContext

    def complete(self, response: Response) -> None:
        """Write ``response`` as the key's answer, in the claim's transaction (before its commit)."""
        self.claim.complete(
            response.status_code, _headers(response), bytes(response.body), self.ctx.auth.clock()
        )


def _headers(response: Response) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers]


async def guard(request: Request) -> None:
    """App-wide dependency; does nothing unless a POST carries an Idempotency-Key."""
    if request.method != "POST":
        return
    key = request.headers.get("idempotency-key")
    if key is None:
        return
    idempotency.check_key(key)
    body = await request.body()
    digest = idempotency.request_hash(request.method, request.url.path, body)
    request.scope.setdefault("state", {})[STATE_KEY] = Pending(request, key, digest)


def pending(request: Request) -> Pending | None:
    """The request's unclaimed Idempotency-Key, if it has one."""
    found: Pending | None = request.scope.get("state", {}).get(STATE_KEY)
    return found


async def replay(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, IdempotentReplay)
    stored = exc.replay
    response = Response(stored.body, status_code=stored.status)
    for name, value in stored.headers:
        response.headers[name] = value
    response.headers["Idempotent-Replayed"] = "true"
    return response
