"""The integration inside ``feedback-nlp serve``: the service's tag model, backlog store and ANN index.

:func:`quackback_extension` turns the parsed ``--quackback-*`` options into a service extension
(``ext(app, state)``, see :mod:`feedback_nlp.service`). Secrets are read when the extension is built, so a
missing file fails ``serve`` at once rather than after the models have loaded.

- tagging: the service's default tag model, through its micro-batcher (``ServiceTagger``);
- duplicates and the backlog: the service's store, exactly as ``POST /v1/duplicates`` and ``/v1/backlog`` do
  (``ServiceBacklog``): a Quackback post becomes a backlog item that other apps find too;
- the events, the posts' statuses and the suggestions: ``quackback.sqlite`` under ``--data``.
"""

from __future__ import annotations

import argparse
import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

from ._processor import ClassifierTagger, Prediction
from ._setup import build_integration, processing_options, read_connection

__all__ = ["ServiceBacklog", "ServiceTagger", "quackback_extension", "serve_extensions"]

logger = logging.getLogger(__name__)


def _from_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a coroutine function on the service's event loop from the integration's worker thread."""
    import anyio.from_thread

    return anyio.from_thread.run(functools.partial(fn, *args, **kwargs))


class ServiceTagger:
    """The service's tag model (``name`` or the default) as a :class:`Tagger`, batched with API traffic."""

    def __init__(self, state: Any, name: str | None = None) -> None:
        self.state, self.name = state, name

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        served = self.state.model(self.name)
        frame = _from_thread(served.batcher.submit, list(texts), prepare=self.state.prepare,
                             then=lambda vectors, texts: served.classifier.tag(vectors, texts=texts))
        return ClassifierTagger.from_tag_frame(frame["tags"], frame["probabilities"], frame["needs_review"])


class ServiceBacklog:
    """The service's backlog store as a :class:`Backlog` (cleaned, PII-redacted, embedded, indexed)."""

    def __init__(self, state: Any) -> None:
        self.state = state

    def search(self, text: str, k: int) -> list[tuple[str, float]]:
        vectors = _from_thread(self.state.embed, [text])
        return [(i, float(s)) for i, s in self.state.store.search(vectors, k)[0]]

    def upsert(self, item_id: str, text: str, metadata: Mapping[str, Any]) -> None:
        _from_thread(self.state.upsert_items, [SimpleNamespace(id=item_id, text=text, metadata=dict(metadata))])

    def delete(self, item_id: str) -> None:
        _from_thread(self.state.delete_item, item_id)


def quackback_extension(args: argparse.Namespace) -> Callable[[Any, Any], None]:
    """The service extension for the parsed ``serve`` options (secrets are read here, once)."""
    secret, client = read_connection(args)
    options = {"client": client, **processing_options(args)}
    respond_within = args.quackback_respond_within

    def extension(app: Any, state: Any) -> None:
        import anyio
        from fastapi import APIRouter, Depends

        from ...service import require_scope
        from ._asgi import EVENT_PATH, PREFIX, quackback_endpoints

        if state.config.store:
            logger.warning("quackback: events, statuses and suggestions are kept in %s/quackback.sqlite, local to "
                           "this instance; point Quackback's webhook at one instance", state.config.data_dir)
        integration = build_integration(state.config.data_dir, secret, tagger=ServiceTagger(state),
                                        backlog=ServiceBacklog(state), **options)
        # the service's own limit: a longer post failed for good in the tagger ("TextRejected: 1 unusable texts"),
        # its raw body kept on disk, and `quackback retry` failed it again
        integration.processor.max_text_chars = state.config.max_text_chars
        ep = quackback_endpoints(integration, respond_within=respond_within)
        router = APIRouter(tags=["quackback"])
        router.add_api_route(f"{PREFIX}/webhook", ep["webhook"], methods=["POST"],
                             summary="Quackback's signed webhook deliveries (authenticated by signature)")
        for name, path in (("suggestions", "suggestions"), ("status", "status"), ("event", EVENT_PATH)):
            router.add_api_route(f"{PREFIX}/{path}", ep[name], methods=["GET"],
                                 dependencies=[Depends(require_scope("tag"))], summary=f"Quackback integration: {name}")
        app.include_router(router)

        async def worker(state: Any) -> None:
            recovered = await anyio.to_thread.run_sync(integration.store.recover)
            logger.info("quackback worker started (%d interrupted event(s) queued again)", recovered)
            while True:
                if not await anyio.to_thread.run_sync(integration.process_next):
                    await anyio.to_thread.run_sync(integration.wait_for_work, 0.5)

        state.add_background(worker)
        app.state.quackback = integration

    return extension


def serve_extensions(args: argparse.Namespace) -> list[Callable[[Any, Any], None]]:
    """``[extension]`` when ``serve`` was given ``--quackback`` or ``--quackback-secret-file``, else ``[]``."""
    from ._setup import quackback_enabled

    return [quackback_extension(args)] if quackback_enabled(args) else []
