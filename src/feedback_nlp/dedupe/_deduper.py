"""The Deduper: vector + lexical search over a backlog, duplicate pairs and groups."""

from __future__ import annotations

import json
import numbers
import os
from collections import Counter
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from .._config import DEFAULTS
from .._optional import require
from .._params import HasMethods, Interval, Options, ParamsMixin
from .._persist import check_embedder, loading, prepare_folder, read_npy, read_saved, saving, write_config
from ..cleaning import _REDACTED, redact_pii
from ..embedding import BaseEmbedder, Embedder, _as_embeddings, _as_text_list, _refuse_empty
from ..errors import InvalidInputError, ModelMismatchError, NotFittedError, quoted_list
from ..evaluation import best_f1_threshold
from ..records import _id_key, _missing, _one_per_row, _refuse_shuffled, _refuse_surrogate_ids
from ._bm25 import BM25

__all__ = ["Deduper", "calibrate_threshold"]

_IDENTICAL = 1 - 1e-6  # the similarity from which two unit vectors are the same vector, float32 rounding aside


def _cosine(x: Any) -> Any:
    """A cosine similarity as reported (a number or an array): float32 sums of unit vectors gave 1.0000001
    for a copy."""
    clipped = np.clip(np.asarray(x, dtype=float), -1.0, 1.0)
    return float(clipped) if clipped.ndim == 0 else clipped


_BLOCK = 2048  # rows per matmul block: 2048 x n float32 scores stay small even for n = 1M
DEFAULT_K = 5  # matches per query of Deduper.find when k is not given


def _float32_at_least(threshold: float) -> np.float32:
    """The smallest float32 at or above ``threshold``: float32 scores compared with it (in float32) pass exactly
    when they are ``>= threshold`` in float64. Comparing with the threshold itself is not exact: a Python float
    (and, before NumPy 2, a float64 scalar too) is rounded to float32 first, so a score of 0.94999999 passed a
    0.95 threshold and was reported (as float64) below it."""
    t = np.float32(threshold)
    return t if float(t) >= threshold else np.nextafter(t, np.float32(np.inf))


def _repeated_ids(ids: list[Any]) -> list[str]:
    """The ids given more than once, as text, compared as read_feedback and ``tag`` compare them (``_id_key``:
    1, 1.0, " 1" and "1" are one id; compared by ``str``, 1 and 1.0 were two ids and " 1" and "1" too)."""
    return [str(i) for i, c in Counter(map(_id_key, ids)).items() if c > 1]


def _refuse_repeated_ids(ids: list[Any]) -> None:
    """InvalidInputError naming the ids given more than once."""
    repeated = _repeated_ids(ids)
    if repeated:
        raise InvalidInputError(f"ids must be unique; repeated: {quoted_list(repeated, 5)}")


def _check_saved_items(ids: list[Any], texts: list[Any], emb: np.ndarray) -> None:
    """ValueError unless a loaded index holds what ``save`` writes: unique string or number ids (as ``fit``
    wants them), texts or None, finite float vectors. A folder edited with its manifest recomputed loaded NaN
    vectors (every score NaN), text vectors (numpy's error at the first ``find``), and ids that ``fit`` refuses
    (None, a repeated id, an object), which ``find`` and ``pairs`` then returned as matches."""
    odd = [p for p, i in enumerate(ids) if not isinstance(i, (str, int, float)) or _missing(i)]
    if odd:
        raise ValueError(f"ids at positions {odd[:10]} are no ids (null, NaN or an object)")
    if _repeated_ids(ids):
        raise ValueError("ids are repeated; each item has its own id")
    odd = [p for p, t in enumerate(texts) if t is not None and not isinstance(t, str)]
    if odd:
        raise ValueError(f"texts at positions {odd[:10]} are neither text nor null")
    if emb.dtype.kind != "f":
        raise ValueError(f"embeddings are {emb.dtype}, not floating-point vectors")
    if not np.isfinite(emb).all():
        raise ValueError("embeddings hold NaN or infinity")


