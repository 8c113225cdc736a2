"""The SQLite store's ANN index: hnswlib over the items' vectors, labelled by the items' row keys.

The index is a cache of the ``items`` table: it is saved on shutdown beside a marker that records the store's
write sequence and the file's SHA-256, and loaded only when both still match; otherwise (file lost, corrupt,
or the store changed after it was saved, e.g. a crash) it is rebuilt from SQLite. :class:`~feedback_nlp.Deduper`
is not reused here because the backlog needs deletes and in-place updates, which Deduper does not offer.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .._atomic import create_private
from .._optional import require
from .._persist import sha256_file

__all__ = ["AnnIndex"]

log = logging.getLogger(__name__)


class AnnIndex:
    """A thread-safe hnswlib inner-product index with deletes and updates.

    Example:
        >>> idx = AnnIndex(dim=2)
        >>> idx.upsert(np.array([1, 2]), np.array([[1, 0], [0, 1]], dtype=np.float32))
        >>> idx.search(np.array([[1, 0]], dtype=np.float32), k=1)[0][0][0]
        1
    """

    def __init__(self, dim: int, *, m: int = 16, ef_construction: int = 200, ef: int = 64, seed: int = 0) -> None:
        self.dim, self.m, self.ef_construction, self.ef, self.seed = dim, m, ef_construction, ef, seed
        self._lock = threading.Lock()
        self._live: set[int] = set()
        self._deleted = 0
        self._index = self._new(1024)

    def _new(self, capacity: int):
        hnswlib = require("hnswlib", "serve", "the backlog index")
        index = hnswlib.Index(space="ip", dim=self.dim)
        index.init_index(max_elements=capacity, ef_construction=self.ef_construction, M=self.m, random_seed=self.seed)
        index.set_ef(self.ef)
        return index

    def __len__(self) -> int:
        return len(self._live)

    def upsert(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under integer keys; an existing key's vector is replaced."""
        if len(keys) == 0:
            return
        with self._lock:
            needed = self._index.get_current_count() + len(keys)
            if needed > self._index.get_max_elements():
                self._index.resize_index(max(needed, 2 * self._index.get_max_elements()))
            # keys are never reused after a delete (SQLite AUTOINCREMENT), so no deleted label comes back
            self._index.add_items(np.asarray(vectors, dtype=np.float32), np.asarray(keys, dtype=np.int64))
            self._live.update(int(k) for k in keys)

    def delete(self, key: int) -> None:
        """Remove a key (no error if it is not there)."""
        with self._lock:
            if key in self._live:
                self._index.mark_deleted(key)
                self._live.discard(key)
                self._deleted += 1

    @property
    def deleted(self) -> int:
        """Slots of deleted items still in the graph (hnswlib only marks them)."""
        return self._deleted

    @property
    def stale_share(self) -> float:
        """Share of deleted slots: above about a half, a rebuild makes searches faster and smaller."""
        total = len(self._live) + self._deleted
        return self._deleted / total if total else 0.0

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """Up to ``k`` (key, score) pairs per query, best first."""
        with self._lock:
            k = min(k, len(self._live))
            if k == 0:
                return [[] for _ in range(len(queries))]
            self._index.set_ef(max(self.ef, k))
            try:
                labels, dist = self._index.knn_query(queries, k=k)
            except RuntimeError:
                # with many deleted nodes a narrow search can come back short: search the whole graph
                self._index.set_ef(max(len(self._live) + self._deleted, k))
                try:
                    labels, dist = self._index.knn_query(queries, k=k)
                except RuntimeError:  # deleted nodes cut the live ones off the graph: compare with each of them
                    return self._exact(np.asarray(queries, dtype=np.float32), k)
        return [[(int(lab), float(1.0 - d)) for lab, d in zip(row_l, row_d)] for row_l, row_d in zip(labels, dist)]

    def _exact(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """Exact top-``k`` by inner product over the live vectors (the lock held)."""
        keys = np.array(sorted(self._live), dtype=np.int64)
        scores = queries @ np.asarray(self._index.get_items(keys), dtype=np.float32).T
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return [[(int(keys[j]), float(row[j])) for j in top] for row, top in zip(scores, order)]

    @classmethod
    def build(cls, dim: int, chunks: Iterable[tuple[np.ndarray, np.ndarray]], **kwargs) -> AnnIndex:
        """A fresh index from ``(keys, vectors)`` chunks (the store's rows)."""
        index = cls(dim, **kwargs)
        for keys, vectors in chunks:
            index.upsert(keys, vectors)
        return index

    # --- persistence ------------------------------------------------------------------------------
    def save(self, path: Path, seq: int) -> None:
        """Write the index and its marker (store sequence + checksum); the marker goes last."""
        marker = path.with_name(path.name + ".json")
        marker.unlink(missing_ok=True)
        create_private(path)  # the vectors of customer texts: owner only, as backlog.sqlite
        with self._lock:
            self._index.save_index(str(path))
            live = sorted(self._live)
        marker.write_text(json.dumps({"seq": seq, "dim": self.dim, "count": len(live), "deleted": self._deleted,
                                      "sha256": sha256_file(path), "m": self.m}))

    @classmethod
    def load(cls, path: Path, seq: int, dim: int, live_keys: Iterable[int]) -> AnnIndex | None:
        """The saved index if its marker matches ``seq`` and the file's checksum, else ``None``."""
        marker = path.with_name(path.name + ".json")
        try:
            meta = json.loads(marker.read_text())
            if meta["seq"] != seq or meta["dim"] != dim or sha256_file(path) != meta["sha256"]:
                return None
            index = cls(dim, m=int(meta["m"]))
            # into a fresh, uninitialised index: loading over the one __init__ made printed hnswlib's "Warning:
            # Calling load_index for an already inited index" on stdout at every start
            index._index = require("hnswlib", "serve", "the backlog index").Index(space="ip", dim=dim)
            index._index.load_index(str(path), max_elements=max(int(meta["count"]) + int(meta["deleted"]), 1024))
            index._index.set_ef(index.ef)
            index._live = set(int(k) for k in live_keys)
            index._deleted = int(meta["deleted"])
            if len(index._live) != int(meta["count"]):
                return None
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            log.warning("ANN index file unusable (%s); rebuilding it from the store", type(exc).__name__)
            return None
        finally:
            marker.unlink(missing_ok=True)  # from now on the file may fall behind the store
        return index
