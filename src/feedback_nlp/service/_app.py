"""The ASGI app: routes under ``/v1``, API-key auth with scopes, limits, JSON errors, metrics."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import time
import unicodedata
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast

import anyio
import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import scoring
from ..connectors._tables import RepeatedKeyError, unique_keys
from ..dedupe._deduper import _IDENTICAL
from ..errors import FeedbackNLPError, InvalidInputError, quoted
from ._config import ServiceConfig
from ._errors import ApiError, TextRejected, loc_path, log_unexpected
from ._models import (
    BacklogAck,
    BacklogItemOut,
    BacklogRequest,
    DemandRequest,
    DemandResponse,
    DuplicatesRequest,
    DuplicatesResponse,
    ErrorBody,
    IceRequest,
    ModelsResponse,
    MoscowRequest,
    Readiness,
    RiceRequest,
    ScoreResponse,
    SentimentRequest,
    SentimentResponse,
    TagRequest,
    TagResponse,
    ThemeAssignRequest,
    ThemeAssignResponse,
    ThemesResponse,
    error_body,
)
from ._state import ServiceState, refuse_repeated_ids
from ._store import SCOPES, ApiKey, StoreBusyError, scope_allows

__all__ = ["create_app", "get_state", "require_scope"]

log = logging.getLogger("feedback_nlp.service")
T = TypeVar("T")


def loaded(part: T | None) -> T:
    """A part of the state that exists once the models are loaded (503 before, like the readiness check)."""
    if part is None:
        raise ApiError(503, "not_ready", "the service is still loading its models; retry shortly",
                       headers={"Retry-After": "2"})
    return part
Extension = Callable[[FastAPI, ServiceState], None]
_bearer = HTTPBearer(auto_error=False, description="an API key from `feedback-nlp keys create`")
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 413, 415, 422, 503)}


def get_state(request: Request) -> ServiceState:
    """The :class:`ServiceState` of the app serving ``request`` (a FastAPI dependency)."""
    return request.app.state.service


def require_scope(scope: str) -> Callable[..., Any]:
    """A dependency that admits a valid API key whose scope allows ``scope`` (``tag`` < ``write`` < ``admin``)
    once the service is ready, and answers 503/401/403 otherwise. Use it on an integration's routes."""
    if scope not in SCOPES:  # was accepted here, then a 500 at each call of the route
        raise InvalidInputError(f"require_scope: scope must be one of {list(SCOPES)}, got {quoted(scope)}")

    async def check(request: Request, cred: HTTPAuthorizationCredentials | None = Security(_bearer)) -> ApiKey:
        state = get_state(request)
        if state.load_error is not None:  # was "still loading; retry shortly" with Retry-After: 2, for ever
            raise ApiError(503, "load_failed", "the service failed to load its models or its store and will not "
                           "become ready; its operator finds why in the service log")
        if not state.ready:
            raise ApiError(503, "not_ready", "the service is still loading its models; retry shortly",
                           headers={"Retry-After": "2"})
        if not state.config.auth:
            return ApiKey("anonymous", "anonymous", "admin", "")
        if cred is None or not cred.credentials:
            raise ApiError(401, "unauthorized", "send an API key as 'Authorization: Bearer <key>'",
                           headers={"WWW-Authenticate": "Bearer"})
        keys = loaded(state.keys)
        hit, key = keys.cached(cred.credentials)
        if not hit:
            key = await anyio.to_thread.run_sync(keys.lookup, cred.credentials)
        if key is None:
            raise ApiError(401, "unauthorized", "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
        if not scope_allows(key.scope, scope):
            raise ApiError(403, "forbidden", f"this key has scope {key.scope!r}; this endpoint needs {scope!r}")
        request.scope.setdefault("state", {})["key_id"] = key.key_id
        return key

    check.scope = scope  # type: ignore[attr-defined]  # marks the routes that need a key (see _unauthenticated)
    return check


# --- middleware -------------------------------------------------------------------------------------

# A caller's X-Request-ID (a trace id its gateway or service made) is answered and logged as the request id, so
# one id follows a call across services; only a short token of safe characters: it is written into the access log
# and error bodies, where a newline or a long header would forge or flood lines.
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")


def _client_request_id(headers: Any) -> str | None:
    """The caller's ``X-Request-ID`` when it is a token of 1-64 letters, digits and ``._:-`` (the first such
    header), else None (the service makes one).

    >>> _client_request_id([(b"x-request-id", b"gw-7f3a:1")]), _client_request_id([(b"x-request-id", b"a b")])
    ('gw-7f3a:1', None)
    """
    for name, value in headers:
        if name.lower() == b"x-request-id":
            return value.decode("ascii") if _REQUEST_ID.fullmatch(value) else None
    return None


class _Guard:
    """Outermost ASGI layer: request id, body size limit, unexpected errors as JSON 500, metrics, access log."""

    def __init__(self, app: Any, state: ServiceState) -> None:
        self.app, self.state = app, state
        self._static: frozenset[str] | None = None

    def _static_paths(self, scope: Any) -> frozenset[str]:
        """The paths of the app's routes that have no template (``/openapi.json``, ``/docs``, ...)."""
        if self._static is None:
            routes = getattr(scope.get("app"), "routes", ())
            self._static = frozenset(r.path for r in routes if not isinstance(r, APIRoute) and "{" not in
                                     getattr(r, "path", "{"))
        return self._static

    async def _reply(self, send: Any, status: int, body: dict[str, Any], rid: str) -> None:
        raw = json.dumps(body).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()),
                                (b"x-request-id", rid.encode())]})
        await send({"type": "http.response.body", "body": raw})

    async def _read_body(self, scope: Any, receive: Any) -> bytes | None:
        """The whole body, or ``None`` when it exceeds the limit (bodies are small: at most ``max_body_bytes``)."""
        limit = self.state.config.max_body_bytes
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b""
            total += len(message.get("body", b""))
            if total > limit:
                return None
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                return b"".join(chunks)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _client_request_id(scope.get("headers") or ()) or uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = rid
        # any token is a method to the HTTP server: as a metrics label, "ZZ1", "ZZ2", ... made one series each,
        # without a key (memory and scrape size without bound)
        method = scope["method"] if scope["method"] in _METHODS else "other"
        if method == "HEAD":  # HTTP: HEAD is GET without the body (load balancers probe /healthz with it)
            scope = {**scope, "method": "GET"}
        start = time.perf_counter()
        status = {"code": 500, "started": False}
        limit = self.state.config.max_body_bytes

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["started"] = message["status"], True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            elif message["type"] == "http.response.body" and method == "HEAD":  # the GET's headers, no body
                message = {**message, "body": b""}
            await send(message)

        try:
            length = dict(scope["headers"]).get(b"content-length")
            too_big = {"limit": "max_body_bytes", "max": limit}
            if length is not None and not length.isdigit():  # not "too large": a client or proxy is broken
                status["code"] = 400
                await self._reply(send, 400, error_body("bad_request", "the Content-Length header is not a number",
                                                        rid), rid)
                return
            digits = None if length is None else length.lstrip(b"0") or b"0"
            # by its digits first: int() of over 4,300 digits raises (a 500 from ASGI servers that pass it on)
            if digits is not None and (len(digits) > 18 or int(digits) > limit):
                status["code"] = 413
                await self._reply(send, 413, error_body("body_too_large", f"request body over {limit} bytes", rid,
                                                        **too_big), rid)
                return
            if scope["method"] in ("POST", "PUT", "PATCH", "DELETE"):
                coding = _content_coding(scope["headers"])
                if coding is not None:  # a gzip body was refused as "not UTF-8 text (byte 1)"
                    status["code"] = 415
                    await self._reply(send, 415, error_body(
                        "unsupported_encoding", f"the body is sent with Content-Encoding {coding!r}; the service "
                        "reads bodies uncompressed (no Content-Encoding, or 'identity')", rid), rid)
                    return
                body = await self._read_body(scope, receive)
                if body is None:
                    status["code"] = 413
                    await self._reply(send, 413, error_body("body_too_large", f"request body over {limit} bytes",
                                                            rid, **too_big), rid)
                    return
                doc, repeated = _parse_body(body)
                if doc is not _UNPARSED:  # the route reads this instead of parsing the body again
                    scope["state"][_PARSED_BODY] = doc
                if repeated is not None:
                    status["code"] = 422
                    await self._reply(send, 422, error_body(
                        "invalid_request", f"body: the key {quoted(repeated)} is named twice in one object (JSON "
                        "keeps only the last value, so which one was meant cannot be known); send it once", rid,
                        details=[{"loc": "body", "msg": f"key {quoted(repeated)} named twice",
                                  "type": "duplicate_key"}]), rid)
                    return
                replayed = False

                async def replay() -> Any:
                    nonlocal replayed
                    if not replayed:
                        replayed = True
                        return {"type": "http.request", "body": body, "more_body": False}
                    return await receive()

                await self.app(scope, replay, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        except Exception as exc:  # noqa: BLE001 - the one place that turns surprises into a JSON 500
            log_unexpected(exc, rid)
            if not status["started"]:
                status["code"] = 500
                await self._reply(send, 500, error_body("internal_error", "unexpected error; quote the request id "
                                                        "to the operator", rid), rid)
        finally:
            route = getattr(scope.get("route"), "path", None)  # the template: /v1/backlog/{item_id}, not an id
            if route is None:  # static routes (/openapi.json, /docs) carry no template; unknown paths stay unnamed
                # by the app's own paths, not the status: a CORS preflight (OPTIONS, 200 for any path) and a
                # trailing-slash redirect (307) put the path sent, "/v1/backlog/ann@example.com" as well, into the
                # metrics and the log, one series per path, without a key
                known = status["code"] < 400 and scope["path"] in self._static_paths(scope)
                route = scope["path"] if known else "unmatched"
            elapsed = time.perf_counter() - start
            metrics = self.state.metrics
            metrics.requests.labels(method, route, str(status["code"])).inc()
            metrics.latency.labels(route).observe(elapsed)
            if self.state.batcher is not None:
                metrics.queue_depth.set(self.state.batcher.depth)
            # ids and counts only: never a text, a query string or a header
            log.info("%s %s %d %.1fms rid=%s key=%s", method, route, status["code"], elapsed * 1000, rid,
                     scope["state"].get("key_id", "-"))


def _content_coding(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    """The first content coding other than ``identity`` that the ``Content-Encoding`` headers name, else None.

    >>> _content_coding([(b"content-encoding", b"identity, GZIP")]), _content_coding([])
    ('gzip', None)
    """
    for name, value in headers:
        if name.lower() == b"content-encoding":
            for coding in value.decode("latin-1").split(","):
                if coding.strip().lower() not in ("", "identity"):
                    return coding.strip().lower()[:40]
    return None


class _Cors(CORSMiddleware):
    """CORS whose refused preflight is a JSON error body like every other answer (it was text/plain "Disallowed
    CORS origin", the one error of the service a client could not parse)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = Headers(scope=scope) if scope["type"] == "http" else None
        if headers is None or scope["method"] != "OPTIONS" or "origin" not in headers or \
                "access-control-request-method" not in headers:
            await super().__call__(scope, receive, send)
            return
        response = self.preflight_response(request_headers=headers)
        if response.status_code == 400:
            refused = bytes(response.body).decode().removeprefix("Disallowed CORS ")
            kept = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")}
            response = JSONResponse(error_body(
                "cors_refused", f"CORS preflight refused: {refused} not allowed (origins: the service's "
                "--cors-origin list; methods and headers: Access-Control-Allow-Methods and -Headers)",
                scope.get("state", {}).get("request_id", "-")), 400, headers=kept)
        await response(scope, receive, send)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_UNPARSED = object()
_PARSED_BODY = "feedback_nlp.json_body"  # where the guard leaves the parsed body in the request's state


def _parse_body(body: bytes) -> tuple[Any, str | None]:
    """A JSON body parsed once, and the first key it names twice in one object (``{"text": "a", "text": "b"}``:
    JSON parsers keep the last silently), else None. A body that is not JSON gives ``_UNPARSED``; the route's
    own parser then says what is wrong with it.

    >>> _parse_body(b'{"items": [{"id": "1", "text": "a", "text": "b"}]}')[1], _parse_body(b'{"a": {"a": 1}}')
    ('text', ({'a': {'a': 1}}, None))
    """
    if not body:
        return _UNPARSED, None
    try:  # json.loads reads bytes as FastAPI does (a BOM, UTF-16): a first-byte check let those through
        return json.loads(body, object_pairs_hook=unique_keys), None
    except RepeatedKeyError as exc:
        return _UNPARSED, exc.key
    except UnicodeDecodeError as exc:  # FastAPI answered "400 There was an error parsing the body"
        return _NotUtf8(exc.start), None
    except RecursionError:  # FastAPI's own parse fails the same way: "400 There was an error parsing the body"
        return _TOO_DEEP, None
    except json.JSONDecodeError:  # malformed: the route's own parser says where
        return _UNPARSED, None
    except ValueError:  # an integer of over 4,300 digits (Python's limit): was "400 error parsing the body"
        return _NUMBER_TOO_LONG, None


class _NotUtf8:
    """The parse of a body whose bytes are no UTF-8 (or UTF-16/32) text: latin-1 sent as JSON."""

    def __init__(self, at: int) -> None:
        self.at = at


def _unicode_forms(item_id: str) -> list[str]:
    """The id as sent, then composed and decomposed: a backlog stores an id once, in the form first sent
    (a GET in the other form of "café" was a 404)."""
    return list(dict.fromkeys([item_id, unicodedata.normalize("NFC", item_id), unicodedata.normalize("NFD", item_id)]))


_TOO_DEEP = object()  # the parse of a body nested deeper than Python's parser goes ([[[[...]]]] 50,000 deep)
_NUMBER_TOO_LONG = object()  # the parse of a body holding an integer longer than Python reads (4,300 digits)


class _BodyRefused(StarletteHTTPException):
    """A JSON body refused before validation, answered 422 ``invalid_request`` like a malformed one; ``kind`` is
    the detail's type (``encoding``, ``too_deep``)."""

    def __init__(self, detail: str, kind: str) -> None:
        super().__init__(422, detail)
        self.kind = kind


class _ParsedBodyRequest(Request):
    """A request whose JSON body the guard already parsed (while looking for keys named twice): FastAPI's
    ``await request.json()`` gets that document instead of parsing the body a second time."""

    async def json(self) -> Any:
        state = self.scope.get("state", {})
        if _PARSED_BODY in state:
            doc = state[_PARSED_BODY]
            if isinstance(doc, _NotUtf8):
                raise _BodyRefused(f"body: not UTF-8 text (byte {doc.at}); send JSON as UTF-8, whatever "
                                   "charset the Content-Type names", "encoding")
            if doc is _TOO_DEEP:  # was "400 There was an error parsing the body", code http_error
                raise _BodyRefused("body: JSON nested too deeply to read; the API's bodies are objects of items "
                                   "with flat metadata", "too_deep")
            if doc is _NUMBER_TOO_LONG:
                raise _BodyRefused("body: a number of more than 4300 digits, too long to read; send numbers as "
                                   "floats or short integers", "number_too_long")
            return doc
        return await super().json()


class _ParsedBodyRoute(APIRoute):
    """The service's routes: their handlers receive a :class:`_ParsedBodyRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            return await handler(_ParsedBodyRequest(request.scope, request.receive))

        return run


def _rid(request: Request) -> str:
    return request.scope.get("state", {}).get("request_id", "-")


async def _unauthenticated(request: Request) -> JSONResponse | None:
    """A 401/403/503 reply when a protected route is called without a valid key of its scope, else ``None``."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    scopes = [d.call.scope for d in getattr(dependant, "dependencies", ()) if hasattr(d.call, "scope")]
    if not scopes or "key_id" in request.scope.get("state", {}):
        return None
    try:
        cred = await _bearer(request)
        # the route's own scope: a tag key's bad body to POST /v1/backlog was answered 422, not 403
        await require_scope(max(scopes, key=SCOPES.index))(request, cred)
    except ApiError as err:
        if err.status in (401, 403, 503):
            return JSONResponse(error_body(err.code, err.message, _rid(request)), err.status, headers=err.headers)
    return None


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message, _rid(request), **exc.extra), exc.status,
                            headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # the body is parsed before the key is checked: a caller without a valid key learns nothing about it
        denied = await _unauthenticated(request)
        if denied is not None:
            return denied
        details = []
        for err in exc.errors()[:50]:
            kind = err.get("type", "invalid")
            msg = "malformed JSON body" if kind == "json_invalid" else err.get("msg", "invalid value")
            details.append({"loc": loc_path(err.get("loc", ())), "msg": msg, "type": kind})  # no 'input': it may be PII
        first = details[0] if details else {"loc": "body", "msg": "invalid request"}
        ctype = request.headers.get("content-type", "")
        if first["loc"] == "body" and first["type"] == "model_attributes_type" and "json" not in ctype.lower():
            # FastAPI reads only a JSON content type as JSON: the body was seen as bytes, "not a dictionary"
            first = {**first, "msg": f"send the body as JSON with 'Content-Type: application/json' (got "
                                     f"{ctype.split(';')[0][:60] or 'no content type'!r})"}
            details[0] = first
        return JSONResponse(error_body("invalid_request", f"{first['loc']}: {first['msg']}", _rid(request),
                                       details=details), 422)

    @app.exception_handler(TextRejected)
    async def bad_texts(request: Request, exc: TextRejected) -> JSONResponse:
        details = [{"loc": f"body.items[{i}].text", "msg": reason,
                    "type": "text_too_long" if reason.startswith("text too long") else "invalid_text"}
                   for i, reason in exc.problems[:50]]
        extra: dict[str, Any] = {"details": details}
        if any(d["type"] == "text_too_long" for d in details):
            extra.update(limit="max_text_chars", max=exc.max_chars)
        return JSONResponse(error_body("invalid_text", f"{details[0]['loc']}: {details[0]['msg']}", _rid(request),
                                       **extra), 422)

    @app.exception_handler(StoreBusyError)
    async def store_busy(request: Request, exc: StoreBusyError) -> JSONResponse:
        log.warning("request %s: the backlog store is locked by another process", _rid(request))
        return JSONResponse(error_body("store_busy", str(exc), _rid(request)), 503, headers={"Retry-After": "5"})

    @app.exception_handler(FeedbackNLPError)
    async def library_error(request: Request, exc: FeedbackNLPError) -> JSONResponse:
        return JSONResponse(error_body("invalid_input", str(exc), _rid(request)), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, _BodyRefused):
            denied = await _unauthenticated(request)
            return denied or JSONResponse(error_body("invalid_request", str(exc.detail), _rid(request), details=[
                {"loc": "body", "msg": str(exc.detail), "type": exc.kind}]), 422)
        codes = {404: "not_found", 405: "method_not_allowed"}
        return JSONResponse(error_body(codes.get(exc.status_code, "http_error"), str(exc.detail), _rid(request)),
                            exc.status_code, headers=getattr(exc, "headers", None))


# --- routes -----------------------------------------------------------------------------------------

def _health_routes(router: APIRouter) -> None:
    @router.get("/healthz", tags=["health"], summary="the process is up (no auth)")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", tags=["health"], summary="models loaded, ready for requests (no auth)",
                response_model=Readiness,
                responses={503: {"model": Readiness, "description": "still loading, or loading failed"}})
    async def readyz(state: ServiceState = Depends(get_state)) -> JSONResponse:
        if state.ready:
            return JSONResponse({"ready": True})
        body: dict[str, Any] = {"ready": False, "reason": "loading models"}
        if state.load_error:
            body["reason"] = "loading failed; see the service log"
        return JSONResponse(body, 503)

    # the errors a key check gives: /metrics and /v1/models were published without them (a client generated from
    # /openapi.json had no type for their 401, 403 and 503 bodies, and none for the models' list)
    @router.get("/metrics", tags=["health"], summary="Prometheus metrics (admin scope)",
                dependencies=[Depends(require_scope("admin"))], response_class=Response,
                responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                                 "description": "Prometheus text exposition"},
                           **{code: _ERRORS[code] for code in (401, 403, 503)}})
    async def metrics(state: ServiceState = Depends(get_state)) -> Response:
        state.metrics.backlog_size.set(await anyio.to_thread.run_sync(loaded(state.store).count))
        return Response(state.metrics.render(), media_type=state.metrics.content_type)


