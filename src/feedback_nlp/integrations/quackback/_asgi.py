"""HTTP routes of the integration (Starlette; they mount into the FastAPI service as they are).

- ``POST /v1/integrations/quackback/webhook``: Quackback's deliveries. 202 once persisted (200 with the result
  when processing finished within ``respond_within`` seconds), 401 with no details on any verification failure.
- ``GET /v1/integrations/quackback/suggestions``: duplicate candidates, best first (``?min_score=&limit=``).
- ``GET /v1/integrations/quackback/status``: queue counts.
- ``GET /v1/integrations/quackback/events/{event_id}``: one event's state, attempts, result or error (the id
  percent-encoded as one path segment: ``urllib.parse.quote(event_id, safe="")``).

Inside ``feedback-nlp serve`` the read endpoints need an API key (scope ``tag``); the webhook never does —
Quackback sends none, its signature is the authentication.
"""

from __future__ import annotations

import math
import urllib.parse
from typing import Any

from ..._optional import require
from ._integration import QuackbackIntegration

__all__ = ["EVENT_PATH", "PREFIX", "create_app", "quackback_endpoints", "quackback_routes"]

PREFIX = "/v1/integrations/quackback"
#: The event route. ``:path``: an event id is any text Quackback chose (up to 200 characters), and one holding a
#: ``/`` (sent percent-encoded, ``%2F``, which the server decodes before routing) answered a bare 404 while the
#: event was in the store.
EVENT_PATH = "events/{event_id:path}"


def quackback_endpoints(integration: QuackbackIntegration, *, respond_within: float = 2.0) -> dict[str, Any]:
    """The endpoint functions (``webhook``, ``suggestions``, ``status``, ``event``); plain ``async def f(request)``,
    so Starlette routes and FastAPI routers (with their own dependencies) can both carry them."""
    require("starlette", "serve", "the Quackback webhook")
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    async def webhook(request: Request) -> JSONResponse:
        body = bytearray()
        async for chunk in request.stream():  # stop reading at the limit instead of buffering any size
            body += chunk
            if len(body) > integration.max_body_bytes:
                return JSONResponse({"error": "payload too large", "limit": "max_body_bytes"}, status_code=413)
        status, payload = await run_in_threadpool(integration.receive, dict(request.headers), bytes(body))
        if status == 202 and not payload["duplicate"] and respond_within > 0:
            row = await run_in_threadpool(integration.wait, payload["event"], respond_within)
            if row is not None:
                payload = {**payload, "state": row["state"], "result": row["result"], "error": row["error"]}
                status = 200
        return JSONResponse(payload, status_code=status)

    async def suggestions(request: Request) -> JSONResponse:
        try:
            min_score = float(request.query_params.get("min_score", 0.0))
            limit = int(request.query_params.get("limit", 100))
        except ValueError:
            return JSONResponse({"error": "min_score must be a number and limit an integer"}, status_code=422)
        if not math.isfinite(min_score):  # NaN matched nothing and answered an empty list
            return JSONResponse({"error": "min_score must be a finite number"}, status_code=422)
        if not 1 <= limit <= 1000:
            return JSONResponse({"error": "limit must lie in 1..1000", "limit": "limit"}, status_code=422)
        rows = await run_in_threadpool(integration.store.suggestions, min_score=min_score, limit=limit)
        return JSONResponse({"data": rows})

    async def status(request: Request) -> JSONResponse:
        counts = await run_in_threadpool(integration.store.counts)
        return JSONResponse({"events": counts, "rejected_deliveries": integration.rejected})

    async def event(request: Request) -> JSONResponse:
        row = await run_in_threadpool(integration.store.event, _event_id(request.scope))
        if row is None:
            return JSONResponse({"error": "no event with this id"}, status_code=404)
        return JSONResponse(row)

    endpoints = {"webhook": webhook, "suggestions": suggestions, "status": status, "event": event}
    for fn in endpoints.values():
        # resolved annotations: FastAPI reads them to recognise the Request parameter, and this module's
        # postponed (string) annotations name a class imported inside this function
        fn.__annotations__ = {"request": Request, "return": JSONResponse}
    return endpoints


def _event_id(scope: Any) -> str:
    """The event id of ``GET …/events/{event_id}``, percent-decoded exactly once from the raw path where the server
    gives it: servers that decode the path twice (Starlette's test client) made the id ``a%2Fb`` unreachable."""
    raw = scope.get("raw_path")
    marker = f"{PREFIX}/events/".encode("ascii")
    if isinstance(raw, bytes) and marker in raw:
        return urllib.parse.unquote_to_bytes(raw.split(b"?", 1)[0].split(marker, 1)[1]).decode("utf-8", "replace")
    return str(scope["path_params"]["event_id"])


def quackback_routes(integration: QuackbackIntegration, *, respond_within: float = 2.0) -> list[Any]:
    """The endpoints as Starlette routes under :data:`PREFIX` (no API key: for the webhook-only server on loopback)."""
    from starlette.routing import Route

    ep = quackback_endpoints(integration, respond_within=respond_within)
    return [Route(f"{PREFIX}/webhook", ep["webhook"], methods=["POST"]),
            Route(f"{PREFIX}/suggestions", ep["suggestions"], methods=["GET"]),
            Route(f"{PREFIX}/status", ep["status"], methods=["GET"]),
            Route(f"{PREFIX}/{EVENT_PATH}", ep["event"], methods=["GET"])]


def create_app(integration: QuackbackIntegration, *, respond_within: float = 2.0) -> Any:
    """A standalone ASGI app serving only the integration's routes, with the worker started and stopped
    by the app's lifespan."""
    require("starlette", "serve", "the Quackback webhook")
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette

    @asynccontextmanager
    async def lifespan(app: Any):
        integration.start()
        try:
            yield
        finally:
            integration.stop()

    return Starlette(routes=quackback_routes(integration, respond_within=respond_within), lifespan=lifespan)
