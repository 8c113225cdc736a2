"""The ThemeModel: discover themes, assign items through one path, describe and track them."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset
from sklearn.base import BaseEstimator, clone

from .._params import HasMethods, Interval, ParamsMixin
from .._persist import check_embedder, loading, prepare_folder, read_npz, read_saved, saving, write_config
from ..cleaning import redact_pii
from ..embedding import BaseEmbedder, Embedder, _as_embeddings, _as_text_list, _refuse_empty
from ..errors import InvalidInputError, ModelMismatchError, NotFittedError, quoted
from ..records import _one_per_row, _refuse_shuffled, to_utc_times
from ._labels import BaseLabeller, CTFIDFLabeller, central_title
from ._parts import BaseClusterer, BaseReducer, GraphClusterer, HDBSCANClusterer

__all__ = ["ThemeModel"]

OUTLIER = -1


# --- the model ---------------------------------------------------------------------------------------

#: The most periods a trend table may have: ``freq="s"`` over three months of items is ~8 million periods
#: per theme, which filled 20 GB of memory before anything was written.
MAX_PERIODS = 10_000


def bounded_period_range(first: pd.Period, last: pd.Period, freq: str) -> pd.PeriodIndex:
    """``pd.period_range(first, last, freq)``, refused with InvalidInputError beyond :data:`MAX_PERIODS`.

    >>> len(bounded_period_range(pd.Period("2026-01", "M"), pd.Period("2026-12", "M"), "M"))
    12
    """
    try:
        width = first.end_time - first.start_time + pd.Timedelta(1, "ns")
    except (OverflowError, ValueError):  # OutOfBoundsTimedelta: a period ("300Y") beyond pandas' ~292 years
        raise InvalidInputError(f"freq {quoted(freq)} is longer than the ~292 years pandas can measure; choose a "
                                "period such as D, W, M, Q or Y") from None
    try:
        n = (last.end_time - first.start_time) / width
    except (OverflowError, ValueError):
        raise InvalidInputError(f"the items' dates run from {first} to {last}, more than the ~292 years pandas can "
                                "measure (a typo or a placeholder date such as 9999-12-31?)") from None
    if n > MAX_PERIODS:
        span = (last.end_time - first.start_time).ceil("s")
        # the shortest usual period that fits: "such as D, W or M" advised a day to a week that was too fine
        days = span / pd.Timedelta(days=1)
        fits = next((f for f, d in (("D", 1), ("W", 7), ("M", 30.44), ("Q", 91.31), ("Y", 365.25))
                     if days / d <= MAX_PERIODS), None)
        advice = (f"choose a longer period, such as {fits}" if fits else
                  "the dates span too long a time (a typo or a placeholder date?)")
        raise InvalidInputError(f"freq {freq!r} cuts the {span} between the first and the "
                                f"last item into about {int(n):,} periods (at most {MAX_PERIODS:,}); {advice}")
    return pd.period_range(first, last, freq=freq)


def _data_end(ts: pd.Series) -> pd.Timestamp:
    """When the items' data ends (naive UTC): the latest timestamp, or the end of its day when every timestamp is a
    date (midnight). A file of dates covers its last day whole: a week of dates ending on Sunday was judged 6/7
    covered (its count inflated by 17%, marked partial) and with ``freq="D"`` the last day was dropped from the test.

    >>> _data_end(pd.Series(pd.to_datetime(["2026-03-01", "2026-03-08"], utc=True)))
    Timestamp('2026-03-09 00:00:00')
    """
    known = ts.dropna().dt.tz_convert(None)
    end = known.max()
    return end + pd.Timedelta(days=1) if bool((known == known.dt.normalize()).all()) else end


def _json_account(value: Any) -> Any:
    """An account as JSON keeps its type where JSON has it: saved as text, account 1 came back as '1' and an
    update() naming it 1 counted a second account."""
    if isinstance(value, np.generic):
        value = value.item()
    # an int of any size is JSON (np.isfinite(10**30) was a TypeError that stopped save())
    if value is None or isinstance(value, (bool, str, int)) or (isinstance(value, float) and np.isfinite(value)):
        return value
    return None if isinstance(value, float) else str(value)  # NaN: no account


def check_freq(freq: Any) -> str:
    """``freq`` if time can be cut into periods of it (what :meth:`ThemeModel.trends` does), else
    InvalidInputError: for callers that check it before the work whose end needs it.

    The usual periods are read in either case (``"m"`` is a month here, minutes to pandas; ``"w"`` printed
    pandas' deprecation warning): the checked period is returned.

    >>> check_freq("W"), check_freq("2m"), check_freq("w-mon")
    ('W', '2M', 'W-MON')
    """
    # "w-mon" too: pandas read it, with a deprecation warning per call
    if isinstance(freq, str) and re.fullmatch(r"\s*\d*[dwmqy](-[a-z]{3})?\s*", freq, re.IGNORECASE):
        freq = freq.strip().upper()
    try:
        business = isinstance(to_offset(freq), pd.offsets.BusinessDay)
    except (ValueError, TypeError):
        business = False  # said below, with pandas' reason
    if business:  # periods of business days are deprecated by pandas: "B" printed its warning 27 times a run
        raise InvalidInputError(f"freq {quoted(freq)} (business days) is not a period pandas keeps supporting; "
                                "use D or W")
    try:
        one = pd.Series(pd.to_datetime(["2024-01-01"])).dt.to_period(freq).iloc[0]
    except (ValueError, TypeError, AttributeError, OverflowError) as exc:
        raise InvalidInputError(f"freq must be a period such as D, W, M, Q or Y (pandas frequency); got "
                                f"{quoted(freq)} ({exc})") from None
    bounded_period_range(one, one, freq)  # "300Y": beyond pandas' ~292 years in ns, said so
    return freq


def _checked_label(label: Any) -> str:
    """A theme label given by a person: a non-blank string, stripped."""
    if not isinstance(label, str):
        raise InvalidInputError(f"a theme label must be a string, got {type(label).__name__}")
    if not label.strip():
        raise InvalidInputError("a theme label cannot be empty")
    return label.strip()


def canonical_order(texts: Sequence[str], emb: np.ndarray) -> np.ndarray:
    """An order of the items that depends on what they are, not on where they stand in the input.

    Clustering is seeded, but its result depends on the order of the items (the graph's node order, the sample
    drawn, float sums): the same backlog shuffled kept 98% of the items together but gave 44% of the themes
    another id. Fitting in this order makes a shuffled input give the same themes, ids and titles. The key is a
    hash of the text (pseudo-random, so no part of the data sits together by accident); items whose text is
    empty or repeated are ordered by the bytes of their vector, since a precomputed vector is all there is.
    """
    text_key = np.fromiter((int.from_bytes(hashlib.blake2b(t.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
                                           "little") for t in texts), dtype=np.uint64, count=len(texts))
    vec_key = np.zeros(len(texts), dtype=np.uint64)
    _, inverse, counts = np.unique(text_key, return_inverse=True, return_counts=True)
    tied = np.flatnonzero((counts[inverse] > 1) | np.fromiter((not t for t in texts), dtype=bool, count=len(texts)))
    row = np.ascontiguousarray(emb, dtype=np.float32)
    for i in tied.tolist():
        vec_key[i] = int.from_bytes(hashlib.blake2b(row[i].tobytes(), digest_size=8).digest(), "little")
    return np.lexsort((vec_key, text_key))


def _refuse_shuffled_meta(texts: Any, timestamps: Any, accounts: Any) -> None:
    """Timestamps or accounts as a Series whose index holds the texts' labels in another order are refused: they
    were paired by position, each item dated and credited with another item's values."""
    for name, values in (("timestamps", timestamps), ("accounts", accounts)):
        if values is not None:
            _refuse_shuffled(texts, values, name, "texts")


def _check_saved_state(tm: ThemeModel) -> None:
    """ValueError unless a loaded model holds what ``save`` writes. A folder edited with its manifest recomputed
    loaded a NaN threshold (every item an outlier, without a word), NaN centres, items labelled with themes
    the model does not have, names of unknown themes, and texts that are numbers."""
    if not np.isfinite(tm.assign_threshold_) or not -1 <= tm.assign_threshold_ <= 1:
        raise ValueError(f"assign_threshold_ {tm.assign_threshold_} is not a similarity in [-1, 1]")
    for name in ("centroids_", "embeddings_"):
        values = getattr(tm, name)
        if values.dtype.kind != "f" or not np.isfinite(values).all():
            raise ValueError(f"{name.rstrip('_')} are not finite floating-point vectors")
    for name in ("theme_ids_", "labels_"):
        if getattr(tm, name).dtype.kind not in "iu":
            raise ValueError(f"{name.rstrip('_')} are {getattr(tm, name).dtype}, not whole numbers")
    known = set(tm.theme_ids_.tolist())
    if len(known) != len(tm.theme_ids_) or OUTLIER in known:
        raise ValueError(f"theme ids {tm.theme_ids_.tolist()[:20]} are repeated or hold the outlier id {OUTLIER}")
    nxt = tm.next_theme_id_
    if isinstance(nxt, bool) or not isinstance(nxt, int) or nxt <= max(known, default=-1):
        raise ValueError(f"next_theme_id_ {nxt!r} is not a whole number above every theme id")
    strays = sorted(set(tm.labels_.tolist()) - known - {OUTLIER})
    if strays:
        raise ValueError(f"items are labelled with themes the model does not have: {strays[:10]}")
    if not set(tm.custom_labels_) <= known or not all(isinstance(v, str) for v in tm.custom_labels_.values()):
        raise ValueError("custom_labels name themes the model does not have, or are not text")
    odd = [p for p, t in enumerate(tm.texts_) if not isinstance(t, str)]
    if odd:
        raise ValueError(f"texts at positions {odd[:10]} are not text")
    for name in ("timestamps_", "accounts_"):
        if getattr(tm, name) is not None and len(getattr(tm, name)) != len(tm.labels_):
            raise ValueError(f"{len(getattr(tm, name))} {name.rstrip('_')} for {len(tm.labels_)} items")


class ThemeModel(ParamsMixin, BaseEstimator):
    """Clusters feedback into named themes that stay stable over time.

    A scikit-learn estimator: ``get_params``/``set_params``/``clone`` work, parameters are checked in
    ``fit`` against ``_parameter_constraints``, and ``save``/``load`` store exactly ``get_params()``.

    Args:
        embedder: any :class:`BaseEmbedder` (default :class:`Embedder`).
        min_theme_size: the smallest group that counts as a theme.
        reducer, clusterer, labeller: swappable parts (defaults: no reduction, :class:`GraphClusterer` —
            Leiden communities of the cosine k-NN graph —, class-based TF-IDF keywords).
        assign_threshold: cosine similarity to a theme centre from which an item joins the theme.
        max_outlier_share: upper bound of the unassigned share; the threshold is lowered (to no less than
            ``min_assign_threshold``) until at most this share of the fitted items is left out.
        min_assign_threshold: the floor below which nothing is attached to a theme.
        max_fit_size: clustering runs on a random sample of at most this many items (memory and time stay
            bounded); every item is then assigned through the same path as ``transform``.
        merge_threshold: themes whose centres are at least this similar are merged after clustering.
        random_state: seed of the sample, the reducer and tie-breaking; same input → identical themes.
    """

    _parameter_constraints = {
        "embedder": [HasMethods("encode"), None],
        "min_theme_size": [Interval(int, 2, None)],
        "reducer": [BaseReducer, None],
        "clusterer": [BaseClusterer, None],
        "labeller": [BaseLabeller, None],
        "assign_threshold": [Interval(float, -1, 1)],
        "max_outlier_share": [Interval(float, 0, 1)],
        "min_assign_threshold": [Interval(float, -1, 1)],
        "max_fit_size": [Interval(int, 10, None)],
        "merge_threshold": [Interval(float, -1, 1)],
        "n_keywords": [Interval(int, 1, None)],
        "n_representatives": [Interval(int, 1, None)],
        "random_state": [Interval(int, 0, None)],
    }
    # parts are objects, not JSON: save() records only whether a custom one was used
    _PARTS = ("embedder", "reducer", "clusterer", "labeller")

    def __init__(self, embedder: BaseEmbedder | None = None, min_theme_size: int = 10, *,
                 reducer: BaseReducer | None = None, clusterer: BaseClusterer | None = None,
                 labeller: BaseLabeller | None = None, assign_threshold: float = 0.5,
                 max_outlier_share: float = 0.05, min_assign_threshold: float = 0.35,
                 max_fit_size: int = 20_000, merge_threshold: float = 0.92, n_keywords: int = 8,
                 n_representatives: int = 3, random_state: int = 0) -> None:
        self.embedder = embedder
        self.min_theme_size = min_theme_size
        self.reducer = reducer
        self.clusterer = clusterer
        self.labeller = labeller
        self.assign_threshold = assign_threshold
        self.max_outlier_share = max_outlier_share
        self.min_assign_threshold = min_assign_threshold
        self.max_fit_size = max_fit_size
        self.merge_threshold = merge_threshold
        self.n_keywords = n_keywords
        self.n_representatives = n_representatives
        self.random_state = random_state

    # --- helpers ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _all_or_nothing(self) -> Iterator[None]:
        """Put the model back as it was if the block fails or is interrupted. Ctrl-C during an update's
        clustering left 80 texts beside 60 labels: trends and assignments failed, save() wrote a folder that
        load() refused, and a second update() paired every later item with another item's theme."""
        before = {k: dict(v) if isinstance(v, dict) else v for k, v in self.__dict__.items()}
        try:
            yield
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise

    def _check_fitted(self) -> None:
        if not hasattr(self, "centroids_"):
            raise NotFittedError("this ThemeModel is not fitted yet; call fit() first")

    def _embed(self, texts: Any, embeddings: np.ndarray | None) -> tuple[list[str], np.ndarray]:
        if isinstance(texts, pd.Series):
            texts = texts.tolist()
        if texts is not None:  # strings only, also beside precomputed embeddings (the labeller reads them)
            texts = _as_text_list(texts)
        if embeddings is None:
            if texts is None:
                raise InvalidInputError("give texts or embeddings")
            if getattr(self, "embedder_", None) is None:
                embedder = self.embedder if self.embedder is not None else Embedder()
                # a model loaded without its embedder took the default one, whatever its themes were fitted on
                check_embedder(getattr(self, "model_id_", None), embedder, "the theme model")
                self.embedder_ = embedder
            _refuse_empty(texts)  # whatever the embedder accepts (a custom one embedded "" into a theme)
            embeddings = self.embedder_.encode(texts)
        n = len(texts) if texts is not None else len(embeddings) if hasattr(embeddings, "__len__") else -1
        emb = _as_embeddings(embeddings, n)
        texts = [""] * len(emb) if texts is None else list(texts)
        if hasattr(self, "centroids_") and emb.shape[1] != self.centroids_.shape[1]:
            raise ModelMismatchError(f"embeddings have {emb.shape[1]} dimensions; the themes were fitted on "
                                     f"{self.centroids_.shape[1]} ({self.model_id_})")
        return texts, emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)

    @staticmethod
    def _meta(values: Any, n: int, name: str) -> np.ndarray | None:
        if values is None:
            return None
        # a string was read as its characters ("has 10 values for 18 texts"), a number was "'int' object is not
        # iterable": both are one value where one per item is needed; a set has no order to match items by
        arr = pd.Series(_one_per_row(values, name), dtype=None if name == "timestamps" else object)
        if len(arr) != n:
            raise InvalidInputError(f"{name} has {len(arr)} values for {n} texts")
        if name == "timestamps":
            ts, bad = to_utc_times(arr)  # the records' rules: slash dates month first, dotted ones day first
            if bad.any():
                raise InvalidInputError(f"timestamps do not parse at positions {np.flatnonzero(bad)[:10].tolist()}")
            return ts.to_numpy()
        bad = arr.map(lambda v: isinstance(v, (list, tuple, dict, set, np.ndarray))).to_numpy()
        if bad.any():  # accounts are counted per theme: a list was "unhashable type" after all the clustering
            raise InvalidInputError(f"{name} must hold one value per item; positions "
                                    f"{np.flatnonzero(bad)[:10].tolist()} hold lists or objects")
        # every missing account is None: pd.NA (a nullable Int64 column) failed the count of accounts with
        # "boolean value of NA is ambiguous", and would have been saved as the account '<NA>'
        # (a list, not Series.map: map made a column of ints with a missing value floats, so the accounts
        # 12345678901234567 and 12345678901234568 were one account, and 1 was saved as 1.0)
        out = np.empty(len(arr), dtype=object)
        out[:] = [None if pd.isna(v) else v for v in arr.tolist()]
        return out

    def _similarities(self, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best theme (position in centroids_) and its similarity, in chunks to bound memory."""
        best = np.empty(len(emb), dtype=np.int64)
        sim = np.empty(len(emb), dtype=np.float32)
        for s in range(0, len(emb), 8192):
            S = emb[s:s + 8192] @ self.centroids_.T
            best[s:s + 8192] = S.argmax(axis=1)
            sim[s:s + 8192] = S[np.arange(len(S)), best[s:s + 8192]]
        return best, sim

    def _assign(self, emb: np.ndarray) -> np.ndarray:
        if len(self.centroids_) == 0:
            return np.full(len(emb), OUTLIER, dtype=np.int64)
        best, sim = self._similarities(emb)
        return np.where(sim >= self.assign_threshold_, self.theme_ids_[best], OUTLIER).astype(np.int64)

    def _discover(self, emb: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        """Cluster (a sample of) ``emb``; returns the normalised centres of the clusters found."""
        if len(emb) < max(self.min_theme_size, 5):
            return []
        idx = np.arange(len(emb))
        if len(emb) > self.max_fit_size:
            idx = np.sort(rng.choice(len(emb), self.max_fit_size, replace=False))
        X = emb[idx]
        clusterer = clone(self.clusterer) if self.clusterer is not None else GraphClusterer(random_state=self.random_state)
        if isinstance(clusterer, HDBSCANClusterer) and clusterer.min_cluster_size is None:
            clusterer.set_params(min_cluster_size=self.min_theme_size)
        Z = clone(self.reducer).fit_transform(X) if self.reducer is not None else X
        labels = np.asarray(clusterer.fit_predict(Z))
        # a theme of min_theme_size items in the whole corpus has this many in the clustering sample
        smallest = max(2, int(np.ceil(self.min_theme_size * len(idx) / len(emb))))
        labels = self._join_fragments(X, labels, smallest)
        labels = self._gather_fragments(X, labels, smallest, rng)
        ids, sizes = np.unique(labels[labels != OUTLIER], return_counts=True)
        centres, kept = [], []
        for c, size in zip(ids.tolist(), sizes.tolist()):
            if size >= smallest:
                m = X[labels == c].mean(axis=0)
                centres.append(m / max(np.linalg.norm(m), 1e-12))
                kept.append(size)
        return self._merge_close(centres, kept)

    def _join_fragments(self, X: np.ndarray, labels: np.ndarray, smallest: int) -> np.ndarray:
        """Give near-identical clusters smaller than ``smallest`` one label, before the size filter drops them.

        Modularity at a high resolution cuts a blob of exact copies (a bot's or a template's message, a
        corpus of few distinct texts) into single items, each too small to be a theme: 200 copies of two
        messages gave no theme at all. Fragments whose centres are at least ``merge_threshold`` similar join
        the first such fragment (one pass; real data has few fragments, copies join one leader each).
        """
        ids, sizes = np.unique(labels[labels != OUTLIER], return_counts=True)
        small = ids[sizes < smallest]
        if len(small) < 2:
            return labels
        pos = np.full(int(ids.max()) + 1, -1, dtype=np.int64)
        pos[small] = np.arange(len(small))
        member = np.where(labels != OUTLIER, pos[np.maximum(labels, 0)], -1)
        inside = member >= 0
        centres = np.zeros((len(small), X.shape[1]), dtype=np.float64)
        np.add.at(centres, member[inside], X[inside])
        centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
        leaders: list[int] = []
        target = np.empty(len(small), dtype=np.int64)
        for i, c in enumerate(centres):
            if leaders:
                sims = centres[leaders] @ c
                j = int(np.argmax(sims))
                if sims[j] >= self.merge_threshold:
                    target[i] = leaders[j]
                    continue
            leaders.append(i)
            target[i] = i
        out = labels.copy()
        out[inside] = small[target[member[inside]]]
        return out

    def _gather_fragments(self, X: np.ndarray, labels: np.ndarray, smallest: int,
                          rng: np.random.Generator) -> np.ndarray:
        """Regroup the items of clusters smaller than ``smallest`` by average linkage, before the size filter.

        Modularity splits any blob, however even: 35 paraphrases of one login complaint came out as 23
        communities of 1-5 items, too small to be themes, so a backlog dominated by one request had no theme
        at all. Their items are clustered again, average linkage on cosine, and a group is kept together
        while the mean similarity of its pairs is at least ``assign_threshold`` (the similarity from which
        an item joins a theme); groups that reach ``smallest`` then count as themes. Large communities are
        left as they are (banking77 and hwu64 unchanged); at most 3,000 leftover items are regrouped.
        """
        from sklearn.cluster import AgglomerativeClustering

        ids, sizes = np.unique(labels[labels != OUTLIER], return_counts=True)
        left = np.flatnonzero(np.isin(labels, ids[sizes < smallest]))
        if len(left) < smallest:
            return labels
        if len(left) > 3000:  # average linkage holds a square matrix of the items
            left = np.sort(rng.choice(left, 3000, replace=False))
        groups = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                         distance_threshold=1.0 - self.assign_threshold).fit_predict(X[left])
        out = labels.copy()
        out[left] = int(labels.max()) + 1 + groups
        return out

    def _merge_close(self, centres: list[np.ndarray], sizes: list[int]) -> list[np.ndarray]:
        """Merge near-identical centres (HDBSCAN can split one request over two dense blobs)."""
        centres, sizes = list(centres), list(sizes)
        changed = True
        while changed and len(centres) > 1:
            changed = False
            C = np.vstack(centres)
            S = C @ C.T
            np.fill_diagonal(S, -1)
            i, j = np.unravel_index(np.argmax(S), S.shape)
            if S[i, j] >= self.merge_threshold:
                i, j = min(i, j), max(i, j)
                m = centres[i] * sizes[i] + centres[j] * sizes[j]
                centres[i], sizes[i] = m / np.linalg.norm(m), sizes[i] + sizes[j]
                del centres[j], sizes[j]
                changed = True
        return centres

    def _recentre(self, emb: np.ndarray, labels: np.ndarray) -> None:
        """Move each centre to the mean of its assigned members (one refinement step)."""
        for k, tid in enumerate(self.theme_ids_):
            members = emb[labels == tid]
            if len(members):
                m = members.mean(axis=0)
                self.centroids_[k] = m / max(np.linalg.norm(m), 1e-12)

    def _calibrate_threshold(self, emb: np.ndarray) -> float:
        if len(self.centroids_) == 0:
            return self.assign_threshold
        _, sim = self._similarities(emb)
        thr = self.assign_threshold
        if (sim < thr).mean() > self.max_outlier_share:
            thr = max(self.min_assign_threshold, float(np.quantile(sim, self.max_outlier_share)))
        return float(thr)

    # --- fitting ----------------------------------------------------------------------------------
    def fit(self, texts: Any = None, timestamps: Any = None, accounts: Any = None, *,
            embeddings: np.ndarray | None = None) -> ThemeModel:
        """Discover themes in ``texts`` (or precomputed ``embeddings``) and assign every item.

        Raises:
            InvalidInputError: empty corpus, mismatched lengths, unparseable timestamps.
        """
        with self._all_or_nothing():  # a refit that fails keeps the model fitted before
            return self._fit(texts, timestamps, accounts, embeddings)

    def _fit(self, texts: Any, timestamps: Any, accounts: Any, embeddings: np.ndarray | None) -> ThemeModel:
        self._validate_params()
        _refuse_shuffled_meta(texts, timestamps, accounts)
        # a refit embeds with the embedder it is given now (its vectors were compared with the last fit's
        # centres: set_params(embedder=a smaller model) then fit() was a ModelMismatchError)
        for attr in ("embedder_", "model_id_", "centroids_"):
            self.__dict__.pop(attr, None)
        texts, emb = self._embed(texts, embeddings)
        if len(emb) == 0:
            raise InvalidInputError("cannot fit themes on an empty corpus")
        self.model_id_ = getattr(getattr(self, "embedder_", None), "model_id", None) or getattr(self.embedder, "model_id", None)
        rng = np.random.default_rng(self.random_state)
        order = canonical_order(texts, emb)  # the same backlog in another order gives the same themes and ids
        centres = self._discover(emb[order], rng)
        self.centroids_ = np.vstack(centres).astype(np.float32) if centres else np.zeros((0, emb.shape[1]), np.float32)
        self.theme_ids_ = np.arange(len(centres), dtype=np.int64)
        self.next_theme_id_ = len(centres)
        self.assign_threshold_ = self.assign_threshold
        if len(centres):
            self.assign_threshold_ = self._calibrate_threshold(emb)
            first = self._assign(emb)
            self._recentre(emb[order], first[order])  # means summed in that order too: bit for bit the same
            first = self._merge_recentred(emb, order, first)
            # ids by size (0 = largest), ties by discovery order: readable and deterministic
            sizes = np.bincount(first[first >= 0], minlength=len(self.theme_ids_))
            self.centroids_ = self.centroids_[np.argsort(-sizes, kind="stable")]
            self.assign_threshold_ = self._calibrate_threshold(emb)
        self.texts_ = texts
        self.embeddings_ = emb
        self.timestamps_ = self._meta(timestamps, len(texts), "timestamps")
        self.accounts_ = self._meta(accounts, len(texts), "accounts")
        self.labels_ = self._assign(emb)
        self.custom_labels_: dict[int, str] = {}
        self._describe()
        return self

    def _merge_recentred(self, emb: np.ndarray, order: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Merge centres that moving to their members' means brought ``merge_threshold`` close, drop themes left
        with fewer than ``min_theme_size`` items, and assign again.

        Discovery merges close centres and drops small clusters, but a centre moves once items are assigned and
        items go to the centre nearest them: in 1,500 app reviews, five praise themes ("Love this app", "This
        is a great app", "Excellent app …") ended 0.90–0.93 apart, two of them above the 0.92 that merges, and
        a cluster whose items all lie nearer another centre was a theme of 0 items. A few rounds at most; each
        merges or drops at least one theme.
        """
        for _ in range(5):
            sizes = np.bincount(labels[labels >= 0], minlength=len(self.centroids_))
            big = sizes >= self.min_theme_size
            merged = self._merge_close(list(self.centroids_[big].astype(np.float64)), sizes[big].tolist())
            if len(merged) == len(self.centroids_):
                break
            self.centroids_ = np.vstack(merged).astype(np.float32) if merged else np.zeros((0, emb.shape[1]), np.float32)
            self.theme_ids_ = np.arange(len(merged), dtype=np.int64)
            self.next_theme_id_ = len(merged)
            labels = self._assign(emb)
            self._recentre(emb[order], labels[order])
        return labels

    def fit_transform(self, texts: Any = None, timestamps: Any = None, accounts: Any = None, *,
                      embeddings: np.ndarray | None = None) -> np.ndarray:
        """``fit`` and return ``labels_`` — identical to ``fit(...).transform(...)``."""
        return self.fit(texts, timestamps, accounts, embeddings=embeddings).labels_.copy()

    def transform(self, texts: Any = None, *, embeddings: np.ndarray | None = None) -> np.ndarray:
        """Theme id of each new item (or -1): the most similar theme centre if it is similar enough.
        Never creates themes; use :meth:`update` to discover new ones."""
        self._check_fitted()
        _, emb = self._embed(texts, embeddings)
        return self._assign(emb)

    def update(self, texts: Any = None, timestamps: Any = None, accounts: Any = None, *,
               embeddings: np.ndarray | None = None) -> np.ndarray:
        """Add new items: they join existing themes where they fit; new themes are discovered among the
        items that fit none (old outliers included). Existing theme ids never change. Returns the new
        items' labels; an update that fails or is interrupted leaves the model as it was."""
        self._check_fitted()
        with self._all_or_nothing():
            return self._update(texts, timestamps, accounts, embeddings)

    def _update(self, texts: Any, timestamps: Any, accounts: Any, embeddings: np.ndarray | None) -> np.ndarray:
        _refuse_shuffled_meta(texts, timestamps, accounts)
        texts, emb = self._embed(texts, embeddings)
        ts = self._meta(timestamps, len(texts), "timestamps")
        acc = self._meta(accounts, len(texts), "accounts")
        if (ts is None) != (self.timestamps_ is None):
            raise InvalidInputError("give timestamps to update() exactly when fit() had them")
        if acc is not None and self.accounts_ is None:  # they were dropped without a word
            raise InvalidInputError("this model was fitted without accounts, so update() cannot keep the new items' "
                                    "accounts; fit again with accounts= to count accounts per theme")
        self.texts_ = self.texts_ + texts
        self.embeddings_ = np.vstack([self.embeddings_, emb])
        if ts is not None:
            self.timestamps_ = np.concatenate([self.timestamps_, ts])
        if self.accounts_ is not None:
            self.accounts_ = np.concatenate([self.accounts_, acc if acc is not None else np.full(len(texts), None, dtype=object)])
        labels = np.concatenate([self.labels_, self._assign(emb)])
        pool = np.flatnonzero(labels == OUTLIER)
        rng = np.random.default_rng(self.random_state + len(self.theme_ids_))
        if len(pool):
            pool_order = pool[canonical_order([self.texts_[i] for i in pool], self.embeddings_[pool])]
            fresh = self._discover(self.embeddings_[pool_order], rng)
        else:
            fresh = []
        # an id once given is never given again: after merge_themes([0, 9]), a new theme took the id 9 that the
        # team's dashboards and notes knew as the merged-away theme
        next_id = max(getattr(self, "next_theme_id_", 0), int(self.theme_ids_.max()) + 1 if len(self.theme_ids_) else 0)
        kept = []
        for c in fresh:  # a "new" centre that is an existing theme in disguise is not a new theme
            if len(self.centroids_) == 0 or float((self.centroids_ @ c).max()) < self.merge_threshold:
                kept.append(c)
        if kept:
            self.centroids_ = np.vstack([self.centroids_, np.vstack(kept).astype(np.float32)])
            self.theme_ids_ = np.concatenate([self.theme_ids_, np.arange(next_id, next_id + len(kept))])
            self.next_theme_id_ = next_id + len(kept)
            new_labels = self._assign(self.embeddings_[pool])
            # only outliers may move, and only into the new themes: existing memberships are stable
            labels[pool] = np.where(new_labels >= next_id, new_labels, OUTLIER)
        self.labels_ = labels
        self._describe()
        return labels[len(labels) - len(texts):].copy()  # labels[-0:] was every item's label

    # --- editing ----------------------------------------------------------------------------------
    @staticmethod
    def _theme_id(value: Any) -> int:
        """A theme id as given: a whole number (int("x") was a bare ValueError, and 0.7 became theme 0)."""
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer, str)):
            raise InvalidInputError(f"theme ids are whole numbers, got {quoted(value)} ({type(value).__name__})")
        try:
            return int(value)
        except ValueError:
            raise InvalidInputError(f"theme ids are whole numbers, got {quoted(value)}") from None

    def merge_themes(self, ids: Sequence[int], label: str | None = None) -> int:
        """Merge themes into the first id given; returns the id kept."""
        self._check_fitted()
        if label is not None:  # checked as rename_theme checks it, before the themes change: 3 or "" was kept
            label = _checked_label(label)
        ids = [self._theme_id(i) for i in _one_per_row(ids, "merge_themes(ids)")]  # "01" merged themes 0 and 1
        unknown = [i for i in ids if i not in set(self.theme_ids_.tolist())]
        if unknown or len(ids) < 2:
            raise InvalidInputError(f"merge_themes needs at least 2 existing theme ids; unknown: {unknown}")
        if len(set(ids)) != len(ids):  # [3, 3] deleted theme 3's centre while its items kept the id
            raise InvalidInputError(f"merge_themes got a theme id twice: {ids}")
        keep = ids[0]
        pos = [int(np.flatnonzero(self.theme_ids_ == i)[0]) for i in ids]
        sizes = np.array([max(1, int((self.labels_ == i).sum())) for i in ids], dtype=np.float32)
        m = (self.centroids_[pos] * sizes[:, None]).sum(axis=0)
        centroids = self.centroids_.copy()  # not written in place: a failure below puts the model back
        centroids[pos[0]] = m / max(np.linalg.norm(m), 1e-12)
        drop = pos[1:]
        with self._all_or_nothing():
            self.centroids_ = np.delete(centroids, drop, axis=0)
            self.theme_ids_ = np.delete(self.theme_ids_, drop)
            self.labels_ = np.where(np.isin(self.labels_, ids), keep, self.labels_)
            for i in ids[1:]:
                self.custom_labels_.pop(i, None)
            if label is not None:
                self.custom_labels_[keep] = label
            self._describe()
        return keep

    def rename_theme(self, theme_id: int, label: str) -> None:
        """Give a theme a human label; it survives :meth:`update`."""
        self._check_fitted()
        if self._theme_id(theme_id) not in set(self.theme_ids_.tolist()):
            raise InvalidInputError(f"unknown theme id {theme_id}; known: {self.theme_ids_.tolist()}")
        label = _checked_label(label)
        with self._all_or_nothing():
            self.custom_labels_[int(theme_id)] = label
            self._describe()

    # --- description ------------------------------------------------------------------------------
    def _describe(self) -> None:
        labeller = self.labeller if self.labeller is not None else CTFIDFLabeller()
        n = len(self.labels_)
        docs = {int(t): [self.texts_[i] for i in np.flatnonzero(self.labels_ == t)] for t in self.theme_ids_}
        kw = labeller.keywords(docs, top_n=self.n_keywords) if docs else {}
        rows = []
        for k, tid in enumerate(self.theme_ids_.tolist()):
            members = np.flatnonzero(self.labels_ == tid)
            # by text, so that members as similar as each other (texts that differ in spacing only) give the same
            # title and examples in any input order
            members = members[np.argsort(np.array([self.texts_[i] for i in members], dtype=object), kind="stable")]
            reps: list[str] = []
            if len(members):
                sims = self.embeddings_[members] @ self.centroids_[k]
                for i in members[np.argsort(-sims, kind="stable")]:
                    if self.texts_[i] and self.texts_[i] not in reps:
                        reps.append(self.texts_[i])
                    if len(reps) == self.n_representatives:
                        break
            words = kw.get(tid, [])
            title = ""
            if len(members):
                title = central_title([self.texts_[i] for i in members], self.embeddings_[members] @ self.centroids_[k],
                                      keywords=words)
            title = title or (", ".join(words[:3]) if words else f"theme {tid}")
            row = {"id": tid, "label": self.custom_labels_.get(tid) or title, "title": title,
                   "keywords": words, "size": len(members), "share": len(members) / n if n else 0.0,
                   "representatives": reps}
            if self.timestamps_ is not None:
                ts = pd.to_datetime(self.timestamps_[members], utc=True)
                row["first_seen"], row["last_seen"] = (ts.min(), ts.max()) if len(members) else (pd.NaT, pd.NaT)
            if self.accounts_ is not None:
                # a blank account (an empty cell read as text) is no account, as in theme_scores
                row["unique_accounts"] = len({a for a in self.accounts_[members]
                                              if a is not None and a == a and not (isinstance(a, str) and not a.strip())})
            rows.append(row)
        self.themes_ = pd.DataFrame(rows).sort_values(["size", "id"], ascending=[False, True], kind="stable").reset_index(drop=True) \
            if rows else pd.DataFrame(columns=["id", "label", "title", "keywords", "size", "share", "representatives"])
        self.outlier_share_ = float((self.labels_ == OUTLIER).mean()) if n else 0.0

    def assignments(self, ids: Sequence[Any] | None = None) -> pd.DataFrame:
        """Item → theme table: ``id`` (or position), ``theme``, ``theme_label``, ``similarity``."""
        self._check_fitted()
        best, sim = self._similarities(self.embeddings_) if len(self.centroids_) else (None, np.zeros(len(self.labels_)))
        names = dict(zip(self.themes_["id"], self.themes_["label"])) if len(self.themes_) else {}
        if ids is not None:
            ids = _one_per_row(ids, "ids")  # ids="abc..." named the items by letter; a set in no order
            if len(ids) != len(self.labels_):  # was pandas' "All arrays must be of the same length"
                raise InvalidInputError(f"{len(ids)} ids for the {len(self.labels_)} items of this model")
        return pd.DataFrame({
            "id": ids if ids is not None else np.arange(len(self.labels_)),
            "theme": self.labels_, "theme_label": [names.get(int(t), "outlier") for t in self.labels_],
            "similarity": np.round(sim, 4),
        })

    def trends(self, freq: str = "W", *, recent_periods: int = 2, min_recent: int = 5) -> pd.DataFrame:
        """Counts per theme per period with growth and an ``emerging`` flag.

        ``growth`` compares a period with the mean of the 4 before it: (count − mean) / max(mean, 1).
        A theme is ``emerging`` when its mean over the last ``recent_periods`` periods is at least twice its
        earlier mean and above that mean plus two standard deviations, with ≥ ``min_recent`` items; with no
        period before the recent ones (too short a span for ``freq``), no theme is emerging. The
        last period, usually cut short by the data, is judged by its rate (``partial`` marks it) and left
        out of the test when less than half of it is covered.
        """
        self._check_fitted()
        if self.timestamps_ is None:
            raise InvalidInputError("trends need timestamps: pass timestamps= to fit()")
        for name, value, low in (("recent_periods", recent_periods, 1), ("min_recent", min_recent, 0)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise InvalidInputError(f"{name} must be an integer >= {low}, got {value!r}")
        ts = pd.to_datetime(pd.Series(self.timestamps_), utc=True)
        if not ts.notna().any():
            raise InvalidInputError("trends need timestamps, but none of this model's items has a date")
        ok = (self.labels_ != OUTLIER) & ts.notna().to_numpy()
        freq = check_freq(freq)  # the CLI's check: a period pandas can cut time into (D, W, M, Q, Y…)
        periods = ts.dt.tz_convert(None).dt.to_period(freq)
        all_periods = bounded_period_range(periods[ts.notna()].min(), periods[ts.notna()].max(), freq)
        counts = (pd.crosstab(pd.Series(self.labels_[ok], name="theme"), periods[ok].to_numpy())
                  .reindex(columns=all_periods, fill_value=0).reindex(self.theme_ids_, fill_value=0))
        names = dict(zip(self.themes_["id"], self.themes_["label"]))
        # The last period is usually cut short by the data: judge it by its rate, or skip it if under half full.
        last = all_periods[-1]
        # no "+ 1 ns" to the period's end: a far-future period (year 2270, microsecond timestamps) overflowed
        covered = (_data_end(ts) - last.start_time) / (last.end_time - last.start_time)
        covered = float(min(max(covered, 0.0), 1.0))
        rows = []
        for tid, series in counts.iterrows():
            values = series.to_numpy(dtype=float)
            judged = values.copy()
            if covered < 0.5:
                judged = judged[:-1]
            elif covered < 1.0:
                judged[-1] = judged[-1] / covered
            recent, history = judged[-recent_periods:], judged[:-recent_periods]
            # min_recent counts items, not the rate a partial last period is judged by: 3 items in the first
            # 55% of a week were 5.5 and made a theme emerging
            recent_items = values[:len(judged)][-recent_periods:].sum()
            hist_mean = history.mean() if len(history) else 0.0
            hist_std = history.std() if len(history) else 0.0
            # no earlier period, nothing to have grown from: a first week (or two months at freq="M") of items
            # flagged every theme of five items emerging
            emerging = bool(len(history) and recent_items >= min_recent and recent.mean() >= 2 * hist_mean
                            and recent.mean() > hist_mean + 2 * hist_std)
            for k, (period, count) in enumerate(zip(all_periods, values)):
                prev = values[max(0, k - 4):k]
                base = prev.mean() if len(prev) else 0.0
                rows.append({"theme": int(tid), "label": names.get(int(tid), ""), "period": period.start_time,
                             "count": int(count), "growth": (count - base) / max(base, 1.0), "emerging": emerging,
                             "partial": bool(k == len(all_periods) - 1 and covered < 1.0)})
        return pd.DataFrame(rows, columns=["theme", "label", "period", "count", "growth", "emerging", "partial"])

    def emerging_themes(self, freq: str = "W", **kwargs: Any) -> list[int]:
        """Ids of the themes flagged ``emerging`` by :meth:`trends`."""
        t = self.trends(freq, **kwargs)
        return sorted(t.loc[t["emerging"], "theme"].unique().tolist())

    # --- persistence ------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Save as plain arrays + JSON (no pickle): centres, ids, labels, item texts and vectors."""
        self._check_fitted()
        folder = prepare_folder(path)
        with saving(folder) as staged:
            self._write_folder(staged)
        return folder

    def _write_folder(self, path: Path) -> None:
        """Write the files of a saved theme model into the empty folder ``path`` (see :meth:`save`)."""
        arrays: dict[str, Any] = {"centroids": self.centroids_, "theme_ids": self.theme_ids_, "labels": self.labels_, "embeddings": self.embeddings_}
        if self.timestamps_ is not None:
            # in the unit pandas holds them in: a cast to nanoseconds wrapped dates outside 1677-2262 around
            # silently (1500-01-01 came back as 2084-07-20)
            arrays["timestamps"] = pd.to_datetime(pd.Series(self.timestamps_), utc=True).dt.tz_convert(None).to_numpy()
        np.savez(path / "themes.npz", **arrays)
        # saved artefacts hold redacted text only, whatever the caller fitted on
        texts = [redact_pii(t) if isinstance(t, str) else t for t in self.texts_]
        items = {"texts": texts, "accounts": None if self.accounts_ is None else [_json_account(a) for a in self.accounts_],
                 "custom_labels": {str(k): v for k, v in self.custom_labels_.items()}}
        (path / "items.json").write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
        params = self.get_params(deep=False)
        custom = [k for k in self._PARTS if k != "embedder" and params[k] is not None]
        params = {k: v for k, v in params.items() if k not in self._PARTS}
        write_config(path, "feedback_nlp.ThemeModel", ("themes.npz", "items.json"), params=params, custom_parts=custom,
                     assign_threshold_=self.assign_threshold_, next_theme_id_=int(self.next_theme_id_),
                     model_id=self.model_id_)

    @classmethod
    def load(cls, path: str | os.PathLike, *, embedder: BaseEmbedder | None = None) -> ThemeModel:
        """Load a saved ThemeModel (custom parts are not saved: pass them again if you used any)."""
        path = Path(path).expanduser()

        def read(config: dict[str, Any]) -> tuple[Any, Any]:  # the config's checks come before the big files
            check_embedder(config["model_id"], embedder, "the theme model")
            return read_npz(path / "themes.npz"), json.loads((path / "items.json").read_text(encoding="utf-8"))

        with loading(path):
            # config, vectors and texts of one save, also while another process saves the folder
            config, (data, items) = read_saved(path, "feedback_nlp.ThemeModel", read)
            unknown = sorted(set(config["params"]) - set(cls._parameter_constraints))
            if unknown:
                raise ModelMismatchError(f"{path} was saved with parameters this version does not know: {unknown}")
            tm = cls(embedder, **config["params"])
            tm._validate_params()
            tm.centroids_, tm.theme_ids_ = data["centroids"], data["theme_ids"]
            tm.labels_, tm.embeddings_ = data["labels"], data["embeddings"]
            tm.timestamps_ = pd.to_datetime(data["timestamps"], utc=True).to_numpy() if "timestamps" in data else None
            tm.texts_ = items["texts"]
            tm.accounts_ = None if items["accounts"] is None else np.array(items["accounts"], dtype=object)
            tm.custom_labels_ = {int(k): v for k, v in items["custom_labels"].items()}
            tm.assign_threshold_ = float(config["assign_threshold_"])
            # folders saved before the counter was kept: the ids in use are all that is known
            tm.next_theme_id_ = config.get("next_theme_id_", int(tm.theme_ids_.max()) + 1 if len(tm.theme_ids_) else 0)
            tm.model_id_ = config["model_id"]
            n, dim = tm.embeddings_.shape
            if (tm.centroids_.ndim != 2 or tm.centroids_.shape[1] != dim or len(tm.theme_ids_) != len(tm.centroids_)
                    or len(tm.labels_) != n or len(tm.texts_) != n):
                raise ValueError(f"arrays of inconsistent shapes: centroids {tm.centroids_.shape}, theme ids "
                                 f"{tm.theme_ids_.shape}, labels {tm.labels_.shape}, embeddings {(n, dim)}, "
                                 f"{len(tm.texts_)} texts")
            _check_saved_state(tm)
            if embedder is not None:
                tm.embedder_ = embedder
            tm._describe()
        return tm
