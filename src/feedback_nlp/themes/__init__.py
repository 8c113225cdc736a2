"""Themes: cluster feedback into named, stable themes and track them over time.

The pipeline is made of swappable parts, each behind a tiny base class:
embedder (:class:`~feedback_nlp.embedding.BaseEmbedder`) → reducer (:class:`BaseReducer`: none by default,
:class:`PCAReducer`, :class:`UMAPReducer` with the ``umap`` extra) → clusterer (:class:`BaseClusterer`:
:class:`GraphClusterer` by default, :class:`HDBSCANClusterer`) → labeller (:class:`BaseLabeller`,
class-based TF-IDF keywords) — plus a readable title per theme, its most central short member, cleaned.

Unlike BERTopic, there is one assignment path: clustering only *discovers* themes (their centres); every
item's theme — at fit, ``transform`` or ``update`` — is the most similar centre if that similarity reaches
``assign_threshold_``, else outlier (-1). So ``fit(X).transform(X)`` equals ``fit_transform(X)`` by
construction, ``transform`` never invents ids, and ``max_outlier_share`` bounds the unassigned share.

Example:
    >>> tm = ThemeModel(min_theme_size=15).fit(texts, timestamps=dates)    # doctest: +SKIP
    >>> tm.themes_[["id", "title", "keywords", "size"]].head()             # doctest: +SKIP
"""

from ._labels import BaseLabeller, CTFIDFLabeller, central_title, clean_title
from ._model import OUTLIER, ThemeModel
from ._parts import (
    BaseClusterer,
    BaseReducer,
    GraphClusterer,
    HDBSCANClusterer,
    PCAReducer,
    UMAPReducer,
    knn_graph,
)

__all__ = [
    "OUTLIER",
    "BaseClusterer",
    "BaseLabeller",
    "BaseReducer",
    "CTFIDFLabeller",
    "GraphClusterer",
    "HDBSCANClusterer",
    "PCAReducer",
    "ThemeModel",
    "UMAPReducer",
    "central_title",
    "clean_title",
    "knn_graph",
]
