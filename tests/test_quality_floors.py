"""Quality floors on the public data sets (skipped when ../shared/datasets is absent).

Deterministic (fixed seeds, exact fp32 vectors, no timing): they fail when a change costs theme or
duplicate quality that the benchmarks measured (benchmarks/themes_quality.py, duplicates_quality.py).
"""

import re

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import normalized_mutual_info_score

from feedback_nlp import Embedder
from feedback_nlp.backends import cpu_has_int8_dot
from feedback_nlp.dedupe import Deduper
from feedback_nlp.themes import ThemeModel

pytestmark = pytest.mark.slow


def _readability(y, tm) -> float:
    """Share of themes whose title + top-3 keywords hold a word of the dominant intent's name (the first
    5 letters of words of 3+ letters), as benchmarks/themes_quality.py measures it."""
    def stems(text):
        return {w[:5] for w in re.findall(r"[a-z]+", text.lower()) if len(w) >= 3}
    hits = []
    for tid, title, words in zip(tm.themes_["id"], tm.themes_["title"], tm.themes_["keywords"]):
        dominant = pd.Series(np.asarray(y)[tm.labels_ == tid]).value_counts().index[0]
        hits.append(bool(stems(dominant.replace("_", " ")) & stems(title + " " + " ".join(words[:3]))))
    return float(np.mean(hits))


def test_banking77_themes_floor(shared_data, embedder):
    test = pd.read_csv(shared_data / "banking77" / "test.csv")
    tm = ThemeModel(embedder).fit(test["text"])  # the number of themes is not given
    # measured: NMI 0.812, 1.3% outliers, 67 themes (BERTopic's default: 0.802 with 9.8% outliers)
    assert normalized_mutual_info_score(test["label"], tm.labels_) >= 0.80
    assert tm.outlier_share_ <= 0.10
    assert 40 <= len(tm.themes_) <= 160
    # measured: 0.970 (65 of 67 themes); BERTopic's c-TF-IDF names 0.726 on its clusters, 0.836 on ours
    assert _readability(test["label"], tm) >= 0.95


def test_hwu64_themes_floor_and_readable_names(shared_data, embedder):
    test = pd.read_csv(shared_data / "hwu64" / "test.csv")
    tm = ThemeModel(embedder).fit(test["text"])
    # measured: NMI 0.804, 6.1% outliers, 40 themes
    assert normalized_mutual_info_score(test["label"], tm.labels_) >= 0.80
    assert tm.outlier_share_ <= 0.10
    # measured: 0.675 (27 of 40). BERTopic's c-TF-IDF names reach 0.600 on these same clusters and
    # 0.704-0.710 on its own coarser ones (27-31 topics); the gap to the latter is not closed
    assert _readability(test["label"], tm) >= 0.65


def _bugdup_queries(shared_data):
    g = pd.read_csv(shared_data / "bugdup_hadoop" / "groups.csv")
    groups = g["group_id"].to_numpy()
    sizes = pd.Series(groups).map(pd.Series(groups).value_counts()).to_numpy()
    q = np.flatnonzero(sizes >= 2)
    relevant = [set(np.flatnonzero(groups == groups[i]).tolist()) - {i} for i in q]
    return g["text"].tolist(), q, relevant


def _recall(order_rows, relevant, k):
    return float(np.mean([bool(rel & set(rows[:k])) for rows, rel in zip(order_rows, relevant)]))


def _group_queries(groups):
    """Every member of a group of two or more queries the pool; its group-mates are the relevant items."""
    groups = np.asarray(groups)
    sizes = pd.Series(groups).map(pd.Series(groups).value_counts()).to_numpy()
    q = np.flatnonzero(sizes >= 2)
    return q, [set(np.flatnonzero(groups == groups[i]).tolist()) - {i} for i in q]


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
    # measured (fp32, long texts truncated, the default): recall@5 0.791 (plain cosine 0.659), @1 0.512
    # (0.426), @10 0.837 (0.752). The goal is 0.75
    assert ours[5] >= 0.75
    assert all(ours[k] >= plain[k] for k in (1, 5, 10)), (ours, plain)


def test_hadoop_int8_default_vectors_beat_fp32_cosine(shared_data, embedder):
    """auto picks int8 on VNNI CPUs: Deduper's defaults over int8 vectors must not lose to fp32 cosine."""
    if not cpu_has_int8_dot():
        pytest.skip("no VNNI: auto never picks torch-int8 here, and loading it warns that it misses the gates")
    texts, q, relevant = _bugdup_queries(shared_data)
    int8 = Embedder(cache=False, backend="torch-int8").encode(texts)
    ours, plain = _deduper_recall(texts, q, relevant, int8), _cosine_recall(q, relevant, embedder.encode(texts))
    assert all(ours[k] >= plain[k] for k in (1, 5, 10)), (ours, plain)


@pytest.mark.parametrize("backend", ["torch", "torch-int8"])
def test_sample_planted_groups_deduper_never_below_fp32_cosine(sample_raw, embedder, backend):
    """The bundled sample (always present): each planted duplicate group's members query all 3,000 items."""
    texts = sample_raw["text"].tolist()
    groups = np.where(sample_raw["dup_group"] != "", sample_raw["dup_group"], sample_raw["id"])
    q, relevant = _group_queries(groups)
    fp32 = embedder.encode(texts)
    X = fp32 if backend == "torch" else Embedder(cache=False, backend=backend).encode(texts)
    ours, plain = _deduper_recall(texts, q, relevant, X), _cosine_recall(q, relevant, fp32)
    # measured: fp32 @1 0.197 / @5 0.520 / @10 0.763, int8 0.208 / 0.514 / 0.757; plain fp32 cosine
    # 0.127 / 0.486 / 0.734 (reciprocal-rank fusion, the previous default, lost at 1 and 5: 0.110 / 0.445)
    assert all(ours[k] >= plain[k] for k in (1, 5, 10)), (ours, plain)


def test_hwu64_same_intent_deduper_within_a_point_of_cosine(shared_data, embedder):
    """Short utterances, same intent as duplicate: lexical evidence is weak there, so the bonus must not cost
    recall (the previous reciprocal-rank fusion lost 4.1 points at 1 and 1.8 at 5)."""
    test = pd.read_csv(shared_data / "hwu64" / "test.csv")
    texts = test["text"].tolist()
    q, relevant = _group_queries(test["label"])
    X = embedder.encode(texts)
    ours, plain = _deduper_recall(texts, q, relevant, X), _cosine_recall(q, relevant, X)
    # measured: 0.745 / 0.915 / 0.953 vs plain cosine 0.746 / 0.919 / 0.955
    assert all(ours[k] >= plain[k] - 0.01 for k in (1, 5, 10)), (ours, plain)
