"""The integration's durable state in one SQLite file (WAL, ``synchronous=FULL``).

- ``events``: every accepted delivery by event id — the idempotency record and the work queue (a delivery's
  raw body is kept only until it is processed; failed ones keep it, to be retried). A delivery is
  committed before the webhook answers 2xx, so a crash after the answer loses nothing: on start, events left
  ``processing`` by a crash go back to ``pending``.
- ``posts``: what the integration knows of each post (text, board, status and when it first changed), for
  the backlog and for the report's status section; ``text_at``, ``votes_at``, ``status_changed_at`` and
  ``deleted_at`` date what is held, so that an older event delivered late never overwrites it.
- ``suggestions``: duplicate candidates found for new posts (and whether they were merged).

Example:
    >>> import tempfile, os
    >>> store = IntegrationStore(os.path.join(tempfile.mkdtemp(), "quackback.sqlite"))
    >>> store.accept("evt_1", "post.created", b"{}"), store.accept("evt_1", "post.created", b"{}")
    (True, False)
    >>> store.claim()["id"], store.claim()
    ('evt_1', None)
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from ..._atomic import create_private
from ._errors import QuackbackError

__all__ = ["IntegrationStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY, type TEXT NOT NULL, body BLOB NOT NULL, received_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL,
    finished_at REAL, result TEXT, error TEXT);
CREATE INDEX IF NOT EXISTS events_queue ON events(state, next_at, received_at);
CREATE TABLE IF NOT EXISTS posts (
    id TEXT PRIMARY KEY, text TEXT, board TEXT, created_at TEXT, votes INTEGER, status TEXT, status_stage TEXT,
    status_changed_at TEXT, first_status_change_at TEXT, canonical_post_id TEXT, deleted INTEGER NOT NULL DEFAULT 0,
    predicted TEXT, written TEXT, sentiment TEXT, updated_at REAL, deleted_at TEXT, text_at TEXT, votes_at TEXT);
CREATE TABLE IF NOT EXISTS suggestions (
    post_id TEXT NOT NULL, candidate_id TEXT NOT NULL, score REAL NOT NULL, event_id TEXT, created_at REAL,
    merged INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (post_id, candidate_id));
"""
_POST_FIELDS = ("text", "board", "created_at", "votes", "status", "status_stage", "status_changed_at",
                "first_status_change_at", "canonical_post_id", "deleted", "predicted", "written", "sentiment",
                "deleted_at", "text_at", "votes_at")


