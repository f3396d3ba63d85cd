"""Operations: liveness, readiness (503 when a part is not), Prometheus metrics."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json, raw

from waitlist import metrics
from waitlist.entrypoints.http import backend_of

operations_bp = Blueprint("operations")


@operations_bp.get("/health")
async def health(request: Request) -> HTTPResponse:
    """Alive: the process answers. Use /health/ready to know whether it can do its work."""
    return json({"status": "ok"})


@operations_bp.get("/health/ready")
async def ready(request: Request) -> HTTPResponse:
    checks = await backend_of(request).readiness()
    ok = all(check["ok"] for check in checks.values())
    return json({"status": "ready" if ok else "not ready", "checks": checks}, status=200 if ok else 503)


@operations_bp.get("/metrics")
async def prometheus_metrics(request: Request) -> HTTPResponse:
    await backend_of(request).refresh_gauges()
    body, content_type = metrics.render()
    return raw(body, content_type=content_type)
