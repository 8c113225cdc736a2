"""Persistent embedding cache: SQLite, keyed by (model id, SHA-256 of the cleaned text).

The text itself is never stored, only its hash and the float32 vector bytes. WAL mode and a busy timeout
let several processes read and write one file at once. A file that is not a feedback_nlp cache raises
:class:`~feedback_nlp.errors.CacheError` instead of returning vectors.

Every row carries a checksum of (model id, key, vector bytes), verified on every read: a row whose bytes
changed on disk (a bit flip, a truncated write, a row copied under another key) or whose vector is not
finite is never served. It is deleted, reported as missing, so the embedder recomputes and stores it again,
and logged as a warning; :attr:`EmbeddingCache.corrupted` counts them. A cache written by the previous
schema is emptied once on open: its rows cannot be verified.

Example:
    >>> import numpy as np, tempfile, os
    >>> c = EmbeddingCache(os.path.join(tempfile.mkdtemp(), "emb.sqlite"))
    >>> c.put("m@1", ["hi"], np.ones((1, 3), dtype=np.float32))
    >>> c.get("m@1", ["hi", "new"])[1]
    [1]
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import _config
from ._atomic import create_private
from .errors import CacheError, InvalidInputError

__all__ = ["EmbeddingCache", "default_cache_path", "text_key"]

log = logging.getLogger(__name__)

_MAGIC = "feedback_nlp.embedding_cache"
_SCHEMA_VERSION = "3"  # 2 and 3: a checksum per row (3: one BLAKE2b pass per row)
_UNVERIFIABLE = ("1", "2")  # older schemas whose rows this version cannot check: emptied once on open
# Keys per SELECT: SQLite >= 3.32 allows 32,766 host parameters; older builds 999 (measured: 5,000 keys a query is 1.5x faster than 500).
_UNWRITABLE = re.compile(r"disk is full|readonly database|read-only", re.IGNORECASE)
_CHUNK = 5000 if sqlite3.sqlite_version_info >= (3, 32, 0) else 900


def default_cache_path() -> Path:
    """``$FEEDBACK_NLP_CACHE``, else ``embeddings.sqlite`` in ``$FEEDBACK_NLP_HOME`` (see :mod:`feedback_nlp._config`)."""
    return _config.cache_path()


def _row_digest(model_id: str, key: bytes, dim: int, blob: bytes) -> bytes:
    """8 bytes of BLAKE2b over everything a row says: a changed byte anywhere, or a row moved under
    another key or model, no longer matches (each part is length-prefixed, so parts cannot shift)."""
    model = model_id.encode("utf-8")
    return hashlib.blake2b(b"".join((len(model).to_bytes(4, "little"), model, len(key).to_bytes(4, "little"), key,
                                     dim.to_bytes(4, "little"), blob)), digest_size=8).digest()


def text_key(text: str) -> bytes:
    """The cache key of a (cleaned) text: its SHA-256 digest (a lone surrogate kept as its code point: it was a
    UnicodeEncodeError)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def _checked_texts(model_id: Any, texts: Any) -> list[str]:
    """``texts`` as a list of strings (one string is one text: ``put("m", "ab", ...)`` stored "a" and "b"), with
    an InvalidInputError for a model id or a text that is no string (None was an AttributeError)."""
    if not isinstance(model_id, str) or not model_id:
        raise InvalidInputError(f"model_id must be the embedding model's id (a non-empty string), got {model_id!r:.80}")
    if isinstance(texts, (set, frozenset, Mapping)) or not isinstance(texts, Iterable):
        # a set's order is not the vectors' order: put() stored each vector under another text, for good
        raise InvalidInputError(f"texts must be a string or a list of strings in the order of the vectors, got "
                                f"{type(texts).__name__}")
    texts = [texts] if isinstance(texts, str) else list(texts)
    odd = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if odd:
        raise InvalidInputError(f"texts must be strings; positions {odd[:10]} hold "
                                f"{sorted({type(texts[i]).__name__ for i in odd})}")
    return texts