def _tag_routes(router: APIRouter) -> None:
    @router.post("/v1/tag", response_model=TagResponse, responses=_ERRORS, tags=["tagging"],
                 summary="tag a batch of items with a served tag model",
                 dependencies=[Depends(require_scope("tag"))])
    async def tag(req: TagRequest, state: ServiceState = Depends(get_state)) -> JSONResponse:
        state.check_items(len(req.items))
        served = state.model(req.model)
        state.metrics.items.labels("/v1/tag").inc(len(req.items))
        records = await served.batcher.submit([it.text for it in req.items], prepare=state.prepare,
                                              rows=served.records)
        # built in the worker thread already: returned as is, without a second validation pass (the hot path)
        return JSONResponse({"model": served.name,
                             "results": [{"id": it.id, **rec} for it, rec in zip(req.items, records)]})

    @router.post("/v1/sentiment", response_model=SentimentResponse, responses=_ERRORS, tags=["tagging"],
                 summary="sentiment (positive / neutral / negative) of a batch of items",
                 dependencies=[Depends(require_scope("tag"))])
    async def sentiment(req: SentimentRequest, state: ServiceState = Depends(get_state)) -> JSONResponse:
        if state.sentiment is None:
            raise ApiError(404, "no_sentiment_model", "this service has no sentiment model (--sentiment DIR)")
        state.check_items(len(req.items))
        served = state.sentiment
        state.metrics.items.labels("/v1/sentiment").inc(len(req.items))
        records = await served.batcher.submit([it.text for it in req.items], prepare=state.prepare,
                                              rows=served.records)
        return JSONResponse({"model": served.name, "results": [
            {"id": it.id, "sentiment": rec["tags"][0] if rec["tags"] else None,
             **{k: rec[k] for k in ("probabilities", "confidence", "needs_review")}}
            for it, rec in zip(req.items, records)]})

    @router.get("/v1/models", response_model=ModelsResponse, tags=["tagging"], summary="the served tag models",
                responses={code: _ERRORS[code] for code in (401, 403, 503)}, dependencies=[Depends(require_scope("tag"))])
    async def models(state: ServiceState = Depends(get_state)) -> dict[str, Any]:
        return {"models": [{"name": m.name, "tags": [str(c) for c in m.classifier.classes_],
                            "multi_label": bool(m.classifier.multi_label_)} for m in state.models.values()],
                "limits": state.config.limits()}


