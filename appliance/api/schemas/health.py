"""Health reports."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class CheckResult(BaseModel):
    status: Literal["ok", "down", "unknown"]
    latency_ms: float | None = None
    error: str | None = None
    detail: dict[str, object] = {}


class Liveness(BaseModel):
    status: Literal["ok", "stalled"]
    error: str | None = None
    """Why the process is stalled: requests wait and none has finished for a while."""


class Readiness(BaseModel):
    status: Literal["ok", "down"]
    checks: dict[str, CheckResult]


class HealthReport(BaseModel):
    status: Literal["ok", "degraded", "down"]
    version: str
    checks: dict[str, CheckResult]
