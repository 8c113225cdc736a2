"""The backlog store behind one small interface: SQLite (WAL) by default, PostgreSQL + pgvector to scale out.

A store holds four things, all durable once a call returns:

- backlog items (id, redacted text, metadata, vector), searchable by :meth:`Store.search`;
- API keys, as SHA-256 hashes only (:meth:`Store.add_key`, :meth:`Store.key_by_hash`);
- a durable job queue with idempotency keys (:meth:`Store.enqueue`, :meth:`Store.claim`,
  :meth:`Store.complete`, :meth:`Store.fail`) that integrations (webhooks) use to accept an event once
  and process it later, surviving restarts;
- a small ``meta`` table that pins the embedding model the vectors were made with.

Example:
    >>> store = open_store(data_dir=tmp)                            # doctest: +SKIP
    >>> store.bind_embedder("sentence-transformers/all-MiniLM-L6-v2@abc", 384)  # doctest: +SKIP
    >>> store.upsert([BacklogItem("A-1", "Dark mode please", {}, vec)])  # doctest: +SKIP
    [True]
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FeedbackNLPError, InvalidInputError

__all__ = ["SCOPES", "ApiKey", "BacklogItem", "Job", "Store", "StoreBusyError", "hash_key", "open_store",
           "scope_allows"]


class StoreBusyError(FeedbackNLPError):
    """The store stayed locked by another process longer than a write waits (an ``sqlite3`` shell holding a
    transaction, a backup tool): nothing was written; retry shortly. The service answers it 503 ``store_busy``."""

    #: integrations retry an event that failed with it (see ``quackback._processor.is_retryable``)
    retryable = True

#: Scopes from least to most privileged; a key may do what its scope and every lower scope allow.
SCOPES = ("tag", "write", "admin")


def scope_allows(have: str, need: str) -> bool:
    """True when a key of scope ``have`` may call an endpoint that needs ``need``.

    A scope the store holds but no version knows (a record changed by hand) allows nothing; it was a 500.

    >>> scope_allows("write", "tag"), scope_allows("tag", "write"), scope_allows("root", "tag")
    (True, False, False)
    """
    return have in SCOPES and SCOPES.index(have) >= SCOPES.index(need)


def hash_key(token: str) -> str:
    """SHA-256 of an API key; keys are 256-bit random, so a fast hash without salt is safe to store.

    >>> len(hash_key("fnlp_example"))
    64
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


@dataclass
class BacklogItem:
    """One backlog entry as stored: ``text`` is the cleaned, PII-redacted text, never the raw one."""

    id: str
    text: str
    metadata: dict[str, Any]
    vector: np.ndarray | None = None
    updated_at: str | None = None


@dataclass
class ApiKey:
    """An API key's record; the token itself is never stored, only ``key_hash``."""

    key_id: str
    name: str
    scope: str
    key_hash: str
    created_at: str = ""
    revoked: bool = False


@dataclass
class Job:
    """A claimed job of the durable queue."""

    job_id: int
    queue: str
    payload: dict[str, Any]
    attempts: int
    dedupe_key: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Store(ABC):
    """What the service needs from a store. Every method is blocking: call it from a worker thread
    (``await anyio.to_thread.run_sync(store.upsert, items)``), never on the event loop."""

    kind: str = "abstract"

    # --- items ------------------------------------------------------------------------------------
    @abstractmethod
    def bind_embedder(self, model_id: str, dim: int) -> None:
        """Create the item tables for vectors of ``dim`` dimensions, or check that the store was made with
        the same embedding model (:class:`~feedback_nlp.ModelMismatchError` otherwise)."""

    @abstractmethod
    def upsert(self, items: Sequence[BacklogItem]) -> list[bool]:
        """Add or replace items in one transaction (all or none); returns ``True`` per new item."""

    @abstractmethod
    def delete(self, item_id: str) -> bool:
        """Remove an item; ``False`` when there was none."""

    @abstractmethod
    def get(self, item_id: str) -> BacklogItem | None:
        """The stored item (with its vector), or ``None``."""

    @abstractmethod
    def count(self) -> int:
        """Number of items in the backlog."""

    @abstractmethod
    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        """For each query row, up to ``k`` ``(id, cosine score)`` pairs, best first."""

    # --- keys -------------------------------------------------------------------------------------
    @abstractmethod
    def add_key(self, key: ApiKey) -> None:
        """Store a new key record (its hash, never the token)."""

    @abstractmethod
    def key_by_hash(self, key_hash: str) -> ApiKey | None:
        """The key record with this hash, revoked or not, or ``None``."""

    @abstractmethod
    def list_keys(self) -> list[ApiKey]:
        """All key records, oldest first."""

    @abstractmethod
    def revoke_key(self, key_id: str) -> bool:
        """Mark a key revoked; ``False`` when no such key exists."""

    # --- durable queue ----------------------------------------------------------------------------
    @abstractmethod
    def enqueue(self, queue: str, payload: dict[str, Any], *, dedupe_key: str | None = None,
                delay_s: float = 0.0) -> int | None:
        """Persist a job; with ``dedupe_key``, a second job with the same key in the same queue is not
        added and ``None`` is returned (a webhook delivered twice is processed once)."""

    @abstractmethod
    def claim(self, queue: str, limit: int = 10, lease_s: float = 60.0) -> list[Job]:
        """Take up to ``limit`` due jobs; a job whose lease runs out before :meth:`complete` is due again
        (the worker died), so processing must be idempotent."""

    @abstractmethod
    def complete(self, job_id: int) -> None:
        """Mark a claimed job done."""

    @abstractmethod
    def fail(self, job_id: int, error: str, *, retry_in_s: float | None = 30.0) -> None:
        """Record a failure; the job is due again after ``retry_in_s``, or dead when it is ``None``.
        ``error`` is stored: keep texts and PII out of it."""

    @abstractmethod
    def queue_depth(self, queue: str) -> int:
        """Jobs of ``queue`` not yet done or dead."""

    @abstractmethod
    def close(self) -> None:
        """Release connections (and, for SQLite, save the ANN index)."""


def open_store(data_dir: str | Path | None = None, url: str | None = None, *, lock: bool = False) -> Store:
    """The SQLite store under ``data_dir``, or the PostgreSQL store at ``url`` (``postgresql://...``).

    ``lock=True`` takes the SQLite folder's instance lock (the server does: its in-memory ANN index must be
    the only writer's); ``feedback-nlp keys`` does not, so keys can be managed while the server runs.
    """
    if url:
        if not url.startswith(("postgresql://", "postgres://")):
            raise InvalidInputError(f"--store must be a postgresql:// URL, got a {url.split(':', 1)[0]!r} URL")
        from ._postgres import PostgresStore

        return PostgresStore(url)
    if data_dir is None:
        raise InvalidInputError("give a data folder (--data) or a PostgreSQL URL (--store)")
    from .._atomic import not_a_saved_folder, outside_saved_folders
    from ._sqlite import SQLiteStore

    folder = Path(data_dir)
    if folder.exists() and not folder.is_dir():  # was "File exists: keys.csv"
        raise InvalidInputError(f"{data_dir} is a file, not a folder: the store's data folder (--data) must be a folder")
    # the store's database in a saved model folder is a file its manifest does not cover: the model no longer
    # loaded after `keys list --data my-model`
    not_a_saved_folder(folder)
    outside_saved_folders(folder)
    return SQLiteStore(folder, lock=lock)
