"""/api/v1/heartbeats/{token}: the URL a heartbeat app calls to say it is alive.

Public: the unguessable token in the path is the credential (an app's cron job or health loop has no
access token), so the route declares ``public`` and the OpenAPI document names no security scheme for it.
"""

from __future__ import annotations

from fastapi import Path, Response

from appliance.api import routing
from appliance.api.auth import PlatformSession, Public
from appliance.api.schemas.errors import error_responses
from appliance.services.monitoring import apps

router = routing.router(prefix="/heartbeats", tags=["apps"], responses=error_responses(404, 429))

Token = Path(max_length=200, description="The token of the app's heartbeat_url.")


@router.post("/{token}", status_code=204)
def beat(info: Public, session: PlatformSession, token: str = Token) -> Response:
    """Record a heartbeat (404 HEARTBEAT_NOT_FOUND for a token no app has)."""
    apps.beat(session, token)
    return Response(status_code=204)


@router.get("/{token}", status_code=204)
def beat_by_get(info: Public, session: PlatformSession, token: str = Token) -> Response:
    """The same as POST, for callers that can only GET (a monitoring agent, a plain `curl URL`)."""
    apps.beat(session, token)
    return Response(status_code=204)
