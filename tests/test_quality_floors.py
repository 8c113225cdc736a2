"""Quality floors on the public data sets (skipped when ../shared/datasets is absent).

Deterministic (fixed seeds, exact fp32 vectors, no timing): they fail when a change costs theme or
duplicate quality that the benchmarks measured (benchmarks/themes_quality.py, duplicates_quality.py).
"""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import normalized_mutual_info_score

from feedback_nlp import Embedder
from feedback_nlp.dedupe import Deduper
from feedback_nlp.themes import ThemeModel

pytestmark = pytest.mark.slow


def test_banking77_themes_floor(shared_data, embedder):
    test = pd.read_csv(shared_data / "banking77" / "test.csv")
    tm = ThemeModel(embedder).fit(test["text"])  # the number of themes is not given
    # measured: NMI 0.812, 1.3% outliers, 67 themes (BERTopic's default: 0.802 with 9.8% outliers)
    assert normalized_mutual_info_score(test["label"], tm.labels_) >= 0.80
    assert tm.outlier_share_ <= 0.10
    assert 40 <= len(tm.themes_) <= 160


def _bugdup_queries(shared_data):
    g = pd.read_csv(shared_data / "bugdup_hadoop" / "groups.csv")
    groups = g["group_id"].to_numpy()
    sizes = pd.Series(groups).map(pd.Series(groups).value_counts()).to_numpy()
    q = np.flatnonzero(sizes >= 2)
    relevant = [set(np.flatnonzero(groups == groups[i]).tolist()) - {i} for i in q]
    return g["text"].tolist(), q, relevant


def _recall(order_rows, relevant, k):
    return float(np.mean([bool(rel & set(rows[:k])) for rows, rel in zip(order_rows, relevant)]))


def _deduper_recall(texts, q, relevant, X):
    d = Deduper().fit(texts, ids=list(range(len(texts))), embeddings=X)
    res = d.find([texts[i] for i in q], k=10, embeddings=X[q], exclude_ids=q.tolist())
    rows = [res.loc[res["query"] == i, "id"].tolist() for i in range(len(q))]
    return {k: _recall(rows, relevant, k) for k in (1, 5, 10)}


def _cosine_recall(q, relevant, X):
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    S = X[q] @ X.T
    S[np.arange(len(q)), q] = -np.inf
    rows = np.argsort(-S, axis=1, kind="stable")[:, :10].tolist()
    return {k: _recall(rows, relevant, k) for k in (1, 5, 10)}


def test_hadoop_duplicates_floor_and_never_below_plain_cosine(shared_data, embedder):
    texts, q, relevant = _bugdup_queries(shared_data)
    X = embedder.encode(texts)
    ours, plain = _deduper_recall(texts, q, relevant, X), _cosine_recall(q, relevant, X)
    # measured (long texts truncated, the default): recall@5 0.752 (plain cosine 0.651), @1 0.504 (0.426),
    # @10 0.814 (0.752); chunked: 0.721 (0.612). The goal is 0.75, its floor plain cosine's 0.651
    assert ours[5] >= 0.70
    assert all(ours[k] >= plain[k] for k in (1, 5, 10)), (ours, plain)


def test_hadoop_int8_default_vectors_beat_fp32_cosine(shared_data, embedder):
    """auto picks int8 on VNNI CPUs: Deduper's defaults over int8 vectors must not lose to fp32 cosine."""
    texts, q, relevant = _bugdup_queries(shared_data)
    int8 = Embedder(cache=False, backend="torch-int8").encode(texts)
    ours, plain = _deduper_recall(texts, q, relevant, int8), _cosine_recall(q, relevant, embedder.encode(texts))
    assert all(ours[k] >= plain[k] for k in (1, 5, 10)), (ours, plain)
