"""The state one service process holds: store, embedder, batchers, models; loaded in a worker thread."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import traceback
import unicodedata
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

import anyio
import numpy as np

from ..cleaning import clean_text, redact_pii, text_problem
from ..dedupe import Deduper
from ..embedding import BaseEmbedder, Embedder
from ..errors import ModelMismatchError, quoted
from ..tagging import TagClassifier, bundled_models
from ..themes import ThemeModel
from ._batcher import Batcher
from ._config import ServiceConfig
from ._errors import ApiError, TextRejected
from ._keys import KeyCache
from ._metrics import Metrics
from ._store import BacklogItem, Store, open_store

__all__ = ["ServiceState", "refuse_repeated_ids"]

log = logging.getLogger("feedback_nlp.service")
Background = Callable[["ServiceState"], Coroutine[Any, Any, None]]


def refuse_repeated_ids(items: Sequence[Any]) -> None:
    """422 ``duplicate_id`` when two items of one request have one id, in the same or another Unicode form
    ("café" composed and decomposed are one id to anyone reading it, and two keys to a store)."""
    seen: dict[str, int] = {}
    for i, it in enumerate(items):
        key = unicodedata.normalize("NFC", it.id)
        if key in seen:
            j = seen[key]
            form = "" if items[j].id == it.id else " in another Unicode form (composed vs decomposed accents)"
            raise ApiError(422, "duplicate_id", f"id at items[{i}] repeats items[{j}]{form}",
                           details=[{"loc": f"body.items[{i}].id", "msg": "duplicate id in one request",
                                     "type": "duplicate_id"}])
        seen[key] = i


def _report_stopped(task: asyncio.Task) -> None:
    """Log a background job that ended by an exception: it ended without a word (the exception was swallowed at
    shutdown), and a webhook worker that died left events queued while the service answered ready. By type and
    code location only, as for requests (a message may quote a text)."""
    exc = None if task.cancelled() else task.exception()
    if exc is None:
        return
    frames = traceback.extract_tb(exc.__traceback__)[-5:]
    where = " <- ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}" for f in reversed(frames))
    log.error("background job %s stopped: %s at %s; it is not restarted until the service is", task.get_name(),
              type(exc).__name__, where)


class ServedModel:
    """A tag model as served: ``records(vectors, texts)`` gives one JSON-ready dict per row, in one call for a
    whole embedder pass (the batcher shares it between the requests of a pass); the texts feed a model's
    lexical channel."""

    def __init__(self, name: str, classifier: TagClassifier, batcher: Batcher) -> None:
        self.name, self.classifier, self.batcher = name, classifier, batcher

    def records(self, vectors: np.ndarray, texts: list[str]) -> list[dict[str, Any]]:
        frame = self.classifier.tag(vectors, texts=texts)
        return [{"tags": list(tags), "probabilities": json.loads(probs), "confidence": round(float(conf), 4),
                 "needs_review": bool(review)}
                for tags, probs, conf, review in zip(frame["tags"], frame["probabilities"], frame["confidence"],
                                                     frame["needs_review"])]


class ServiceState:
    """Everything a request handler needs; ``app.state.service`` in the app, or ``Depends(get_state)``.

    Integrations use :attr:`store` (in a thread) and the coroutines :meth:`upsert_items` /
    :meth:`delete_item`, which embed, store and index exactly as ``POST /v1/backlog`` does.
    """

    def __init__(self, config: ServiceConfig, *, store: Store | None = None,
                 embedder: BaseEmbedder | None = None) -> None:
        self.config = config
        self.metrics = Metrics()
        self.store: Store | None = store
        self.embedder = embedder
        self.keys: KeyCache | None = None
        self.models: dict[str, ServedModel] = {}
        self.themes: ThemeModel | None = None
        self.sentiment: ServedModel | None = None
        self.batcher: Batcher | None = None
        self.ready = False
        self.load_error: str | None = None
        self.threshold = config.duplicate_threshold if config.duplicate_threshold is not None else Deduper().threshold
        self._background: list[Background] = []
        self._tasks: list[asyncio.Task] = []
        self._batchers: dict[str, Batcher] = {}
        self._forms_lock: anyio.Lock | None = None  # see upsert_items; made on the event loop that uses it

    # --- loading ----------------------------------------------------------------------------------
    def _batcher_for(self, embedder: BaseEmbedder) -> Batcher:
        if embedder.model_id not in self._batchers:
            cfg = self.config
            batcher = Batcher(embedder.encode, max_batch=cfg.max_batch, max_wait_ms=cfg.max_wait_ms,
                              observe=self.metrics.observe_batch, name=embedder.model_id.split("/")[-1][:20])
            batcher.start()
            self._batchers[embedder.model_id] = batcher
        return self._batchers[embedder.model_id]

    def _serve(self, name: str, path: str) -> ServedModel:
        try:
            clf = TagClassifier.load(path, embedder=self.embedder)
        except ModelMismatchError:  # a fine-tuned model brings its own encoder
            clf = TagClassifier.load(path, backend=self.config.backend)
            clf.embedder_.encode(["warm up the model"])
        return ServedModel(name, clf, self._batcher_for(clf.embedder_))

    def load(self) -> None:
        """Open the store, load the embedder and the models (blocking; minutes on a cold machine)."""
        cfg = self.config
        if self.store is None:
            self.store = open_store(cfg.data_dir, cfg.store, lock=True)
        self.keys = KeyCache(self.store)
        if self.embedder is None:
            # texts are cleaned (and checked) once by the service before embedding, so the embedder need not
            self.embedder = Embedder(cfg.embedding_model, backend=cfg.backend, clean=False)
        self.embedder.encode(["warm up the model"])
        self.store.bind_embedder(self.embedder.base_model_id, self.embedder.dim)
        self.metrics.backlog_size.set(self.store.count())
        self.batcher = self._batcher_for(self.embedder)
        for name, path in cfg.models.items():
            self.models[name] = self._serve(name, path)
        if cfg.sentiment and (cfg.sentiment != "sentiment" or "sentiment" in bundled_models()):
            self.sentiment = self._serve("sentiment", cfg.sentiment)
        if cfg.themes:
            self.themes = ThemeModel.load(cfg.themes, embedder=self.embedder)
        self.ready = True
        self.metrics.ready.set(1)
        log.info("ready: %d tag models, sentiment %s, themes %s, backlog store %s", len(self.models),
                 "on" if self.sentiment is not None else "off", "on" if self.themes is not None else "off",
                 self.store.kind)

    async def start(self, on_failure: Callable[[], None] | None = None) -> None:
        """Load in a thread (``/healthz`` answers meanwhile), then start the background tasks."""
        try:
            await anyio.to_thread.run_sync(self.load)
        except Exception as exc:  # noqa: BLE001 - reported through /readyz and the log, then the process exits
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.error("loading failed: %s", self.load_error)
            if on_failure is not None:
                on_failure()
            return
        for job in self._background:
            task = asyncio.create_task(job(self), name=getattr(job, "__qualname__", repr(job)))
            task.add_done_callback(_report_stopped)
            self._tasks.append(task)

    def add_background(self, job: Background) -> None:
        """Run ``await job(state)`` once the models are loaded; it is cancelled at shutdown."""
        self._background.append(job)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):  # shutting down either way
                await task
        await anyio.to_thread.run_sync(self._close)

    def _close(self) -> None:
        for batcher in self._batchers.values():
            batcher.stop()
        if self.store is not None:
            self.store.close()

    # --- work shared by routes and integrations ---------------------------------------------------
    def prepare(self, texts: list[str]) -> list[str]:
        """Clean texts (HTML, quotes, signatures, PII) and reject unusable ones with their positions."""
        cleaned, problems = [], []
        for i, raw in enumerate(texts):
            text = clean_text(raw)
            problem = text_problem(raw, text, max_chars=self.config.max_text_chars)
            if problem:
                problems.append((i, problem))
            cleaned.append(text)
        if problems:
            raise TextRejected(problems, self.config.max_text_chars)
        return cleaned

    def redact_metadata(self, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
        """``metadata`` as the backlog stores it: string values PII-redacted, but for the fields named in
        ``config.keep_metadata`` (a customer's e-mail in ``{"reporter": "ann@example.com"}`` was stored and
        returned as sent, while the text beside it was redacted).

        >>> ServiceState(ServiceConfig(keep_metadata=("owner",))).redact_metadata(
        ...     {"reporter": "ann@example.com", "owner": "bo@acme.io", "votes": 3})
        {'reporter': '<EMAIL>', 'owner': 'bo@acme.io', 'votes': 3}
        """
        keep = self.config.keep_metadata
        return {k: redact_pii(v) if isinstance(v, str) and k not in keep else v for k, v in (metadata or {}).items()}

    def check_items(self, n: int) -> None:
        if n > self.config.max_items:
            raise ApiError(413, "too_many_items", f"{n} items in one request; the limit is {self.config.max_items}",
                           limit="max_items", max=self.config.max_items)

    async def embed(self, texts: Sequence[str], then: Callable[[np.ndarray, list[str]], Any] | None = None) -> Any:
        """Cleaned, checked and embedded with the backlog's embedder, micro-batched with other requests."""
        assert self.batcher is not None, "load() creates the batcher before routes are served"
        return await self.batcher.submit(list(texts), prepare=self.prepare, then=then)

    async def upsert_items(self, items: Sequence[Any]) -> tuple[list[str], list[str]]:
        """Add or update backlog items (objects with ``id``, ``text``, ``metadata``); durable on return.

        Returns ``(created_ids, updated_ids)``.
        """
        self.check_items(len(items))
        refuse_repeated_ids(items)
        assert self.store is not None, "load() opens the store before routes are served"
        await self._refuse_other_forms(items)  # before the embedding: a refused request costs no model time

        def records(vectors: np.ndarray, cleaned: list[str]) -> list[BacklogItem]:
            return [BacklogItem(it.id, text, self.redact_metadata(it.metadata), vec)
                    for it, text, vec in zip(items, cleaned, vectors)]

        rows = await self.embed([it.text for it in items], then=records)
        assert self.store is not None, "load() opens the store before routes are served"
        if all(it.id.isascii() for it in items):  # an ASCII id has no other Unicode form
            created = await anyio.to_thread.run_sync(self.store.upsert, rows)
        else:
            # checked again with the write, one request at a time: two concurrent requests for "café" composed
            # and decomposed both passed the check above while the other was embedding, and both were stored
            self._forms_lock = self._forms_lock or anyio.Lock()
            async with self._forms_lock:
                await self._refuse_other_forms(items)
                created = await anyio.to_thread.run_sync(self.store.upsert, rows)
        self.metrics.backlog_size.inc(sum(created))
        return ([r.id for r, c in zip(rows, created) if c], [r.id for r, c in zip(rows, created) if not c])

    async def _refuse_other_forms(self, items: Sequence[Any]) -> None:
        stored = await anyio.to_thread.run_sync(self._stored_in_another_form, items)
        if stored is not None:
            i, other = stored
            raise ApiError(422, "duplicate_id", f"id at items[{i}] is stored as {quoted(other)}, the same id in "
                           "another Unicode form (composed vs decomposed accents); send it as stored",
                           details=[{"loc": f"body.items[{i}].id", "msg": "stored in another Unicode form",
                                     "type": "duplicate_id"}])

    def _stored_in_another_form(self, items: Sequence[Any]) -> tuple[int, str] | None:
        """(position, stored id) of the first item whose id the store holds composed where it is decomposed,
        or the other way round (two items that print the same), else None. ASCII ids need no look-up."""
        assert self.store is not None, "load() opens the store before routes are served"
        for i, it in enumerate(items):
            if it.id.isascii():
                continue
            for form in ("NFC", "NFD"):
                other = unicodedata.normalize(form, it.id)
                if other != it.id and self.store.get(other) is not None:
                    return i, other
        return None

    async def delete_item(self, item_id: str) -> bool:
        """Remove a backlog item; ``False`` when there was none."""
        assert self.store is not None, "load() opens the store before routes are served"
        removed = await anyio.to_thread.run_sync(self.store.delete, item_id)
        if removed:
            self.metrics.backlog_size.dec()
        return removed

    def model(self, name: str | None) -> ServedModel:
        if name is None:
            return next(iter(self.models.values()))
        if name not in self.models:
            raise ApiError(404, "unknown_model", f"no model {quoted(name)} is served; served: {sorted(self.models)}")
        return self.models[name]