def _backlog_routes(router: APIRouter) -> None:
    @router.post("/v1/backlog", response_model=BacklogAck, responses=_ERRORS, tags=["backlog"],
                 summary="add or update backlog items; durable and searchable when this returns",
                 dependencies=[Depends(require_scope("write"))])
    async def add(req: BacklogRequest, state: ServiceState = Depends(get_state)) -> dict[str, Any]:
        state.metrics.items.labels("/v1/backlog").inc(len(req.items))
        created, updated = await state.upsert_items(req.items)
        size = await anyio.to_thread.run_sync(loaded(state.store).count)
        return {"created": created, "updated": updated, "backlog_size": size}

    @router.get("/v1/backlog/{item_id:path}", response_model=BacklogItemOut, responses=_ERRORS, tags=["backlog"],
                summary="a stored item (its redacted text and metadata)", dependencies=[Depends(require_scope("tag"))])
    async def get(item_id: str, state: ServiceState = Depends(get_state)) -> dict[str, Any]:
        item = None
        for form in _unicode_forms(item_id):  # an id is one id in either Unicode form, as when it was stored
            if (item := await anyio.to_thread.run_sync(loaded(state.store).get, form)) is not None:
                break
        if item is None:
            raise ApiError(404, "not_found", "no backlog item with this id")
        return {"id": item.id, "text": item.text, "metadata": item.metadata, "updated_at": item.updated_at}

    @router.delete("/v1/backlog/{item_id:path}", status_code=204, responses=_ERRORS, tags=["backlog"],
                   summary="remove a backlog item", dependencies=[Depends(require_scope("write"))])
    async def delete(item_id: str, state: ServiceState = Depends(get_state)) -> Response:
        if not any([await state.delete_item(form) for form in _unicode_forms(item_id)]):
            raise ApiError(404, "not_found", "no backlog item with this id")
        return Response(status_code=204)

    @router.post("/v1/duplicates", response_model=DuplicatesResponse, responses=_ERRORS, tags=["backlog"],
                 summary="top-k matches of each item in the backlog", dependencies=[Depends(require_scope("tag"))])
    async def duplicates(req: DuplicatesRequest, state: ServiceState = Depends(get_state)) -> dict[str, Any]:
        state.check_items(len(req.items))
        if req.k > state.config.max_k:
            raise ApiError(422, "k_too_large", f"k={req.k} is over the limit {state.config.max_k}", limit="max_k",
                           max=state.config.max_k, details=[{"loc": "body.k", "msg": "over max_k", "type": "limit"}])
        state.metrics.items.labels("/v1/duplicates").inc(len(req.items))
        vectors = await state.embed([it.text for it in req.items])
        # one more neighbour than asked, so that an item's own backlog entry can be dropped from its matches
        hits = await anyio.to_thread.run_sync(loaded(state.store).search, vectors, req.k + 1)
        # 1.0 means identical, as in Deduper: a float32 vector times its copy is 1 ± 6e-7, so min_score=1.0 kept
        # 36 of 60 exact copies (and a threshold of 1.0 flagged as many)
        flag = min(state.threshold, _IDENTICAL)
        floor = None if req.min_score is None else min(req.min_score, _IDENTICAL)
        results = []
        for it, row in zip(req.items, hits):
            # its own entry in either Unicode form: "café" sent decomposed matched itself, stored composed, at 1.0
            own = None if it.id is None else unicodedata.normalize("NFC", it.id)
            matches = [{"id": i, "score": round(s, 4), "duplicate": s >= flag} for i, s in row
                       if unicodedata.normalize("NFC", i) != own and (floor is None or s >= floor)]
            results.append({"id": it.id, "matches": matches[:req.k]})
        return {"threshold": state.threshold, "results": results}


