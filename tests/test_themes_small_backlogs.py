"""Small backlogs (twelfth round): modularity splits any blob, so a backlog of one request had no theme."""

from __future__ import annotations

import numpy as np

from feedback_nlp.themes import ThemeModel


def _blob(n: int, spread: float, seed: int, dim: int = 64) -> np.ndarray:
    """``n`` unit vectors around one direction; pairwise cosine about 1 / (1 + spread**2 * dim)."""
    rng = np.random.default_rng(seed)
    centre = rng.normal(size=dim)
    centre /= np.linalg.norm(centre)
    X = centre + rng.normal(scale=spread, size=(n, dim))
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


def test_an_even_blob_of_one_request_is_one_theme() -> None:
    """Was: 35 items at pairwise cosine ~0.6 came out of Leiden as fragments of 1-5 items, all below
    min_theme_size, so every item was an outlier. Now the fragments are regrouped by average linkage."""
    X = _blob(35, 0.11, 0)
    S = X @ X.T
    assert 0.5 < (S.sum() - len(X)) / (len(X) * (len(X) - 1)) < 0.7
    labels = ThemeModel().fit(embeddings=X).labels_
    assert (labels == 0).all()


def test_three_small_requests_are_three_themes() -> None:
    X = np.vstack([_blob(15, 0.11, seed) for seed in (1, 2, 3)])
    labels = ThemeModel().fit(embeddings=X).labels_
    assert [len(set(labels[i:i + 15].tolist())) for i in (0, 15, 30)] == [1, 1, 1]
    assert len(set(labels.tolist())) == 3 and (labels >= 0).all()


def test_unrelated_items_do_not_form_a_theme() -> None:
    """The regrouping keeps a group only while its pairs are on average ``assign_threshold`` similar:
    40 unrelated items (pairwise cosine ~0) stay outliers."""
    X = np.random.default_rng(4).normal(size=(40, 64)).astype(np.float32)
    tm = ThemeModel().fit(embeddings=X)
    assert (tm.labels_ == -1).all() and len(tm.themes_) == 0


def test_a_corpus_of_min_theme_size_items_can_be_a_theme() -> None:
    """Was: fewer than 2 x min_theme_size items never clustered, so 15 items of one request had no theme."""
    labels = ThemeModel(min_theme_size=10).fit(embeddings=_blob(15, 0.11, 5)).labels_
    assert (labels == 0).all()
    assert (ThemeModel(min_theme_size=10).fit(embeddings=_blob(9, 0.11, 5)).labels_ == -1).all()