class IntegrationStore:
    """Events, posts and suggestions of one Quackback integration, safe across threads and processes."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:  # a damaged file or a folder in its place ended `quackback export` as an "unexpected DatabaseError"
            with contextlib.suppress(OSError):  # customer posts: owner only (0600) when created here
                create_private(self.path)
            self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # the 2xx promises durability: fsync each commit
            self._db.executescript(_SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(posts)")}
            # a store written before deletions, texts and vote counts were dated
            for column in ("deleted_at", "text_at", "votes_at"):
                if column not in columns:
                    self._db.execute(f"ALTER TABLE posts ADD COLUMN {column} TEXT")
        except sqlite3.DatabaseError as exc:
            if hasattr(self, "_db"):
                self._db.close()
            raise QuackbackError(f"cannot open the Quackback integration store {self.path}: {exc} (a damaged "
                                 "file, or not the store of `feedback-nlp serve`?)") from None

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- the event queue ------------------------------------------------------------------------
    def accept(self, event_id: str, event_type: str, body: bytes) -> bool:
        """Record a delivery; False if this event id was already accepted (a redelivery)."""
        now = time.time()
        with self._tx() as db:
            cur = db.execute("INSERT OR IGNORE INTO events (id, type, body, received_at, next_at) VALUES (?,?,?,?,?)",
                             (event_id, event_type, body, now, now))
            return cur.rowcount == 1

    def recover(self) -> int:
        """Put events a crashed process left ``processing`` back in the queue; returns how many."""
        with self._tx() as db:
            return db.execute("UPDATE events SET state='pending' WHERE state='processing'").rowcount

    def claim(self) -> dict[str, Any] | None:
        """Take the oldest due pending event (marking it ``processing``), or None."""
        with self._tx() as db:
            row = db.execute("SELECT id, type, body, attempts FROM events WHERE state='pending' AND next_at <= ? "
                             "ORDER BY received_at LIMIT 1", (time.time(),)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE events SET state='processing', attempts=attempts+1 WHERE id=?", (row["id"],))
            return {"id": row["id"], "type": row["type"], "body": bytes(row["body"]), "attempts": row["attempts"] + 1}

    def complete(self, event_id: str, result: dict[str, Any]) -> None:
        with self._tx() as db:
            # the raw body (the post as sent, PII included) is dropped once processed; the id stays, for idempotency
            db.execute("UPDATE events SET state='done', finished_at=?, result=?, error=NULL, body=x'' WHERE id=?",
                       (time.time(), json.dumps(result), event_id))

    def fail(self, event_id: str, error: str, *, retry_in: float | None) -> None:
        """Record a failure: back to ``pending`` after ``retry_in`` seconds, or ``failed`` for good (None)."""
        with self._tx() as db:
            if retry_in is None:
                db.execute("UPDATE events SET state='failed', finished_at=?, error=? WHERE id=?",
                           (time.time(), error[:500], event_id))
            else:
                db.execute("UPDATE events SET state='pending', next_at=?, error=? WHERE id=?",
                           (time.time() + retry_in, error[:500], event_id))

    def requeue_failed(self, event_id: str | None = None) -> int:
        """Put failed events (one, or all) back in the queue, e.g. after fixing a key's permissions."""
        with self._tx() as db:
            sql = "UPDATE events SET state='pending', next_at=?, attempts=0 WHERE state='failed'"
            args: tuple = (time.time(),)
            if event_id is not None:
                sql, args = sql + " AND id=?", (*args, event_id)
            return db.execute(sql, args).rowcount

    def event(self, event_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT id, type, state, attempts, received_at, finished_at, result, error "
                                   "FROM events WHERE id=?", (event_id,)).fetchone()
        if row is None:
            return None
        out = dict(row)
        out["result"] = json.loads(out["result"]) if out["result"] else None
        return out

    def counts(self) -> dict[str, int]:
        """Events by state (``pending``, ``processing``, ``done``, ``failed``)."""
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM events GROUP BY state").fetchall()
        return {"pending": 0, "processing": 0, "done": 0, "failed": 0, **{r[0]: r[1] for r in rows}}

    # --- posts and suggestions ------------------------------------------------------------------
    def upsert_post(self, post_id: str, **fields: Any) -> None:
        """Create or update a post's row with the given fields (others keep their values)."""
        with self._tx() as db:
            self._upsert(db, post_id, fields)

    def update_post(self, post_id: str,
                    decide: Callable[[dict[str, Any] | None], dict[str, Any] | None]) -> dict[str, Any] | None:
        """Read the post's row (None when unknown) and write the fields ``decide(row)`` returns, in one
        transaction: ``BEGIN IMMEDIATE`` holds the database's write lock from the read to the write, so no other
        worker, thread or process, stores a newer state in between (two workers checking, then writing, could
        each overwrite the other's newer text or vote count). Returns the fields written, or None when
        ``decide`` returned None (nothing written).

        >>> import tempfile, os
        >>> store = IntegrationStore(os.path.join(tempfile.mkdtemp(), "q.sqlite"))
        >>> store.update_post("p1", lambda row: {"votes": 3} if row is None else None)
        {'votes': 3}
        >>> store.update_post("p1", lambda row: {"votes": 2} if row["votes"] < 2 else None) is None
        True
        """
        with self._tx() as db:
            row = db.execute("SELECT * FROM posts WHERE id=?", (post_id,)).fetchone()
            fields = decide(dict(row) if row else None)
            if fields is not None:
                self._upsert(db, post_id, fields)
            return fields

    @staticmethod
    def _upsert(db: sqlite3.Connection, post_id: str, fields: dict[str, Any]) -> None:
        unknown = set(fields) - set(_POST_FIELDS)
        if unknown:
            raise ValueError(f"unknown post fields {sorted(unknown)}")
        values = {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in fields.items()}
        cols = ", ".join(["id", *values, "updated_at"])
        marks = ", ".join("?" * (len(values) + 2))
        update = ", ".join([*(f"{k}=excluded.{k}" for k in values), "updated_at=excluded.updated_at"])
        db.execute(f"INSERT INTO posts ({cols}) VALUES ({marks}) ON CONFLICT(id) DO UPDATE SET {update}",
                   (post_id, *values.values(), time.time()))

    def post(self, post_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM posts WHERE id=?", (post_id,)).fetchone()
        return dict(row) if row else None

    def posts_frame(self, *, include_deleted: bool = False) -> pd.DataFrame:
        """The posts as records (``id, text, source, created_at, votes, status, status_changed_at, …``).

        A post known only by a vote (delivered before its ``post.created``) has no text yet: it is left out of
        the live posts until its text comes (``include_deleted`` lists every row)."""
        with self._lock:
            df = pd.read_sql_query("SELECT * FROM posts" + ("" if include_deleted else
                                                            " WHERE deleted=0 AND text IS NOT NULL"), self._db)
        df = df.rename(columns={"board": "source"})
        for col in ("created_at", "status_changed_at", "first_status_change_at"):
            df[col] = pd.to_datetime(df[col], utc=True, errors="coerce", format="mixed")
        return df

    def add_suggestions(self, post_id: str, candidates: list[tuple[str, float]], event_id: str) -> None:
        with self._tx() as db:
            db.executemany("INSERT OR REPLACE INTO suggestions (post_id, candidate_id, score, event_id, created_at) "
                           "VALUES (?,?,?,?,?)", [(post_id, c, float(s), event_id, time.time()) for c, s in candidates])

    def mark_merged(self, post_id: str, candidate_id: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE suggestions SET merged=1 WHERE post_id=? AND candidate_id=?", (post_id, candidate_id))

    def suggestions(self, *, min_score: float = 0.0, limit: int = 100) -> list[dict[str, Any]]:
        """Duplicate candidates of live posts, best first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT s.post_id, s.candidate_id, s.score, s.merged, s.created_at FROM suggestions s "
                "LEFT JOIN posts p ON p.id = s.post_id LEFT JOIN posts c ON c.id = s.candidate_id "
                "WHERE s.score >= ? AND COALESCE(p.deleted, 0) = 0 AND COALESCE(c.deleted, 0) = 0 "
                "ORDER BY s.score DESC LIMIT ?", (min_score, limit)).fetchall()
        return [dict(r) for r in rows]