def _theme_routes(router: APIRouter) -> None:
    def themes_of(state: ServiceState):
        if state.themes is None:
            raise ApiError(404, "no_theme_model", "this service has no theme model (start it with --themes DIR)")
        return state.themes

    @router.get("/v1/themes", response_model=ThemesResponse, responses=_ERRORS, tags=["themes"],
                summary="the themes of the served theme model", dependencies=[Depends(require_scope("tag"))])
    async def themes(state: ServiceState = Depends(get_state)) -> dict[str, Any]:
        model = themes_of(state)
        rows = model.themes_[["id", "label", "keywords", "size", "share"]].to_dict("records")
        return {"themes": [{**r, "id": int(r["id"]), "keywords": list(r["keywords"])} for r in rows]}

    @router.post("/v1/themes/assign", response_model=ThemeAssignResponse, responses=_ERRORS, tags=["themes"],
                 summary="the theme of each item (-1: none)", dependencies=[Depends(require_scope("tag"))])
    async def assign(req: ThemeAssignRequest, state: ServiceState = Depends(get_state)) -> dict[str, Any]:
        model = themes_of(state)
        state.check_items(len(req.items))
        labels = dict(zip(model.themes_["id"].astype(int), model.themes_["label"]))
        ids = await state.embed([it.text for it in req.items], then=lambda v, _: model.transform(embeddings=v))
        return {"results": [{"id": it.id, "theme": int(t), "label": labels.get(int(t), "outlier")}
                            for it, t in zip(req.items, ids)]}


