"""PostgreSQL store with pgvector: several service processes share one database; search runs in PostgreSQL
(an HNSW index on the vectors), so every process sees every other process's writes at once."""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import urllib.parse
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .._optional import require
from ..errors import FeedbackNLPError, InvalidInputError, ModelMismatchError, quoted
from ._store import ApiKey, BacklogItem, Job, Store

__all__ = ["PostgresStore"]

_LOCK_ID = 0x66EED  # advisory lock around schema changes: two processes may start at the same moment
_SCHEMA = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE IF NOT EXISTS fnlp_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fnlp_api_keys (key_id TEXT PRIMARY KEY, name TEXT NOT NULL, scope TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL, revoked BOOLEAN NOT NULL DEFAULT FALSE);
CREATE TABLE IF NOT EXISTS fnlp_jobs (job_id BIGSERIAL PRIMARY KEY, queue TEXT NOT NULL, dedupe_key TEXT,
    payload JSONB NOT NULL, state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
    due TIMESTAMPTZ NOT NULL DEFAULT now(), last_error TEXT, created_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE UNIQUE INDEX IF NOT EXISTS fnlp_jobs_dedupe ON fnlp_jobs (queue, dedupe_key) WHERE dedupe_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS fnlp_jobs_due ON fnlp_jobs (queue, state, due);
"""


def _masked(message: str, url: str) -> str:
    """``message`` with the password of ``url`` (as written and percent-decoded) replaced by ``***``.

    >>> _masked('unexpected spaces found in "pa ss"', "postgresql://ann:pa ss@db/x")
    'unexpected spaces found in "***"'
    """
    userinfo = url.partition("://")[2].rpartition("@")[0]  # the last "@": a careless password may hold one
    password = userinfo.partition(":")[2]
    for secret in sorted({password, urllib.parse.unquote(password)} - {""}, key=len, reverse=True):
        message = message.replace(secret, "***")
    return message


def _jsonb(value: Any) -> str:
    """``value`` as JSON text whose numbers keep their type through JSONB, which stores them as ``numeric``:
    a whole float that JSON writes with an exponent (``1e+20``) came back as the integer 100000000000000000000
    (1e308 as an integer of 309 digits); written ``100000000000000000000.0``, it comes back a float.

    >>> _jsonb({"votes": 3, "big": 1e20, "small": -2.5e-9, "tags": [1e16]})
    '{"votes": 3, "big": 100000000000000000000.0, "small": -2.5e-09, "tags": [10000000000000000.0]}'
    """
    if isinstance(value, float) and value.is_integer() and "e" in repr(value):
        return f"{int(value)}.0"
    if isinstance(value, dict):
        keys = [k if isinstance(k, str) else json.dumps(k) for k in value]  # as json.dumps names them (True: "true")
        return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)}: {_jsonb(v)}" for k, v in zip(keys, value.values())) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_jsonb(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _vec(v: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.8g}" for x in np.asarray(v, dtype=np.float32).tolist()) + "]"


class PostgresStore(Store):
    """Tables ``fnlp_items``, ``fnlp_api_keys``, ``fnlp_jobs`` and ``fnlp_meta`` in the database of ``url``."""

    kind = "postgresql"

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        self._psycopg = require("psycopg", "serve", "the PostgreSQL store")
        self.url = url
        self._pool: queue.LifoQueue = queue.LifoQueue()
        self._size, self._made, self._made_lock = pool_size, 0, threading.Lock()
        self.dim: int | None = None
        with self._conn() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
            try:
                conn.execute(_SCHEMA)
            except self._psycopg.errors.FeatureNotSupported as exc:  # no pgvector
                raise FeedbackNLPError(f"the PostgreSQL server lacks the pgvector extension: {exc}") from None

    @contextlib.contextmanager
    def _conn(self) -> Iterator[Any]:
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            with self._made_lock:
                make = self._made < self._size
                self._made += make
            conn = self._connect() if make else self._pool.get()
        try:
            yield conn
        except self._psycopg.OperationalError:
            conn.close()  # a broken connection is dropped; the next call opens a new one
            with self._made_lock:
                self._made -= 1
            raise
        else:
            self._pool.put(conn)

    def _connect(self) -> Any:
        try:
            return self._psycopg.connect(self.url, autocommit=True)
        except (self._psycopg.OperationalError, self._psycopg.ProgrammingError) as exc:
            # ProgrammingError: libpq could not parse the URL ("unexpected spaces found in "<password>"", an unknown
            # query parameter), which escaped as an unexpected error quoting the password
            with self._made_lock:
                self._made -= 1
            raise FeedbackNLPError("cannot connect to the PostgreSQL store: "
                                   + _masked(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                                             self.url)) from None

    # --- items ------------------------------------------------------------------------------------
    def bind_embedder(self, model_id: str, dim: int) -> None:
        with self._conn() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
            rows = dict(conn.execute("SELECT key, value FROM fnlp_meta WHERE key IN ('embedder', 'dim')").fetchall())
            if not rows:
                conn.execute("INSERT INTO fnlp_meta VALUES ('embedder', %s), ('dim', %s)", (model_id, str(dim)))
                conn.execute(f"CREATE TABLE IF NOT EXISTS fnlp_items (key BIGSERIAL PRIMARY KEY, id TEXT NOT NULL "
                             f"UNIQUE, text TEXT NOT NULL, metadata JSONB NOT NULL, embedding vector({int(dim)}) NOT "
                             f"NULL, updated_at TIMESTAMPTZ NOT NULL DEFAULT now())")
                conn.execute("CREATE INDEX IF NOT EXISTS fnlp_items_hnsw ON fnlp_items USING hnsw "
                             "(embedding vector_ip_ops)")
            elif rows.get("embedder") != model_id or int(rows.get("dim", 0)) != dim:
                raise ModelMismatchError(f"the PostgreSQL store holds vectors of {rows.get('embedder')} "
                                         f"({rows.get('dim')} dimensions); this service embeds with {model_id} "
                                         f"({dim} dimensions). Use the same --embedding-model")
        self.dim = dim

    def upsert(self, items: Sequence[BacklogItem]) -> list[bool]:
        created = []
        with self._conn() as conn, conn.transaction():
            for it in items:
                if np.asarray(it.vector).shape != (self.dim,):
                    raise InvalidInputError(f"item {quoted(it.id)}: vector of shape {np.shape(np.asarray(it.vector))}, the store "
                                            f"holds {self.dim}")
                # xmax = 0 only for a freshly inserted row: tells insert from update in one statement
                row = conn.execute(
                    "INSERT INTO fnlp_items (id, text, metadata, embedding) VALUES (%s, %s, %s, %s::vector) "
                    "ON CONFLICT (id) DO UPDATE SET text = EXCLUDED.text, metadata = EXCLUDED.metadata, "
                    "embedding = EXCLUDED.embedding, updated_at = now() RETURNING (xmax = 0)",
                    (it.id, it.text, _jsonb(it.metadata), _vec(np.asarray(it.vector)))).fetchone()
                created.append(bool(row[0]))
        return created

    def delete(self, item_id: str) -> bool:
        if "\x00" in item_id:  # no stored id holds NUL (PostgreSQL text cannot): DELETE /v1/backlog/a%00b was a 500
            return False
        with self._conn() as conn:
            return conn.execute("DELETE FROM fnlp_items WHERE id = %s", (item_id,)).rowcount > 0

    def get(self, item_id: str) -> BacklogItem | None:
        if "\x00" in item_id:  # as in delete: GET /v1/backlog/a%00b failed in the query, a 500 (SQLite: 404)
            return None
        with self._conn() as conn:
            row = conn.execute("SELECT id, text, metadata, embedding::real[], updated_at FROM fnlp_items "
                               "WHERE id = %s", (item_id,)).fetchone()
        if row is None:
            return None
        return BacklogItem(row[0], row[1], row[2], np.array(row[3], dtype=np.float32), row[4].isoformat())

    def count(self) -> int:
        with self._conn() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM fnlp_items").fetchone()[0])

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        out = []
        with self._conn() as conn, conn.transaction():
            conn.execute(f"SET LOCAL hnsw.ef_search = {max(40, int(k))}")
            for q in np.asarray(queries, dtype=np.float32):
                rows = conn.execute("SELECT id, -(embedding <#> %s::vector) FROM fnlp_items "
                                    "ORDER BY embedding <#> %s::vector LIMIT %s", (_vec(q), _vec(q), int(k))).fetchall()
                out.append([(r[0], float(r[1])) for r in rows])
        return out

    # --- keys -------------------------------------------------------------------------------------
    def add_key(self, key: ApiKey) -> None:
        with self._conn() as conn:
            conn.execute("INSERT INTO fnlp_api_keys VALUES (%s, %s, %s, %s, %s, FALSE)",
                         (key.key_id, key.name, key.scope, key.key_hash, key.created_at))

    def key_by_hash(self, key_hash: str) -> ApiKey | None:
        with self._conn() as conn:
            row = conn.execute("SELECT * FROM fnlp_api_keys WHERE key_hash = %s", (key_hash,)).fetchone()
        return ApiKey(row[0], row[1], row[2], row[3], row[4], bool(row[5])) if row else None

    def list_keys(self) -> list[ApiKey]:
        with self._conn() as conn:
            rows = conn.execute("SELECT * FROM fnlp_api_keys ORDER BY created_at, key_id").fetchall()
        return [ApiKey(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in rows]

    def revoke_key(self, key_id: str) -> bool:
        with self._conn() as conn:
            return conn.execute("UPDATE fnlp_api_keys SET revoked = TRUE WHERE key_id = %s", (key_id,)).rowcount > 0

    # --- queue ------------------------------------------------------------------------------------
    def enqueue(self, queue: str, payload: dict[str, Any], *, dedupe_key: str | None = None,
                delay_s: float = 0.0) -> int | None:
        with self._conn() as conn:
            row = conn.execute("INSERT INTO fnlp_jobs (queue, dedupe_key, payload, due) VALUES "
                               "(%s, %s, %s, now() + make_interval(secs => %s)) ON CONFLICT DO NOTHING RETURNING job_id",
                               (queue, dedupe_key, json.dumps(payload), float(delay_s))).fetchone()
        return None if row is None else int(row[0])

    def claim(self, queue: str, limit: int = 10, lease_s: float = 60.0) -> list[Job]:
        with self._conn() as conn:
            # SKIP LOCKED: two processes claiming at once take different jobs
            rows = conn.execute(
                "UPDATE fnlp_jobs SET state = 'running', attempts = attempts + 1, "
                "due = now() + make_interval(secs => %s) WHERE job_id IN (SELECT job_id FROM fnlp_jobs WHERE "
                "queue = %s AND state IN ('pending', 'running') AND due <= now() ORDER BY due, job_id LIMIT %s "
                "FOR UPDATE SKIP LOCKED) RETURNING job_id, payload, attempts, dedupe_key",
                (float(lease_s), queue, int(limit))).fetchall()
        return sorted((Job(int(r[0]), queue, r[1], int(r[2]), r[3]) for r in rows), key=lambda j: j.job_id)

    def complete(self, job_id: int) -> None:
        with self._conn() as conn:
            conn.execute("UPDATE fnlp_jobs SET state = 'done', last_error = NULL WHERE job_id = %s", (job_id,))

    def fail(self, job_id: int, error: str, *, retry_in_s: float | None = 30.0) -> None:
        with self._conn() as conn:
            if retry_in_s is None:
                conn.execute("UPDATE fnlp_jobs SET state = 'dead', last_error = %s WHERE job_id = %s",
                             (error[:500], job_id))
            else:
                conn.execute("UPDATE fnlp_jobs SET state = 'pending', last_error = %s, "
                             "due = now() + make_interval(secs => %s) WHERE job_id = %s",
                             (error[:500], float(retry_in_s), job_id))

    def queue_depth(self, queue: str) -> int:
        with self._conn() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM fnlp_jobs WHERE queue = %s AND state IN "
                                    "('pending', 'running')", (queue,)).fetchone()[0])

    def close(self) -> None:
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                return