def _sqlite_or_empty(path: Path) -> bool:
    """Whether ``path`` starts as a SQLite database does (or is empty, or unreadable: no telling)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return True
    return not head or head == b"SQLite format 3\x00"


def _checked_path(path: Any) -> Path:
    """``path`` as the cache file: ``~`` expanded (``FEEDBACK_NLP_CACHE`` expanded it, ``cache="~/emb.sqlite"``
    made a folder named ``~`` in the working directory), a blank or non-path value refused (``""`` opened ``.``)."""
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidInputError(f"the cache path must be a file path, got {type(path).__name__} {path!r:.60}")
    text = os.fspath(path)
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError(f"the cache path must name a file, got {text!r:.60}")
    if "\x00" in text:
        raise InvalidInputError(f"the cache path holds a NUL character: {text!r:.80}")
    return Path(text).expanduser()


class EmbeddingCache:
    """A process-safe SQLite store of embedding vectors.

    Args:
        path: the SQLite file (created if missing); ``None`` uses :func:`default_cache_path`.
        timeout: seconds to wait for a lock held by another process.
    """

    def __init__(self, path: str | os.PathLike | None = None, *, timeout: float = 60.0) -> None:
        self.path = _checked_path(path) if path is not None else default_cache_path()
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 <= timeout < 1e6:
            # inf and NaN were an OverflowError/ValueError from sqlite's busy timeout, a string a TypeError
            raise InvalidInputError(f"timeout must be a number of seconds from 0 to 1e6, got {timeout!r}")
        self.timeout = timeout
        self.corrupted = 0  # rows found corrupt, discarded and left to be recomputed
        self.unwritable = 0  # vectors not stored: the disk was full or the cache read-only
        self._local = threading.local()
        self._conn()  # validate eagerly so a bad file fails at construction, not mid-job

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.path)!r})"

    def __getstate__(self) -> dict:  # connections do not cross processes; reopen lazily
        return {"path": self.path, "timeout": self.timeout}

    def __setstate__(self, state: dict) -> None:
        self.path, self.timeout = state["path"], state["timeout"]
        self.corrupted = self.unwritable = 0
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            return conn
        if self.path.is_dir():  # "unable to open database file; delete it" was the advice for --cache /tmp
            raise CacheError(f"the embedding cache {self.path} is a folder; give a file path, such as "
                             f"{self.path / 'embeddings.sqlite'}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file where a folder of the path should be, no permission: was a bare OSError
            raise CacheError(f"cannot create the folder of the embedding cache {self.path} ({exc.strerror or exc}); "
                             "point FEEDBACK_NLP_CACHE (or --cache) at a file in a writable folder") from exc
        try:
            with contextlib.suppress(OSError):  # vectors of customer texts: owner only (0600) when created here
                create_private(self.path)
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
            conn.execute("PRAGMA busy_timeout = %d" % int(self.timeout * 1000))
            self._init_schema(conn)
        except sqlite3.DatabaseError as exc:
            if not _sqlite_or_empty(self.path):  # someone's data file: "delete it" was the advice
                raise CacheError(f"{self.path} is not a usable feedback_nlp embedding cache: it is no SQLite file at "
                                 "all (another program's file?) and was left untouched; point FEEDBACK_NLP_CACHE "
                                 "(or --cache) at another file") from exc
            raise CacheError(f"{self.path} is not a usable feedback_nlp embedding cache ({exc}); "
                             "delete it or point FEEDBACK_NLP_CACHE elsewhere") from exc
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _init_schema(self, conn: sqlite3.Connection) -> None:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                if not tables:  # another process may have created it while we waited for the lock
                    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                    conn.execute(
                        "CREATE TABLE vectors (model_id TEXT NOT NULL, key BLOB NOT NULL, dim INTEGER NOT NULL,"
                        " vec BLOB NOT NULL, digest BLOB NOT NULL, PRIMARY KEY (model_id, key)) WITHOUT ROWID"
                    )
                    conn.executemany("INSERT INTO meta VALUES (?, ?)",
                                     [("magic", _MAGIC), ("schema_version", _SCHEMA_VERSION)])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall()) if "meta" in {
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")} else {}
        if meta.get("magic") != _MAGIC:
            raise CacheError(f"{self.path} is a SQLite file but not a feedback_nlp embedding cache; "
                             "refusing to read or write it")
        if meta.get("schema_version") == _SCHEMA_VERSION and conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='vectors'").fetchone() is None:
            # opened fine, then every get was a CacheError and len() a bare OperationalError
            raise CacheError(f"{self.path} is a feedback_nlp embedding cache without its vectors table; delete the "
                             "file to rebuild it")
        if meta.get("schema_version") in _UNVERIFIABLE:
            self._upgrade(conn)
        elif meta.get("schema_version") != _SCHEMA_VERSION:
            raise CacheError(f"{self.path} has cache schema {meta.get('schema_version')!r}, "
                             f"this version reads {_SCHEMA_VERSION!r}; delete the file to rebuild it")

    def _upgrade(self, conn: sqlite3.Connection) -> None:
        """Rows of an older schema cannot be verified by this version: start the table afresh."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] in _UNVERIFIABLE:
                conn.execute("DROP TABLE vectors")
                conn.execute(
                    "CREATE TABLE vectors (model_id TEXT NOT NULL, key BLOB NOT NULL, dim INTEGER NOT NULL,"
                    " vec BLOB NOT NULL, digest BLOB NOT NULL, PRIMARY KEY (model_id, key)) WITHOUT ROWID"
                )
                conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (_SCHEMA_VERSION,))
                log.warning("%s: upgraded the embedding cache to checksummed rows; its vectors are recomputed "
                            "as they are needed", self.path)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _discard(self, conn: sqlite3.Connection, model_id: str, keys: list[bytes]) -> None:
        """Delete corrupt rows so that the recomputed vectors can take their place, and report them."""
        self.corrupted += len(keys)
        log.warning("%s: %d cached vector(s) of %s failed their checksum or held a non-finite value and were "
                    "discarded; they are recomputed", self.path, len(keys), model_id)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("DELETE FROM vectors WHERE model_id = ? AND key = ?", [(model_id, k) for k in keys])
            conn.execute("COMMIT")
        except sqlite3.DatabaseError:  # a read-only cache: still never served, recomputed every time
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    def get(self, model_id: str, texts: Sequence[str]) -> tuple[dict[int, np.ndarray], list[int]]:
        """Look up ``texts``: returns ``({position: vector}, [positions missing])``.

        A stored row that fails its checksum or holds a non-finite value counts as missing (and is deleted).
        """
        keys = [text_key(t) for t in _checked_texts(model_id, texts)]
        found: dict[bytes, np.ndarray] = {}
        conn = self._conn()
        try:
            for i in range(0, len(keys), _CHUNK):
                chunk = list(set(keys[i:i + _CHUNK]))
                q = (f"SELECT key, dim, vec, digest FROM vectors WHERE model_id = ? AND key IN "
                     f"({','.join('?' * len(chunk))})")
                intact: list[tuple[bytes, bytes]] = []
                bad: list[tuple[bytes, bytes]] = []
                vecs: Any
                for key, dim, blob, digest in conn.execute(q, [model_id, *chunk]).fetchall():
                    (intact if self._intact(model_id, key, dim, blob, digest) else bad).append((key, blob))
                if intact:  # one finiteness check for the whole batch (rows of one model share a dimension)
                    width = len(intact[0][1])
                    if all(len(blob) == width for _, blob in intact):
                        vecs = np.frombuffer(b"".join(blob for _, blob in intact), dtype="<f4").reshape(len(intact), -1)
                        finite = np.isfinite(vecs).all(axis=1)
                    else:
                        vecs = [np.frombuffer(blob, dtype="<f4") for _, blob in intact]
                        finite = [bool(np.isfinite(v).all()) for v in vecs]
                    for (key, _), vec, ok in zip(intact, vecs, finite):
                        if ok:
                            found[key] = vec
                        else:
                            bad.append((key, b""))
                bad_keys = [key for key, _ in bad]
                if bad_keys:
                    self._discard(conn, model_id, bad_keys)
        except sqlite3.DatabaseError as exc:
            raise CacheError(f"{self.path} is corrupt ({exc}); delete it to rebuild the cache") from exc
        hits: dict[int, np.ndarray] = {}
        missing: list[int] = []
        for i, k in enumerate(keys):
            v = found.get(k)
            if v is None:
                missing.append(i)
            else:
                hits[i] = v
        return hits, missing

    def put(self, model_id: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store ``vectors[i]`` for ``texts[i]`` (existing entries are kept: the first write wins).

        A vector holding NaN or an infinity is not stored: ``get`` would never serve it (it counts as missing),
        and each read would discard it again with a warning.
        """
        texts = _checked_texts(model_id, texts)
        try:
            vectors = np.ascontiguousarray(vectors, dtype="<f4")
        except (TypeError, ValueError):
            raise InvalidInputError("vectors must be a numeric array of shape (texts, dim)") from None
        if vectors.ndim != 2 or len(vectors) != len(texts) or vectors.shape[1] == 0:
            raise InvalidInputError(f"expected {len(texts)} vectors of shape (n, dim), got {vectors.shape}")
        dim = vectors.shape[1]
        rows = []
        finite = np.isfinite(vectors).all(axis=1)
        for t, v, ok in zip(texts, vectors, finite):
            if not ok:
                continue
            key, blob = text_key(t), v.tobytes()
            rows.append((model_id, key, dim, blob, _row_digest(model_id, key, dim, blob)))
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT OR IGNORE INTO vectors VALUES (?, ?, ?, ?, ?)", rows)
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError) and _UNWRITABLE.search(str(exc)):
                # The vectors are computed and returned either way: a full disk or a read-only cache (a shared
                # one on a read-only mount) stopped a whole tagging job for what only saves time.
                if not self.unwritable:
                    log.warning("%s: cannot store vectors (%s); going on without caching them", self.path, exc)
                self.unwritable += len(rows)
                return
            raise CacheError(f"could not write to {self.path} ({exc})") from exc

    @staticmethod
    def _intact(model_id: str, key: bytes, dim: Any, blob: Any, digest: Any) -> bool:
        """Whether every byte of a row agrees with its checksum (its values are checked for finiteness after)."""
        return (isinstance(dim, int) and dim > 0 and isinstance(blob, bytes) and len(blob) == 4 * dim
                and isinstance(digest, bytes) and digest == _row_digest(model_id, key, dim, blob))

    def __len__(self) -> int:
        try:
            return int(self._conn().execute("SELECT COUNT(*) FROM vectors").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            raise CacheError(f"{self.path} is corrupt ({exc}); delete it to rebuild the cache") from exc

    def clear(self, model_id: str | None = None) -> None:
        """Delete all vectors, or only those of one model."""
        try:
            if model_id is None:
                self._conn().execute("DELETE FROM vectors")
            else:
                self._conn().execute("DELETE FROM vectors WHERE model_id = ?", (model_id,))
        except sqlite3.DatabaseError as exc:
            raise CacheError(f"could not clear {self.path} ({exc})") from exc

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