def _score_routes(router: APIRouter) -> None:
    deps = [Depends(require_scope("tag"))]

    def column(items: Sequence[Any], name: str) -> np.ndarray:
        return np.array([getattr(it, name) for it in items], dtype=float)

    @router.post("/v1/score/rice", response_model=ScoreResponse, responses=_ERRORS, tags=["scoring"], dependencies=deps)
    async def rice(req: RiceRequest, state: ServiceState = Depends(get_state)) -> dict[str, Any]:
        state.check_items(len(req.items))
        s = scoring.rice(*(column(req.items, c) for c in ("reach", "impact", "confidence", "effort")),
                         confidence_scale=req.confidence_scale)
        return {"framework": "rice", "results": [{"id": it.id, "score": float(v)} for it, v in zip(req.items, s)]}

    @router.post("/v1/score/ice", response_model=ScoreResponse, responses=_ERRORS, tags=["scoring"], dependencies=deps)
    async def ice(req: IceRequest, state: ServiceState = Depends(get_state)) -> dict[str, Any]:
        state.check_items(len(req.items))
        s = scoring.ice(*(column(req.items, c) for c in ("impact", "confidence", "ease")), method=req.method)
        return {"framework": "ice", "results": [{"id": it.id, "score": float(v)} for it, v in zip(req.items, s)]}

    @router.post("/v1/score/moscow", response_model=ScoreResponse, responses=_ERRORS, tags=["scoring"],
                 dependencies=deps)
    async def moscow(req: MoscowRequest, state: ServiceState = Depends(get_state)) -> dict[str, Any]:
        state.check_items(len(req.items))
        refuse_repeated_ids(req.items)  # an item sent twice moved the rank cutoffs of every other item
        cats = scoring.moscow(column(req.items, "score"), cutoffs=cast("Mapping[str, float] | None", req.cutoffs), quantiles=req.quantiles,
                              commitment=np.array([it.commitment for it in req.items]),
                              deadline=np.array([it.deadline for it in req.items]))
        return {"framework": "moscow", "results": [{"id": it.id, "category": str(c)} for it, c in zip(req.items, cats)]}

    @router.post("/v1/score/demand", response_model=DemandResponse, responses=_ERRORS, tags=["scoring"],
                 dependencies=deps)
    async def demand(req: DemandRequest, state: ServiceState = Depends(get_state)) -> dict[str, Any]:
        state.check_items(len(req.items))
        refuse_repeated_ids(req.items)  # an item sent twice was counted twice in its theme's volume
        df = pd.DataFrame([it.model_dump() for it in req.items])
        has_time = df["created_at"].notna().any()  # with all(), one undated item dropped every item's time
        try:
            # pandas reads "now" and "today" (pd.Timestamp also "12:00") as times of this request: a placeholder
            # date was scored as the newest item, and "now" as the clock; an ISO 8601 time starts with its year
            if any(not v.strip()[:1].isdigit() for v in [*df["created_at"].dropna(), *([req.now] if req.now else [])]):
                raise ValueError("a word, not a time")
            if has_time:
                df["created_at"] = pd.to_datetime(df["created_at"], utc=True, format="ISO8601")
            now = pd.to_datetime(pd.Series([req.now]), utc=True, format="ISO8601").iloc[0] if req.now else None
        except (ValueError, TypeError) as exc:
            raise ApiError(422, "invalid_time", f"created_at and now must be ISO 8601 times ({type(exc).__name__})",
                           details=[{"loc": "body.items", "msg": "not an ISO 8601 time", "type": "datetime"}]) from None
        table = scoring.theme_scores(df, theme_col="theme", account_col="account_id",
                                     revenue_col="account_revenue", time_col="created_at" if has_time else None,
                                     weights=cast("Mapping[str, float] | None", req.weights), now=now,
                                     window=req.window)
        rows = [{"theme": str(r["theme"]), "volume": int(r["volume"]), "unique_accounts": int(r["unique_accounts"]),
                 "revenue": float(r["revenue"]), "growth": float(r.get("growth", 0.0) or 0.0),
                 "priority": float(r["priority"])} for r in table.to_dict("records")]
        # an item whose theme is empty, "-1" or "outlier" is left out: say so (it vanished without a word)
        return {"framework": "demand", "results": rows,
                "items_without_theme": int(table.attrs.get("rows_without_theme", 0)),
                "revenue_items_without_account": int(table.attrs.get("revenue_rows_without_account", 0))}


