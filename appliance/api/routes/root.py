"""The root of /api/v1: what this appliance is and which version answers."""

from __future__ import annotations

from pydantic import BaseModel

from appliance import __version__
from appliance.api import routing
from appliance.api.auth import Public

router = routing.router(tags=["meta"])


class ApiInfo(BaseModel):
    name: str
    version: str
    docs: str


@router.get("", summary="API information")
def info(_: Public) -> ApiInfo:
    """The product name, its version and where the OpenAPI document lives."""
    return ApiInfo(name="forge-appliance", version=__version__, docs="/docs")
