"""``feedback-nlp serve``: the library as a local HTTP API (FastAPI + uvicorn) with a durable backlog store.

Install with ``pip install 'feedback-nlp[serve]'``. Run ``feedback-nlp keys create --name app --scope write``
and ``feedback-nlp serve --data DIR``; see ``docs/serve.md`` for the endpoints.

Layout: ``_config`` (settings and limits), ``_store`` (the store interface) with ``_sqlite`` (default, WAL,
hnswlib index from ``_index``) and ``_postgres`` (pgvector, several processes), ``_keys`` (hashed API keys),
``_batcher`` (micro-batching into the embedder in one worker thread), ``_state`` (what a process holds),
``_app`` (routes, auth, limits, errors), ``_metrics`` (Prometheus), ``_cli`` (``serve`` and ``keys``).

Integrations (e.g. a webhook receiver) plug in as an *extension*: a function ``ext(app, state)`` called before
the app starts, given with ``create_app(config, extensions=[ext])`` or ``feedback-nlp serve --extension
package.module:ext``. Inside it:

- mount routes: ``app.include_router(router)``; protect them with ``Depends(require_scope("write"))``
  (scopes: ``tag`` < ``write`` < ``admin``; the dependency also answers 503 until models are loaded) and reach
  the state with ``Depends(get_state)``;
- change the backlog exactly as ``POST /v1/backlog`` does: ``await state.upsert_items(items)`` (objects with
  ``id``, ``text``, ``metadata``; cleaned, PII-redacted, embedded, durable and searchable on return) and
  ``await state.delete_item(item_id)``;
- accept an event once and process it later, surviving restarts, with the store's durable queue — blocking
  calls, so run them in a thread (``await anyio.to_thread.run_sync(...)``):
  ``state.store.enqueue(queue, payload, dedupe_key=event_id)`` returns ``None`` for an event already seen;
  ``state.store.claim(queue, limit, lease_s)`` hands out due jobs (a job whose lease expires is handed out
  again, so processing must be idempotent), then ``state.store.complete(job_id)`` or
  ``state.store.fail(job_id, reason, retry_in_s=...)`` (``retry_in_s=None``: dead). Keep texts out of payload
  errors and logs;
- run a worker: ``state.add_background(async_fn)`` — started as ``async_fn(state)`` once models are loaded and
  cancelled at shutdown.

Example (an extension module, started with ``feedback-nlp serve --extension mypkg.hooks:install``)::

    from fastapi import APIRouter, Depends
    import anyio
    from feedback_nlp.service import ServiceState, get_state, require_scope

    router = APIRouter()

    @router.post("/v1/hooks/x", dependencies=[Depends(require_scope("write"))])
    async def hook(body: dict, state: ServiceState = Depends(get_state)):
        job = await anyio.to_thread.run_sync(lambda: state.store.enqueue("x", body, dedupe_key=body["id"]))
        return {"accepted": job is not None}

    def install(app, state):
        app.include_router(router)
"""

import importlib
from typing import Any

# Imported on first use, so that `feedback-nlp --help` and the other sub-commands work without the extra.
_EXPORTS = {
    "create_app": "_app", "get_state": "_app", "require_scope": "_app", "Batcher": "_batcher",
    "ServiceConfig": "_config", "create_key": "_keys", "ServiceState": "_state", "SCOPES": "_store",
    "ApiKey": "_store", "BacklogItem": "_store", "Job": "_store", "Store": "_store", "StoreBusyError": "_store",
    "open_store": "_store",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'feedback_nlp.service' has no attribute {name!r}")
    if _EXPORTS[name] in ("_app", "_state"):
        from .._optional import require

        require("fastapi", "serve", "feedback-nlp serve")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