def create_app(config: ServiceConfig, *, extensions: Sequence[Extension] = (), state: ServiceState | None = None,
               exit_on_load_error: bool = False) -> FastAPI:
    """The service as an ASGI app; models load in the background after start-up (``/readyz`` tells when).

    ``extensions`` are called as ``ext(app, state)`` before the app starts: they mount routers
    (``app.include_router``) and register background jobs (``state.add_background``).
    """
    state = state or ServiceState(config)

    def fail() -> None:
        if exit_on_load_error:
            os.kill(os.getpid(), signal.SIGTERM)  # let the server shut down cleanly; the CLI reports the error

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with anyio.create_task_group() as tg:
            tg.start_soon(state.start, fail)
            yield
            tg.cancel_scope.cancel()
        await state.stop()

    from .. import __version__

    app = FastAPI(title="feedback_nlp", version=__version__, lifespan=lifespan,
                  description="Tag, dedupe, theme and score customer feedback, locally. Every endpoint except "
                              "/healthz and /readyz needs `Authorization: Bearer <API key>`.")
    app.state.service = state
    _install_error_handlers(app)
    router = APIRouter(route_class=_ParsedBodyRoute)
    for add in (_health_routes, _tag_routes, _backlog_routes, _theme_routes, _score_routes):
        add(router)
    app.include_router(router)
    for ext in extensions:
        try:
            ext(app, state)
        except FeedbackNLPError:
            raise
        except Exception as exc:  # the extension's own failure, named as such (not "please report it" to us)
            name = f"{getattr(ext, '__module__', '?')}:{getattr(ext, '__qualname__', ext)}"
            raise FeedbackNLPError(f"extension {name} failed while installing: {type(exc).__name__}: {exc}") from exc
    if config.cors_origins:
        app.add_middleware(_Cors, allow_origins=list(config.cors_origins), allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(_Guard, state=state)
    return app