def _lexical(text: Any, *, saved: bool = False) -> str:
    """What the lexical channel of :meth:`Deduper.find` reads of a text: the text a save keeps (personal data
    redacted; ``saved``: it is one already) without the placeholders. Read raw, a query and an item that named one
    customer's e-mail address ranked first on it, as the vectors (of cleaned text) never do, and after a save and
    load no more: the same search ranked otherwise."""
    if not isinstance(text, str):
        return ""
    return _REDACTED.sub(" ", text if saved else redact_pii(text))


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _exact_copies(emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(first, node)``: the position of the first of each set of identical rows, in order, and each row's set.

    >>> _exact_copies(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32))
    (array([0, 1]), array([0, 1, 0]))
    """
    if len(emb) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    rows = np.ascontiguousarray(emb).view(np.dtype((np.void, emb.dtype.itemsize * emb.shape[1]))).ravel()
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order].astype(np.int64), rank[np.ravel(inverse)].astype(np.int64)


def calibrate_threshold(scores: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray,
                        *, return_report: bool = False) -> float | tuple[float, dict[str, float]]:
    """The similarity threshold that maximises F1 on labelled pairs (1 = duplicate, 0 = not).

    ``scores`` come from :meth:`Deduper.score_pairs` (or any similarity). The cut is placed halfway
    between the best-scoring pair score and the next lower one (:func:`~feedback_nlp.evaluation.best_f1_threshold`,
    the same rule as the per-tag thresholds of multi-label tagging).

    >>> calibrate_threshold([0.95, 0.9, 0.6, 0.5], [1, 1, 0, 0])
    0.75
    """
    # rows are paired by position: a generator was "scores must be numbers", a set paired scores with other
    # pairs' labels, and an empty cell of a nullable boolean column was a TypeError ("boolean value of NA")
    _refuse_shuffled(scores, labels, "labels", "scores")
    scores, labels = _one_per_row(scores, "scores"), _one_per_row(labels, "labels")
    for name, values in (("scores", scores), ("labels", labels)):
        missing = [p for p, v in enumerate(values) if _missing(v)]
        if missing:
            raise InvalidInputError(f"{name} are missing at positions {missing[:10]}: every pair needs a score and a "
                                    "label, 1 (duplicate) or 0 (not)")
    if not len(scores) and not len(labels):  # was "must be 1-D of equal length, got (0,) and (0,)": they are
        raise InvalidInputError("no labelled pairs: calibrate_threshold needs scores and labels of at least one "
                                "duplicate pair (1) and one other (0)")
    thr, report = best_f1_threshold(scores, labels)
    return (thr, report) if return_report else thr


class Deduper(ParamsMixin, BaseEstimator):
    """Finds near-duplicates of feedback in a backlog.

    A scikit-learn estimator (``get_params``/``set_params``/``clone``); ``save``/``load`` store exactly
    ``get_params()``.

    Args:
        embedder: any :class:`BaseEmbedder` (default: :class:`Embedder`).
        threshold: cosine similarity from which two items count as duplicates (calibrate it on your data
            with :func:`calibrate_threshold`).
        lexical_weight: the most that lexical evidence adds to a match's cosine similarity in ``find``'s
            order (0 ranks by cosine alone). Used when both the index and the queries have texts: each
            candidate scores ``cosine + lexical_weight * (1 - exp(-R / lexical_scale))``, where ``R`` is the
            BM25 score over the query terms that are *specific* (held by few indexed items, see
            ``lexical_max_df``). A match whose cosine is ahead by more than ``lexical_weight`` is never
            overtaken, words that many items share (a template, a common request) add nothing, and the
            bonus saturates, so one rare shared word moves less than several. Chosen on training splits only
            (bugdup_hadoop's train groups, mrpc train); measured on the held-out sets in docs/benchmarks.md.
        lexical_scale: BM25 mass at which the bonus reaches 63% of ``lexical_weight`` (a rare term shared
            once scores about 5-10).
        lexical_max_df: a query term counts when at most this share of the indexed items holds it (and
            always when at most 5 do).
        candidates: how many items each ranking contributes to the fusion (at least ``k``).
        index: ``"auto"`` (exact up to ``exact_max`` items, HNSW above), ``"exact"`` or ``"hnsw"``.
        exact_max: size up to which exact search is used with ``index="auto"``.
        hnsw_m, hnsw_ef: HNSW graph degree and search breadth (higher: better recall, slower).
        random_state: seed of the HNSW construction.
    """

    _parameter_constraints = {
        "embedder": [HasMethods("encode"), None],
        "threshold": [Interval(float, 0, 1, closed="right")],
        "lexical_weight": [Interval(float, 0, None)],
        "lexical_scale": [Interval(float, 0, None, closed="neither")],
        "lexical_max_df": [Interval(float, 0, 1, closed="both")],
        "candidates": [Interval(int, 1, None)],
        "index": [Options({"auto", "exact", "hnsw"})],
        "exact_max": [Interval(int, 0, None)],
        "hnsw_m": [Interval(int, 2, None)],
        "hnsw_ef": [Interval(int, 1, None)],
        "random_state": [Interval(int, 0, None)],
    }

    def __init__(self, embedder: BaseEmbedder | None = None, threshold: float = DEFAULTS.dedupe_threshold, *,
                 lexical_weight: float = 0.3, lexical_scale: float = 20.0, lexical_max_df: float = 0.01,
                 candidates: int = 100, index: str = "auto",
                 exact_max: int = 50_000, hnsw_m: int = 32, hnsw_ef: int = 200, random_state: int = 0) -> None:
        self.embedder = embedder
        self.threshold = threshold
        self.lexical_weight = lexical_weight
        self.lexical_scale = lexical_scale
        self.lexical_max_df = lexical_max_df
        self.candidates = candidates
        self.index = index
        self.exact_max = exact_max
        self.hnsw_m = hnsw_m
        self.hnsw_ef = hnsw_ef
        self.random_state = random_state

    # --- building ---------------------------------------------------------------------------------
    def _embedder(self) -> BaseEmbedder:
        if getattr(self, "embedder_", None) is None:
            embedder = self.embedder if self.embedder is not None else Embedder()
            # an index loaded without its embedder embedded new texts with the default model, whatever model its
            # vectors came from: same size, other space, and add()/find() mixed them without a word
            check_embedder(getattr(self, "model_id_", None), embedder, "the duplicate index")
            self.embedder_ = embedder
        return self.embedder_

    def _inputs(self, texts: Any, ids: Sequence[Any] | None, embeddings: np.ndarray | None) -> tuple[list, list, np.ndarray]:
        if isinstance(texts, pd.DataFrame):
            if "text" not in texts.columns:
                raise InvalidInputError(f"DataFrame needs a 'text' column; has {quoted_list(texts.columns)}")
            if ids is not None:  # checked against the frame's index before its rows become a list
                _refuse_shuffled(texts, ids, "ids", "texts")
            ids = texts["id"].tolist() if ids is None and "id" in texts.columns else ids
            texts = texts["text"].tolist()
        if texts is None and embeddings is None:
            raise InvalidInputError("give texts or precomputed embeddings")
        if ids is not None:  # a Series of ids sorted apart from the texts named other items' ids
            _refuse_shuffled(texts, ids, "ids", "texts")
            ids = _one_per_row(ids, "ids")  # ids="abc" named three items a, b and c; a set had no order
        if texts is not None:  # strings only, also beside precomputed embeddings (the lexical channel reads them)
            texts = _as_text_list(texts)
        n = len(texts) if texts is not None else len(embeddings) if embeddings is not None else 0
        if embeddings is None:
            _refuse_empty(texts)  # whatever the embedder accepts: a custom one embedded "" and matched it
            embeddings = self._embedder().encode(texts)
        else:
            embeddings = _as_embeddings(embeddings, n)
            dim = getattr(self.embedder, "dim", None)  # an embedder is any object with encode(): dim may be unknown
            if dim is not None and embeddings.shape[1] != dim:
                raise ModelMismatchError(f"embeddings have {embeddings.shape[1]} dimensions, the embedder gives {dim}")
        # numpy scalars as the Python numbers they hold: save() wrote np.int64(5) as the string "5"
        ids = list(range(n)) if ids is None else [i.item() if isinstance(i, np.generic) else i for i in ids]
        if len(ids) != n:
            raise InvalidInputError(f"{len(ids)} ids for {n} items")
        missing = [p for p, i in enumerate(ids) if _missing(i)]
        if missing:  # a match with id None (or NaN, which equals nothing) names no item
            raise InvalidInputError(f"ids are missing at positions {missing[:10]}: every item needs an id "
                                    "(pass ids=None to number the items)")
        _refuse_surrogate_ids(ids)  # Deduper.save failed on them with a UnicodeEncodeError
        unhashable = [p for p, i in enumerate(ids) if not isinstance(i, Hashable)]
        if unhashable:  # a list as an id was stored, and matched by its text "[1]"
            raise InvalidInputError(f"ids at positions {unhashable[:10]} are {type(ids[unhashable[0]]).__name__}s; an "
                                    "id is a string or a number")
        return (texts if texts is not None else [None] * n), ids, _normalise(embeddings)

    def fit(self, texts: Any = None, ids: Sequence[Any] | None = None, *, embeddings: np.ndarray | None = None) -> Deduper:
        """Index a backlog: texts (or a DataFrame with ``id``/``text``), or precomputed ``embeddings``."""
        self._validate_params()
        for attr in ("embedder_", "model_id_"):  # a refit embeds with the embedder it is given now
            self.__dict__.pop(attr, None)
        texts, ids, emb = self._inputs(texts, ids, embeddings)
        if len(emb) == 0:
            raise InvalidInputError("cannot fit a Deduper on an empty corpus")
        _refuse_repeated_ids(ids)
        index = self._new_hnsw(emb) if self._use_hnsw(len(emb)) else None  # before the state changes (see add)
        self.ids_, self.texts_, self.embeddings_ = list(ids), list(texts), emb
        self.dim_ = emb.shape[1]
        # an object with encode() and no model_id (the parameter check asks no more) was an AttributeError here
        self.model_id_ = getattr(getattr(self, "embedder_", None) or self.embedder, "model_id", None)
        self._hnsw = index
        self._build_lexical()
        return self

    def _build_lexical(self, new: list | None = None, *, saved: bool = False) -> None:
        """BM25 over what the lexical channel reads of the indexed texts (:func:`_lexical`), when there are texts
        and the lexical ranking is wanted. ``new``: the texts just added (the others were read before); ``saved``:
        the texts are a saved index's, redacted already."""
        self._bm25: BM25 | None = None
        if self.lexical_weight <= 0:
            self._lexical_texts: list[str] | None = None
            return
        before = getattr(self, "_lexical_texts", None)
        self._fit_lexical([*before, *map(_lexical, new)] if new is not None and before is not None else
                          [_lexical(t, saved=saved) for t in self.texts_])

    def _fit_lexical(self, read: list[str]) -> None:
        """BM25 over ``read``, what the lexical channel reads of the indexed texts in their order (no BM25 when no
        text has a word); its statistics (idf, mean length) depend on the whole corpus, so every change refits it."""
        self._lexical_texts = read
        self._bm25 = BM25().fit(read) if any(read) else None

    def _use_hnsw(self, n: int | None = None) -> bool:
        """Whether an index of ``n`` items (default: the indexed ones) is searched with HNSW."""
        return self.index == "hnsw" or (self.index == "auto" and (len(self.ids_) if n is None else n) > self.exact_max)

    def _build_index(self) -> None:
        self._hnsw = self._new_hnsw(self.embeddings_) if self._use_hnsw() else None

    def _new_hnsw(self, emb: np.ndarray) -> Any:
        """An HNSW index of the rows of ``emb`` (labels are their positions)."""
        hnswlib = require("hnswlib", "ann", "approximate nearest-neighbour search")
        idx = hnswlib.Index(space="ip", dim=emb.shape[1])
        idx.init_index(max_elements=max(len(emb), 16), ef_construction=max(self.hnsw_ef, 100), M=self.hnsw_m,
                       random_seed=self.random_state, allow_replace_deleted=False)
        idx.add_items(emb, np.arange(len(emb)))
        idx.set_ef(self.hnsw_ef)
        return idx

    def add(self, texts: Any = None, ids: Sequence[Any] | None = None, *, embeddings: np.ndarray | None = None) -> Deduper:
        """Add items to the index incrementally (ids default to continuing positions)."""
        self._check_fitted()
        given = ids is not None
        texts, ids, emb = self._inputs(texts, ids, embeddings)
        if not given:  # only ids left out continue the positions: ids=[0] given for one item stay 0
            ids = list(range(len(self.ids_), len(self.ids_) + len(emb)))
        _refuse_repeated_ids(ids)  # fit's rule: one id named twice in the batch was stored twice
        clash = set(map(_id_key, ids)) & set(map(_id_key, self.ids_))
        if clash:  # left out, the ids continue the positions, which may be ids fit() was given: say so
            hint = "" if given else (f" (without ids=, the new items are numbered {ids[0]} to {ids[-1]}, after the "
                                     f"{len(self.ids_)} indexed items; pass ids= for them)")
            raise InvalidInputError(f"ids already in the index: {quoted_list(sorted(map(str, clash)), 5)}{hint}")
        if emb.shape[1] != self.dim_:
            raise ModelMismatchError(f"new embeddings have {emb.shape[1]} dimensions, the index has {self.dim_}")
        start = len(self.ids_)
        stacked = np.vstack([self.embeddings_, emb])
        # the HNSW index the backlog grows into is built before anything changes: without hnswlib (the [ann] extra)
        # the add that crossed exact_max failed after adding its items, and the retry said "ids already in the index"
        grown = self._new_hnsw(stacked) if self._hnsw is None and self._use_hnsw(len(stacked)) else None
        self.ids_ += list(ids)
        self.texts_ += list(texts)
        self.embeddings_ = stacked
        if grown is not None:
            self._hnsw = grown
        elif self._hnsw is not None:
            self._hnsw.resize_index(len(self.ids_))
            self._hnsw.add_items(emb, np.arange(start, len(self.ids_)))
        self._build_lexical(list(texts))  # BM25's statistics (idf, mean length) depend on the whole corpus
        return self

    def remove(self, ids: Any) -> Deduper:
        """Remove items from the index by id: an item closed, merged or deleted in the backlog no longer comes
        back from ``find``, ``pairs`` or ``groups``. To change an item's text, remove it and add it again.

        Ids are matched as ``add`` matches them (``7`` and ``"7"`` are one id). Every id must be in the index,
        else nothing is removed and the error names the unknown ones; an id named twice is removed once. The
        last item cannot be removed: an index holds at least one (fit a new one).

        >>> import numpy as np
        >>> d = Deduper().fit(["a", "b", "c"], ids=["x", "y", "z"], embeddings=np.eye(3))
        >>> d.remove(["y"]).ids_
        ['x', 'z']
        """
        self._check_fitted()
        if isinstance(ids, (set, frozenset)):  # the order of removals does not matter
            ids = list(ids)
        ids = _one_per_row(ids, "ids")
        position = {_id_key(i): p for p, i in enumerate(self.ids_)}
        unknown = [i for i in ids if _missing(i) or not isinstance(i, Hashable) or _id_key(i) not in position]
        if unknown:
            raise InvalidInputError(f"ids not in the index: {quoted_list(sorted(map(str, unknown)), 5)}; nothing "
                                    "was removed")
        drop = {position[_id_key(i)] for i in ids}
        if len(drop) == len(self.ids_):
            raise InvalidInputError("removing every item would leave the index empty; fit a new Deduper instead")
        keep = [p for p in range(len(self.ids_)) if p not in drop]
        lexical = getattr(self, "_lexical_texts", None)
        self.ids_ = [self.ids_[p] for p in keep]
        self.texts_ = [self.texts_[p] for p in keep]
        self.embeddings_ = self.embeddings_[keep]
        self._build_index()  # HNSW labels are positions, which the removal shifts: rebuilt (or exact search again)
        if lexical is not None:  # refitted from the texts read before (each was redacted once)
            self._fit_lexical([lexical[p] for p in keep])
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "ids_"):
            raise NotFittedError("this Deduper is not fitted yet; call fit() first")
        # the parameters are read at each call (pairs() and groups() threshold with self.threshold), so a
        # set_params() after fit is checked here: threshold=85 (a percentage) kept exact copies alone, -1 listed
        # every pair (n² rows), lexical_scale=0 made every bonus NaN and the order arbitrary
        self._validate_params()

    # --- search -----------------------------------------------------------------------------------
    def _knn(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, positions) of the k nearest indexed items for each query, best first."""
        if self._hnsw is not None:
            self._hnsw.set_ef(max(self.hnsw_ef, k + 1))
            try:
                pos, dist = self._hnsw.knn_query(queries, k=k)
                return 1.0 - dist, pos.astype(np.int64)
            except RuntimeError:  # the graph cannot give k neighbours ("Cannot return the results in a contiguous 2D
                pass              # array": many identical vectors, a k near the index's size): exact search instead
        scores = np.empty((len(queries), k), dtype=np.float32)
        pos = np.empty((len(queries), k), dtype=np.int64)
        for s in range(0, len(queries), _BLOCK):
            sim = queries[s:s + _BLOCK] @ self.embeddings_.T
            part = np.argpartition(-sim, k - 1, axis=1)[:, :k] if k < sim.shape[1] else np.tile(np.arange(sim.shape[1]), (len(sim), 1))
            part_scores = np.take_along_axis(sim, part, axis=1)
            order = np.lexsort((part, -part_scores), axis=1)  # by score, ties by position: deterministic
            pos[s:s + _BLOCK] = np.take_along_axis(part, order, axis=1)
            scores[s:s + _BLOCK] = np.take_along_axis(part_scores, order, axis=1)
        return scores, pos

    def find(self, texts: Any = None, k: int | None = None, min_score: float | None = None, *,
             embeddings: np.ndarray | None = None, exclude_self: bool = False,
             exclude_ids: Sequence[Any] | None = None) -> pd.DataFrame:
        """Top-``k`` matches of each query (default: 5, or every item of a smaller index; a ``k`` given larger than
        the index is an error): a DataFrame with ``query`` (position), ``rank``, ``id``,
        ``score`` (cosine similarity) and ``text``, keeping matches with score ≥ ``min_score`` (default: no
        floor). With texts on both sides the order adds a bounded bonus for shared specific words (see
        ``lexical_weight``), so a lower cosine score can rank above a higher one.

        Queries that are themselves in the index: pass their ids as ``exclude_ids`` (one per query) to leave
        exactly those out. ``exclude_self`` instead drops the first match scoring ≥ 0.9999, which is the
        query itself *or* an identical copy of it."""
        self._check_fitted()
        if k is None:  # the default: a new team's backlog of 3 items failed "k=5 is larger than the index"
            k = min(DEFAULT_K, len(self.ids_))
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise InvalidInputError(f"k must be a positive integer, got {k!r}")
        if k > len(self.ids_):
            raise InvalidInputError(f"k={k} is larger than the index ({len(self.ids_)} items)")
        if min_score is not None and (isinstance(min_score, bool) or not isinstance(min_score, numbers.Real)
                                      or not np.isfinite(min_score)):  # NaN kept every match, "0.5" a TypeError
            raise InvalidInputError(f"min_score must be a finite number or None, got {min_score!r}")
        if min_score is not None and not -1 <= min_score <= 1:  # 85 (a percentage) kept exact copies alone
            raise InvalidInputError(f"min_score is a cosine similarity, between -1 and 1 (0.85, not 85), got {min_score!r}")
        if exclude_ids is not None:  # "ab" excluded the ids a and b, a set in no order, a re-sorted Series others
            _refuse_shuffled(texts, exclude_ids, "exclude_ids", "texts")
            exclude_ids = _one_per_row(exclude_ids, "exclude_ids")
        qtexts, _, q = self._inputs(texts, None, embeddings)
        if q.shape[1] != self.dim_:
            raise ModelMismatchError(f"queries have {q.shape[1]} dimensions, the index has {self.dim_}")
        skip_pos = None
        if exclude_ids is not None:
            if len(exclude_ids) != len(q):
                raise InvalidInputError(f"{len(exclude_ids)} exclude_ids for {len(q)} queries")
            where = {_id_key(i): p for p, i in enumerate(self.ids_)}
            skip_pos = [where.get(_id_key(i), -2) for i in exclude_ids]
        floor = None if min_score is None else min(float(min_score), _IDENTICAL)  # 1.0: copies, float rounding aside
        kk = min(k + int(exclude_self or skip_pos is not None), len(self.ids_))
        lexical = self._bm25 is not None and any(isinstance(t, str) and t for t in qtexts)
        if lexical:
            scores, pos = self._fused(q, qtexts, kk, floor)
        else:
            scores, pos = self._knn(q, kk)
        rows = []
        for i in range(len(q)):
            rank, skipped = 0, not exclude_self
            for s, p in zip(scores[i].tolist(), pos[i].tolist()):
                if p < 0 or rank >= k:
                    break
                if skip_pos is not None and p == skip_pos[i]:
                    continue
                if not skipped and s >= 0.9999:  # the query itself is in the index
                    skipped = True
                    continue
                if floor is not None and s < floor:
                    continue
                rank += 1
                rows.append({"query": i, "rank": rank, "id": self.ids_[p], "score": _cosine(s), "text": self.texts_[p]})
        return pd.DataFrame(rows, columns=["query", "rank", "id", "score", "text"])

    def _fused(self, q: np.ndarray, qtexts: list, kk: int, floor: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(cosine scores, positions) of the best ``kk`` items by cosine plus the bounded lexical bonus.

        Candidates are the ``candidates`` best items by cosine and the ``candidates`` best by BM25 (all
        terms); the bonus uses BM25 over the specific terms only. Ties by cosine, then position. Candidates below
        ``floor`` (find's ``min_score``) are left out before the best are chosen: chosen first, a lower match
        that the bonus moved up took the place of one above the floor, and was then dropped (k=1 found nothing)."""
        n = len(self.ids_)
        c = min(n, max(self.candidates, kk))
        max_df = max(5, int(self.lexical_max_df * n))
        vs, vp = self._knn(q, c)
        out_s = np.full((len(q), kk), -np.inf, dtype=np.float32)
        out_p = np.full((len(q), kk), -1, dtype=np.int64)
        block = max(1, min(256, 10_000_000 // max(n, 1)))  # two dense BM25 blocks of block x n float32 (~80 MB)
        assert self._bm25 is not None  # lexical implies a fitted BM25
        for s in range(0, len(q), block):
            part = [_lexical(t) for t in qtexts[s:s + block]]
            lex, specific = self._bm25.scores(part), self._bm25.scores(part, max_df=max_df)
            for r in range(len(lex)):
                i = s + r
                row = lex[r]
                top = np.argpartition(-row, c - 1)[:c] if c < n else np.arange(n)
                top = top[row[top] > 0]
                cand = np.union1d(vp[i][vp[i] >= 0], top)
                cos = self.embeddings_[cand] @ q[i]
                if floor is not None:
                    above = cos.astype(np.float64) >= floor
                    cand, cos = cand[above], cos[above]
                bonus = self.lexical_weight * -np.expm1(-specific[r, cand].astype(np.float64) / self.lexical_scale)
                order = np.lexsort((cand, -cos, -(cos + bonus)))[:kk]
                out_p[i, :len(order)] = cand[order]
                out_s[i, :len(order)] = cos[order]
        return out_s, out_p

    def _pairs_positions(self, threshold: float, k: int = 100, emb: np.ndarray | None = None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pairs (a < b) of rows of ``emb`` (default: the index) at least ``threshold`` similar, best first."""
        # 1.0 means identical vectors: a float32 vector times its own copy gives 0.9999994 to 1.0000005, so
        # threshold=1.0 (--threshold 1) missed 38% of the exact copies of 2,000 random vectors
        limit = _float32_at_least(min(threshold, _IDENTICAL))
        index = self._hnsw
        if emb is None:
            emb = self.embeddings_
        elif index is not None:  # other rows than the index's (the distinct ones): an index of their own
            index = self._new_hnsw(emb) if len(emb) > self.exact_max or self.index == "hnsw" else None
        n = len(emb)
        a_list, b_list, s_list = [], [], []
        if index is None:
            for s in range(0, n, _BLOCK):
                sim = emb[s:s + _BLOCK] @ emb.T
                r, c = np.nonzero(sim >= limit)
                r = r + s
                keep = c > r
                a_list.append(r[keep])
                b_list.append(c[keep])
                s_list.append(sim[r[keep] - s, c[keep]])
        else:
            index.set_ef(max(self.hnsw_ef, min(k, n) + 1))
            pos, dist = index.knn_query(emb, k=min(k, n))
            scores, pos = 1.0 - dist, pos.astype(np.int64)
            r = np.repeat(np.arange(n), scores.shape[1])
            c, sc = pos.ravel(), scores.ravel()
            keep = (sc >= limit) & (c != r) & (c >= 0)
            a, b = np.minimum(r[keep], c[keep]), np.maximum(r[keep], c[keep])
            uniq, first = np.unique(a.astype(np.int64) * n + b, return_index=True)
            a_list, b_list, s_list = [a[first]], [b[first]], [sc[keep][first]]
        a = np.concatenate(a_list) if a_list else np.empty(0, np.int64)
        b = np.concatenate(b_list) if b_list else np.empty(0, np.int64)
        sims = np.concatenate(s_list) if s_list else np.empty(0, np.float32)
        order = np.lexsort((b, a, -sims))
        return a[order], b[order], sims[order]

    def _threshold(self, threshold: float | None) -> float:
        """The constructor's rule for a per-call threshold too: 0 or below would list every pair (n² rows)."""
        if threshold is None:
            return self.threshold
        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not 0 < threshold <= 1:
            raise InvalidInputError(f"threshold must be in (0, 1], got {threshold!r}")
        return float(threshold)

    def pairs(self, threshold: float | None = None) -> pd.DataFrame:
        """All near-duplicate pairs with similarity ≥ ``threshold``: ``id_a``, ``id_b``, ``score``, best first.

        Exact below ``exact_max`` items; with the HNSW index, pairs are found among each item's 100
        nearest neighbours.
        """
        self._check_fitted()
        thr = self._threshold(threshold)
        a, b, s = self._pairs_positions(thr)
        return pd.DataFrame({"id_a": [self.ids_[i] for i in a], "id_b": [self.ids_[i] for i in b], "score": _cosine(s)})

    def groups(self, threshold: float | None = None, min_size: int = 2) -> pd.DataFrame:
        """Duplicate groups: one row per member with ``group``, ``id``, ``is_representative``, ``score``
        (similarity to the representative) and ``text``.

        Groups are formed around centres, not by chaining: the item with most duplicates becomes a
        representative and takes its unassigned neighbours above the threshold, then the next — so an
        A~B~C chain never merges two different requests through a middle item. Only groups of at least
        ``min_size`` items are listed; ``min_size=1`` lists every item, each in exactly one group (an item
        without duplicates is a group of one, after the others, in index order).
        """
        self._check_fitted()
        thr = self._threshold(threshold)
        if isinstance(min_size, bool) or not isinstance(min_size, (int, np.integer)) or min_size < 1:
            raise InvalidInputError(f"min_size must be an integer >= 1, got {min_size!r}")
        # Exact copies (a bot's or a template's message posted thousands of times) are one node with a count:
        # every pair of copies was listed, so 3,000 copies took 4 s and 1.4 GB and 10,000 about 15 GB. Counted
        # with their multiplicity, the centres, members and order are those of the item-by-item rule.
        first, node_of = _exact_copies(self.embeddings_)
        collapsed = len(first) < len(node_of)
        size = np.bincount(node_of, minlength=len(first))
        # the positions of each node's copies, first copy first (only when there are copies: no array per item)
        copies = np.split(np.argsort(node_of, kind="stable"), np.cumsum(size)[:-1]) if collapsed else None

        def items(u: int) -> Any:
            return copies[u] if copies is not None else (u,)

        a, b, s = self._pairs_positions(thr, emb=self.embeddings_[first] if collapsed else None)
        own = (self.embeddings_[first] * self.embeddings_[first]).sum(axis=1)  # a copy's score: its self-similarity
        # copies are duplicates of each other only as the threshold says: zero vectors (a custom embedder's
        # answer to a text it cannot read) are similar to nothing, not even to each other
        twins = np.where(own >= _float32_at_least(min(thr, _IDENTICAL)), size - 1, 0)
        neigh: dict[int, list[tuple[int, float]]] = {int(u): [] for u in np.flatnonzero(twins > 0)}
        for x, y, sc in zip(a.tolist(), b.tolist(), s.tolist()):
            neigh.setdefault(x, []).append((y, sc))
            neigh.setdefault(y, []).append((x, sc))

        def weight(u: int) -> tuple[int, float]:  # duplicates of u and the sum of their scores
            return (int(twins[u] + sum(size[v] for v, _ in neigh[u])),
                    float(twins[u] * own[u]) + sum(size[v] * sc for v, sc in neigh[u]))

        keys = {u: weight(u) for u in neigh}
        order = sorted(neigh, key=lambda u: (-keys[u][0], -keys[u][1], u))
        assigned = np.full(len(first), -1)
        placed = np.zeros(len(self.ids_), dtype=bool)
        rows = []
        gid = 0
        for centre in order:
            if assigned[centre] >= 0:
                continue
            members = [(int(p), float(own[centre])) for p in items(centre)[1:]] if twins[centre] else []
            members += [(int(p), sc) for v, sc in neigh[centre] if assigned[v] < 0 for p in items(v)]
            if len(members) + 1 < min_size:
                continue
            assigned[centre] = gid
            assigned[[v for v, _ in neigh[centre] if assigned[v] < 0]] = gid
            rep = int(items(centre)[0])
            rows.append({"group": gid, "id": self.ids_[rep], "is_representative": True, "score": 1.0, "text": self.texts_[rep]})
            for m, sc in sorted(members, key=lambda t: -t[1]):
                rows.append({"group": gid, "id": self.ids_[m], "is_representative": False, "score": _cosine(sc), "text": self.texts_[m]})
            placed[[rep, *(m for m, _ in members)]] = True
            gid += 1
        if min_size <= 1:  # groups of one: min_size=1 was accepted, yet an item without duplicates was in no group
            for p in np.flatnonzero(~placed).tolist():
                rows.append({"group": gid, "id": self.ids_[p], "is_representative": True, "score": 1.0, "text": self.texts_[p]})
                gid += 1
        return pd.DataFrame(rows, columns=["group", "id", "is_representative", "score", "text"])

    def score_pairs(self, texts_a: Sequence[str], texts_b: Sequence[str]) -> np.ndarray:
        """Cosine similarity of each (a, b) pair — the input of :func:`calibrate_threshold`."""
        # fit's rules for texts: a string was scored letter by letter, a blank text matched another at 0.0
        _refuse_shuffled(texts_a, texts_b, "texts_b", "texts_a")  # a re-sorted column scored other pairs
        texts_a, texts_b = _as_text_list(texts_a), _as_text_list(texts_b)
        if len(texts_a) != len(texts_b):
            raise InvalidInputError(f"{len(texts_a)} texts_a for {len(texts_b)} texts_b")
        _refuse_empty(texts_a)
        _refuse_empty(texts_b)
        emb = self._embedder()
        return _cosine((_normalise(emb.encode(list(texts_a))) * _normalise(emb.encode(list(texts_b)))).sum(axis=1))

    # --- persistence ------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Save ids, texts and vectors (plain arrays + JSON, no pickle); the index is rebuilt on load."""
        self._check_fitted()
        odd = next(((p, i) for p, i in enumerate(self.ids_) if not isinstance(i, (str, int, float))), None)
        if odd is not None:  # JSON keeps these; a Timestamp, bytes or tuple id came back as another value
            raise InvalidInputError(f"id {odd[1]!r} (position {odd[0]}) is a {type(odd[1]).__name__}: a saved Deduper "
                                    "keeps ids as strings or numbers, so it would load as another id; fit with "
                                    "ids converted to str")
        folder = prepare_folder(path)
        with saving(folder) as staged:
            self._write_folder(staged)
        return folder

    def _write_folder(self, path: Path) -> None:
        """Write the files of a saved Deduper into the empty folder ``path`` (see :meth:`save`)."""
        np.save(path / "embeddings.npy", self.embeddings_, allow_pickle=False)
        # saved artefacts hold redacted text only, whatever the caller fitted on
        texts = [redact_pii(t) if isinstance(t, str) else t for t in self.texts_]
        (path / "items.json").write_text(json.dumps({"ids": self.ids_, "texts": texts}, ensure_ascii=False, default=str),
                                        encoding="utf-8")  # the locale's encoding failed on "é" in a C locale
        params = {k: v for k, v in self.get_params(deep=False).items() if k != "embedder"}
        write_config(path, "feedback_nlp.Deduper", ("embeddings.npy", "items.json"), params=params,
                     model_id=self.model_id_)

    @classmethod
    def load(cls, path: str | os.PathLike, *, embedder: BaseEmbedder | None = None) -> Deduper:
        """Load a saved Deduper; ``embedder`` must be the one its vectors were made with."""
        path = Path(path).expanduser()

        def read(config: dict[str, Any]) -> tuple[Any, np.ndarray]:  # the config's checks come before the big files
            if not isinstance(config["model_id"], (str, type(None))):
                raise ValueError(f"model_id {config['model_id']!r} is not a model name")
            check_embedder(config["model_id"], embedder, "the duplicate index")
            return json.loads((path / "items.json").read_text(encoding="utf-8")), read_npy(path / "embeddings.npy")

        with loading(path):  # a config without model_id or params was a bare KeyError
            # config, ids and vectors of one save, also while another process saves the folder
            config, (items, vectors) = read_saved(path, "feedback_nlp.Deduper", read)
            # folders saved before parameters were grouped under "params" keep them at the top level
            params = config.get("params") or {k: config[k] for k in ("threshold", "index", "exact_max", "hnsw_m",
                                                                     "hnsw_ef", "random_state") if k in config}
            if not isinstance(params, dict):
                raise ValueError(f"params is a {type(params).__name__}, not an object of parameters")
        if "rrf_k" in params:  # saved while find() fused ranks: its lexical_weight meant a rank weight then
            params = {k: v for k, v in params.items() if k != "rrf_k" and (k != "lexical_weight" or v == 0)}
        unknown = sorted(set(params) - set(cls._parameter_constraints))
        if unknown:
            raise ModelMismatchError(f"{path} was saved with parameters this version does not know: {unknown}")
        with loading(path):
            d = cls(embedder, **params)
            d._validate_params()
            d.ids_, d.texts_ = list(items["ids"]), list(items["texts"])
            d.embeddings_ = vectors
            if d.embeddings_.ndim != 2 or len(d.embeddings_) != len(d.ids_) or len(d.texts_) != len(d.ids_):
                raise ValueError(f"embeddings of shape {d.embeddings_.shape} for {len(d.ids_)} ids and "
                                 f"{len(d.texts_)} texts")
            _check_saved_items(d.ids_, d.texts_, d.embeddings_)
            d.dim_ = d.embeddings_.shape[1]
            d.model_id_ = config["model_id"]
            d.embedder_ = embedder  # type: ignore[assignment]  # None: a loaded index that takes vectors only
            d._build_index()
            d._build_lexical(saved=True)
        return d
