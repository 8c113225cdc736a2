"""The swappable parts of the theme pipeline: reducers and clusterers, each behind a tiny base class.

Reducers map embeddings to the space the clusterer works in; clusterers return a label per row (-1 for
noise). The parts are scikit-learn estimators (``get_params``/``clone``), so a ThemeModel holding one clones.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod

import numpy as np
from sklearn.base import BaseEstimator

from .._optional import require
from .._params import Interval, Options, ParamsMixin

__all__ = ["BaseClusterer", "BaseReducer", "GraphClusterer", "HDBSCANClusterer", "PCAReducer", "UMAPReducer",
           "knn_graph"]

_BLOCK = 2048  # at most this many query rows per similarity block


def _unit(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


class BaseReducer(ParamsMixin, BaseEstimator, ABC):
    """Reduces embeddings before clustering: ``fit_transform(X)`` then ``transform(X)``."""

    @abstractmethod
    def fit_transform(self, X: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def transform(self, X: np.ndarray) -> np.ndarray: ...


class PCAReducer(BaseReducer):
    """PCA to ``n_components`` dimensions (deterministic with ``random_state``), then re-normalised.

    >>> PCAReducer(n_components=2).fit_transform(np.eye(4, dtype=np.float32)).shape
    (4, 2)
    """

    _parameter_constraints = {"n_components": [Interval(int, 1, None)], "random_state": [int]}

    def __init__(self, n_components: int = 16, random_state: int = 0) -> None:
        self.n_components = n_components
        self.random_state = random_state

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        from sklearn.decomposition import PCA

        self._validate_params()
        k = max(1, min(self.n_components, X.shape[1], len(X) - 1))
        self.pca_ = PCA(n_components=k, svd_solver="randomized" if len(X) > 5000 else "full",
                        random_state=self.random_state).fit(X)
        return self.transform(X)

    def transform(self, X: np.ndarray) -> np.ndarray:
        return _unit(self.pca_.transform(X))


class UMAPReducer(BaseReducer):
    """UMAP (the ``feedback-nlp[umap]`` extra), as BERTopic uses by default."""

    _parameter_constraints = {"n_components": [Interval(int, 1, None)], "n_neighbors": [Interval(int, 2, None)],
                              "random_state": [int]}

    def __init__(self, n_components: int = 5, n_neighbors: int = 15, random_state: int = 0) -> None:
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.random_state = random_state

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        self._validate_params()
        umap = require("umap", "umap", "UMAPReducer")
        self.umap_ = umap.UMAP(n_components=self.n_components, n_neighbors=self.n_neighbors, metric="cosine",
                               min_dist=0.0, random_state=self.random_state)
        return self.umap_.fit_transform(X)

    def transform(self, X: np.ndarray) -> np.ndarray:
        return self.umap_.transform(X)


class BaseClusterer(ParamsMixin, BaseEstimator, ABC):
    """Finds clusters: ``fit_predict(X)`` returns a label per row, -1 for noise."""

    @abstractmethod
    def fit_predict(self, X: np.ndarray) -> np.ndarray: ...


class HDBSCANClusterer(BaseClusterer):
    """HDBSCAN (the ``hdbscan`` package); ``min_cluster_size`` defaults to the model's ``min_theme_size``."""

    _parameter_constraints = {"min_cluster_size": [Interval(int, 2, None), None],
                              "min_samples": [Interval(int, 1, None), None],
                              "cluster_selection_method": [Options({"eom", "leaf"})],
                              "cluster_selection_epsilon": [Interval(float, 0, None)]}

    def __init__(self, min_cluster_size: int | None = None, min_samples: int | None = None,
                 cluster_selection_method: str = "eom", cluster_selection_epsilon: float = 0.0) -> None:
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.cluster_selection_method = cluster_selection_method
        self.cluster_selection_epsilon = cluster_selection_epsilon

    def fit_predict(self, X: np.ndarray) -> np.ndarray:
        import hdbscan

        self._validate_params()
        size = self.min_cluster_size or 10
        model = hdbscan.HDBSCAN(min_cluster_size=size, min_samples=self.min_samples or max(2, size // 3),
                                cluster_selection_method=self.cluster_selection_method,
                                cluster_selection_epsilon=self.cluster_selection_epsilon, core_dist_n_jobs=1)
        return model.fit_predict(X.astype(np.float64))


def knn_graph(X: np.ndarray, n_neighbors: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undirected k-nearest-neighbour graph by cosine similarity, exact and blocked (memory ~2**23 scores).

    Returns ``(a, b, weight)`` with ``a < b``: each edge once, its weight the sum of the similarities of the
    directed edges it came from (a mutual neighbour counts twice), negative similarities clipped to 0.

    >>> a, b, w = knn_graph(np.eye(3, dtype=np.float32) + 0.1, 1)
    >>> len(a) <= 3 and bool((a < b).all())
    True
    """
    X = _unit(X)
    n = len(X)
    k = min(n_neighbors, n - 1)
    rows, cols, sims = [], [], []
    # rows per block: the scores (negated in place) and argpartition's int64 indices stay ~50 MB whatever n
    block = max(64, min(_BLOCK, 2**22 // max(n, 1)))
    for s in range(0, n, block):
        S = X[s:s + block] @ X.T
        S[np.arange(len(S)), np.arange(s, s + len(S))] = -np.inf  # never one's own neighbour
        np.negative(S, out=S)  # the k smallest of -S are the k nearest, with no second copy of the block
        idx = np.argpartition(S, k - 1, axis=1)[:, :k]
        rows.append(np.repeat(np.arange(s, s + len(S)), k))
        cols.append(idx.ravel())
        sims.append(-np.take_along_axis(S, idx, axis=1).ravel())
    r, c, w = np.concatenate(rows), np.concatenate(cols), np.clip(np.concatenate(sims), 0, None)
    a, b = np.minimum(r, c).astype(np.int64), np.maximum(r, c).astype(np.int64)
    key, inv = np.unique(a * n + b, return_inverse=True)
    return key // n, key % n, np.bincount(inv, weights=w.astype(np.float64))


class GraphClusterer(BaseClusterer):
    """Leiden communities (igraph) of the cosine k-nearest-neighbour graph: the default clusterer.

    Measured on banking77 and hwu64 (``benchmarks/themes_quality.py``): the kNN graph keeps the shape of
    each intent, which PCA + HDBSCAN flattened (NMI 0.72 → 0.82 on banking77), and every item belongs to a
    community, so the outlier share is set by the assignment policy, not by density noise. ``resolution``
    above 1 counters modularity's resolution limit, which merged related intents at 1.0; it also splits
    tight blobs of near-copies, which ThemeModel merges back by centre similarity (``merge_threshold``).

    >>> X = np.vstack([np.eye(4)[i] + 0.05 * np.random.default_rng(i).random((20, 4)) for i in range(4)])
    >>> len(set(GraphClusterer(n_neighbors=5, resolution=0.5).fit_predict(X)))
    4
    """

    _parameter_constraints = {"n_neighbors": [Interval(int, 2, None)],
                              "resolution": [Interval(float, 0, None, closed="neither")],
                              "random_state": [int]}

    def __init__(self, n_neighbors: int = 10, resolution: float = 4.0, random_state: int = 0) -> None:
        self.n_neighbors = n_neighbors
        self.resolution = resolution
        self.random_state = random_state

    def fit_predict(self, X: np.ndarray) -> np.ndarray:
        self._validate_params()
        import igraph as ig

        if len(X) < 3:
            return np.zeros(len(X), dtype=np.int64)
        a, b, w = knn_graph(X, self.n_neighbors)
        graph = ig.Graph(n=len(X), edges=np.column_stack([a, b]).tolist())
        # igraph draws from a module-level generator: seed our own and put the default back afterwards
        # int(): random.Random refuses numpy integers (random_state=np.int64(3) was a TypeError mid-fit)
        ig.set_random_number_generator(random.Random(int(self.random_state)))
        try:
            part = graph.community_leiden(objective_function="modularity", weights=w.tolist(),
                                          resolution=float(self.resolution), n_iterations=-1)
        finally:
            ig.set_random_number_generator(random)
        return _by_first_member(np.asarray(part.membership, dtype=np.int64))


def _by_first_member(labels: np.ndarray) -> np.ndarray:
    """Renumber labels by the position of their first member, so ids do not depend on the solver's order."""
    _, first, inv = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inv]
