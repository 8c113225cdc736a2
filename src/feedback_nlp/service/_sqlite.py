"""SQLite store: one file under ``--data`` in WAL mode with ``synchronous=FULL``, so that a 2xx reply means the
transaction is on disk; the hnswlib index is kept in memory and saved on shutdown (see :mod:`._index`)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import create_private
from ..errors import IntegrityError, InvalidInputError, ModelMismatchError, quoted
from ._index import AnnIndex
from ._store import ApiKey, BacklogItem, Job, Store, StoreBusyError, utcnow

__all__ = ["SQLiteStore"]

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (key_id TEXT PRIMARY KEY, name TEXT NOT NULL, scope TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS items (key INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    text TEXT NOT NULL, metadata TEXT NOT NULL, vector BLOB NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (job_id INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL,
    dedupe_key TEXT, payload TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0, due REAL NOT NULL, last_error TEXT, created_at TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_dedupe ON jobs (queue, dedupe_key) WHERE dedupe_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (queue, state, due);
"""


class SQLiteStore(Store):
    """The embedded store: ``DIR/backlog.sqlite`` and the index cache ``DIR/backlog.hnsw``."""

    kind = "sqlite"
    filename = "backlog.sqlite"

    def __init__(self, folder: Path, *, lock: bool = False) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self._lock_fh = None
        if lock:
            self._lock_fh = open(folder / "instance.lock", "w")  # noqa: SIM115 - held for the process lifetime
            try:
                fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._lock_fh.close()
                raise InvalidInputError(f"another feedback-nlp serve already uses {folder}; one process per SQLite "
                                        "folder (use --store postgresql://... for several)") from None
        # one connection shared by the worker threads, serialised by a lock: SQLite has one writer anyway
        with contextlib.suppress(OSError):  # customer texts: owner only (a folder in its place is sqlite's to name)
            create_private(folder / self.filename)
        self._db = sqlite3.connect(folder / self.filename, check_same_thread=False, isolation_level=None)
        self._mutex = threading.RLock()
        try:
            with self._mutex:
                self._db.execute("PRAGMA busy_timeout=10000")
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")  # a commit survives power loss, not only a killed process
                self._db.executescript(_SCHEMA)
                # the items' count, kept beside them in each write's transaction: POST /v1/backlog reports it per
                # call, and COUNT(*) reads the whole table. Counted once here (a store written by an older version,
                # or changed by hand, is counted afresh at each start).
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute("INSERT INTO meta VALUES ('items', (SELECT COUNT(*) FROM items)) "
                                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value")
                self._db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:  # was "unexpected DatabaseError: file is not a database", no file named
            self._close_connection()
            if _busy(exc):
                raise _store_busy() from None
            raise IntegrityError(f"{folder / 'backlog.sqlite'} is not a readable SQLite store ({exc}): restore it "
                                 "from a backup, or move it aside to start an empty backlog") from None
        self.index: AnnIndex | None = None
        self.dim: int | None = None

    # --- helpers ----------------------------------------------------------------------------------
    def _tx(self):
        store = self

        class _Tx:
            def __enter__(self_inner):
                store._mutex.acquire()
                try:
                    store._db.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as exc:
                    store._mutex.release()
                    if _busy(exc):  # was a 500 "unexpected error" after the 10 s wait
                        raise _store_busy() from None
                    raise
                return store._db

            def __exit__(self_inner, exc_type, *_):
                try:
                    if exc_type is not None:
                        if store._db.in_transaction:  # SQLite may have rolled back already: its error stands
                            store._db.execute("ROLLBACK")
                        return
                    try:
                        store._db.execute("COMMIT")
                    except sqlite3.Error:
                        # a COMMIT that fails (disk full) may leave the transaction open: every later BEGIN
                        # failed with "cannot start a transaction within a transaction" until a restart
                        with contextlib.suppress(sqlite3.Error):
                            store._db.execute("ROLLBACK")
                        raise
                finally:
                    store._mutex.release()

        return _Tx()

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _seq(self) -> int:
        return int(self._meta("seq") or 0)

    def _bump(self, db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO meta VALUES ('seq', '1') ON CONFLICT(key) DO UPDATE SET value = "
                   "CAST(CAST(value AS INTEGER) + 1 AS TEXT)")

    def _add_items(self, db: sqlite3.Connection, n: int) -> None:
        if n:
            db.execute("UPDATE meta SET value = CAST(CAST(value AS INTEGER) + ? AS TEXT) WHERE key = 'items'", (n,))

    def _chunks(self, size: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        last = -1
        while True:
            rows = self._db.execute("SELECT key, vector FROM items WHERE key > ? ORDER BY key LIMIT ?",
                                    (last, size)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield (np.array([r[0] for r in rows], dtype=np.int64),
                   np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows]))

    # --- items ------------------------------------------------------------------------------------
    def bind_embedder(self, model_id: str, dim: int) -> None:
        with self._tx() as db:
            saved = self._meta("embedder")
            if saved is None:
                if db.execute("SELECT 1 FROM items LIMIT 1").fetchone() is not None:
                    # items whose model is unknown (meta changed by hand): binding them to this model mixed vectors
                    # of two models in one index, or failed in hnswlib after pinning this model for good
                    raise IntegrityError(f"the store at {self.folder} holds items but records no embedding model "
                                         "(its meta table was changed); restore it from a backup, or start a new "
                                         "--data folder")
                db.execute("INSERT INTO meta VALUES ('embedder', ?), ('dim', ?)", (model_id, str(dim)))
            elif saved != model_id or (self._meta("dim") or "") != str(dim):
                # the dimensions too: one model id at another size read "holds vectors of X; this service embeds with X"
                raise ModelMismatchError(f"the store at {self.folder} holds vectors of {saved} ({self._meta('dim')} "
                                         f"dimensions); this service embeds with {model_id} ({dim} dimensions). Use "
                                         "the same --embedding-model or a new --data folder")
        self.dim = dim
        with self._mutex:
            path = self.folder / "backlog.hnsw"
            keys = (r[0] for r in self._db.execute("SELECT key FROM items"))
            self.index = AnnIndex.load(path, self._seq(), dim, keys) if path.exists() else None
            if self.index is None:
                self.index = AnnIndex.build(dim, self._chunks())

    def _rebuild_if_stale(self) -> None:
        # whatever the backlog's size: ten items deleted and added again 50 times (a webhook's delete + create) left
        # 500 dead slots that hnswlib's graph searched through, missing a live identical item and then failing (500 on
        # /v1/duplicates). A rebuild costs the live items, fewer than the deleted ones it drops.
        if self.index is not None and self.dim is not None and self.index.stale_share > 0.5:
            self.index = AnnIndex.build(self.dim, self._chunks())

    def upsert(self, items: Sequence[BacklogItem]) -> list[bool]:
        now = utcnow().isoformat()
        created, keys = [], []
        # the index follows the items only once their COMMIT succeeded (a disk full at COMMIT left it holding
        # items the store lacked, and a failed delete's item out of every search, until a restart), inside the same
        # lock, so that searches never see an item the store lacks
        with self._mutex:
            with self._tx() as db:
                for it in items:
                    vec = np.ascontiguousarray(it.vector, dtype=np.float32)
                    if vec.shape != (self.dim,):
                        raise InvalidInputError(f"item {quoted(it.id)}: vector of shape {vec.shape}, the store holds "
                                                f"{self.dim}")
                    existed = db.execute("SELECT 1 FROM items WHERE id = ?", (it.id,)).fetchone() is not None
                    key = db.execute(
                        "INSERT INTO items (id, text, metadata, vector, updated_at) VALUES (?, ?, ?, ?, ?) "
                        "ON CONFLICT(id) DO UPDATE SET text = excluded.text, metadata = excluded.metadata, "
                        "vector = excluded.vector, updated_at = excluded.updated_at RETURNING key",
                        (it.id, it.text, json.dumps(it.metadata, ensure_ascii=False), vec.tobytes(),
                         now)).fetchone()[0]
                    created.append(not existed)
                    keys.append(key)
                self._bump(db)
                self._add_items(db, sum(created))
            if keys:
                self._follow(lambda index: index.upsert(np.array(keys, dtype=np.int64),
                                                        np.stack([np.asarray(it.vector) for it in items])))
        return created

    def _follow(self, change: Any) -> None:
        """Apply a committed write to the index; if that fails (hnswlib out of memory while growing), rebuild it
        from the store, so that it never stays behind the items it was committed with."""
        assert self.index is not None and self.dim is not None, "bind_embedder() opens the index"
        try:
            change(self.index)
        except Exception:
            log.warning("the ANN index failed to follow a committed write; rebuilding it from the store")
            self.index = AnnIndex.build(self.dim, self._chunks())

    def delete(self, item_id: str) -> bool:
        with self._mutex:  # the index after the COMMIT, as in upsert
            with self._tx() as db:
                row = db.execute("DELETE FROM items WHERE id = ? RETURNING key", (item_id,)).fetchone()
                if row is None:
                    return False
                self._bump(db)
                self._add_items(db, -1)
            self._follow(lambda index: index.delete(int(row[0])))
            self._rebuild_if_stale()
        return True

    def get(self, item_id: str) -> BacklogItem | None:
        with self._mutex:
            row = self._db.execute("SELECT id, text, metadata, vector, updated_at FROM items WHERE id = ?",
                                   (item_id,)).fetchone()
        if row is None:
            return None
        return BacklogItem(row[0], row[1], json.loads(row[2]), np.frombuffer(row[3], dtype=np.float32), row[4])

    def count(self) -> int:
        """The number of items (kept in ``meta`` by every write: no table scan)."""
        with self._mutex:
            return int(self._meta("items") or 0)

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        with self._mutex:
            assert self.index is not None, "bind_embedder() opens the index"
            hits = self.index.search(np.asarray(queries, dtype=np.float32), k)
            wanted = sorted({key for row in hits for key, _ in row})
            ids: dict[int, str] = {}
            for s in range(0, len(wanted), 500):
                part = wanted[s:s + 500]
                ids.update(self._db.execute(f"SELECT key, id FROM items WHERE key IN ({','.join('?' * len(part))})",
                                            part).fetchall())
        return [[(ids[key], score) for key, score in row if key in ids] for row in hits]

    # --- keys -------------------------------------------------------------------------------------
    def add_key(self, key: ApiKey) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, 0)",
                       (key.key_id, key.name, key.scope, key.key_hash, key.created_at or utcnow().isoformat()))

    def _key(self, row: Any) -> ApiKey:
        return ApiKey(row[0], row[1], row[2], row[3], row[4], bool(row[5]))

    def key_by_hash(self, key_hash: str) -> ApiKey | None:
        with self._mutex:
            row = self._db.execute("SELECT * FROM api_keys WHERE key_hash = ?", (key_hash,)).fetchone()
        return self._key(row) if row else None

    def list_keys(self) -> list[ApiKey]:
        with self._mutex:
            return [self._key(r) for r in self._db.execute("SELECT * FROM api_keys ORDER BY created_at, key_id")]

    def revoke_key(self, key_id: str) -> bool:
        with self._tx() as db:
            return db.execute("UPDATE api_keys SET revoked = 1 WHERE key_id = ?", (key_id,)).rowcount > 0

    # --- queue ------------------------------------------------------------------------------------
    def enqueue(self, queue: str, payload: dict[str, Any], *, dedupe_key: str | None = None,
                delay_s: float = 0.0) -> int | None:
        with self._tx() as db:
            row = db.execute("INSERT INTO jobs (queue, dedupe_key, payload, due, created_at) VALUES (?, ?, ?, ?, ?) "
                             "ON CONFLICT DO NOTHING RETURNING job_id",
                             (queue, dedupe_key, json.dumps(payload), time.time() + delay_s,
                              utcnow().isoformat())).fetchone()
        return None if row is None else int(row[0])

    def claim(self, queue: str, limit: int = 10, lease_s: float = 60.0) -> list[Job]:
        now = time.time()
        with self._tx() as db:
            rows = db.execute("SELECT job_id, payload, attempts, dedupe_key FROM jobs WHERE queue = ? AND "
                              "state IN ('pending', 'running') AND due <= ? ORDER BY due, job_id LIMIT ?",
                              (queue, now, limit)).fetchall()
            db.executemany("UPDATE jobs SET state = 'running', attempts = attempts + 1, due = ? WHERE job_id = ?",
                           [(now + lease_s, r[0]) for r in rows])
        return [Job(int(r[0]), queue, json.loads(r[1]), int(r[2]) + 1, r[3]) for r in rows]

    def complete(self, job_id: int) -> None:
        with self._tx() as db:
            db.execute("UPDATE jobs SET state = 'done', last_error = NULL WHERE job_id = ?", (job_id,))

    def fail(self, job_id: int, error: str, *, retry_in_s: float | None = 30.0) -> None:
        with self._tx() as db:
            if retry_in_s is None:
                db.execute("UPDATE jobs SET state = 'dead', last_error = ? WHERE job_id = ?", (error[:500], job_id))
            else:
                db.execute("UPDATE jobs SET state = 'pending', last_error = ?, due = ? WHERE job_id = ?",
                           (error[:500], time.time() + retry_in_s, job_id))

    def queue_depth(self, queue: str) -> int:
        with self._mutex:
            return int(self._db.execute("SELECT COUNT(*) FROM jobs WHERE queue = ? AND state IN ('pending', 'running')",
                                        (queue,)).fetchone()[0])

    def _close_connection(self) -> None:
        """Close the database and give up the folder's instance lock, without saving the index."""
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        if self._lock_fh is not None:
            self._lock_fh.close()
            self._lock_fh = None

    def close(self) -> None:
        try:
            with self._mutex:
                if self.index is not None:
                    # a cache: the next start rebuilds it. hnswlib raises RuntimeError on a file it cannot write,
                    # which left the database open and the folder's instance lock held
                    with contextlib.suppress(OSError, RuntimeError, sqlite3.Error):
                        self.index.save(self.folder / "backlog.hnsw", self._seq())
                self._db.close()
        finally:
            if self._lock_fh is not None:
                self._lock_fh.close()
                self._lock_fh = None



def _busy(exc: sqlite3.DatabaseError) -> bool:
    """True for SQLite's "database is locked" / "database is busy": another connection holds the write lock."""
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))


def _store_busy() -> StoreBusyError:
    return StoreBusyError("the backlog store is locked by another process (an open sqlite3 shell or a backup "
                          "holding a transaction); nothing was written, retry shortly")
