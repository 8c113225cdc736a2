import numpy as np
import pytest

from feedback_nlp import IntegrityError, InvalidInputError, ModelMismatchError, NotFittedError
from feedback_nlp.dedupe import Deduper, calibrate_threshold


@pytest.fixture(scope="module")
def deduper(sample, sample_vectors, embedder):
    return Deduper(embedder, threshold=0.9).fit(sample, embeddings=sample_vectors)


def test_planted_duplicates_are_found(deduper, sample, sample_vectors):
    planted = sample[sample["dup_group"] != ""]
    pos = {i: k for k, i in enumerate(sample["id"])}
    hits = 0
    for _, grp in planted.groupby("dup_group"):
        first = grp.iloc[0]
        # the sample repeats each request across channels (random pairs: 99th percentile 0.62), so take
        # every match above 0.6
        res = deduper.find(embeddings=sample_vectors[[pos[first["id"]]]], k=300, min_score=0.6, exclude_self=True)
        hits += len(set(res["id"]) & set(grp["id"][1:])) / (len(grp) - 1)
    assert hits / planted["dup_group"].nunique() > 0.9


def test_find_from_text_single_item(deduper):
    res = deduper.find("Please add a Microsoft Teams integration!", k=3)
    assert list(res.columns) == ["query", "rank", "id", "score", "text"]
    assert res["rank"].tolist() == [1, 2, 3]  # fused order: cosine scores need not decrease
    assert "Teams" in res["text"][0] and res["score"][0] > 0.9
    assert deduper.find("Please add a Microsoft Teams integration!", k=3, min_score=0.999).empty


def test_pairs_and_groups(deduper):
    p = deduper.pairs(0.95)
    assert (p["score"] >= 0.95).all() and p["score"].is_monotonic_decreasing
    g = deduper.groups(0.95)
    assert g.groupby("group")["is_representative"].sum().eq(1).all()
    assert g["id"].is_unique  # an item belongs to one group at most
    assert (g["score"] >= 0.95).all()


def test_groups_do_not_chain():
    # a ~ b ~ c but a !~ c: two groups or one centred group, never a chain through b at a lower threshold
    v = np.array([[1, 0, 0], [0.8, 0.6, 0], [0.28, 0.96, 0]], dtype=np.float32)
    d = Deduper(threshold=0.79).fit(ids=["a", "b", "c"], embeddings=v)
    g = d.groups()
    rep = g[g["is_representative"]]["id"].tolist()
    assert rep == ["b"] and set(g["id"]) == {"a", "b", "c"}
    assert (g["score"] >= 0.79).all()


def test_incremental_add_matches_full_fit(sample_vectors, sample):
    ids = sample["id"].tolist()
    full = Deduper(threshold=0.9).fit(ids=ids, embeddings=sample_vectors)
    inc = Deduper(threshold=0.9).fit(ids=ids[:1500], embeddings=sample_vectors[:1500]).add(ids=ids[1500:], embeddings=sample_vectors[1500:])
    assert full.pairs().equals(inc.pairs())
    with pytest.raises(InvalidInputError, match="already in the index"):
        inc.add(ids=ids[:1], embeddings=sample_vectors[:1])


def test_hnsw_recall_matches_exact(sample_vectors, sample):
    ids = sample["id"].tolist()
    exact = Deduper(threshold=0.9, index="exact").fit(ids=ids, embeddings=sample_vectors)
    ann = Deduper(threshold=0.9, index="hnsw").fit(ids=ids, embeddings=sample_vectors)
    a = exact.find(embeddings=sample_vectors[:200], k=10)
    b = ann.find(embeddings=sample_vectors[:200], k=10)
    recall = np.mean([len(set(a[a["query"] == q]["id"]) & set(b[b["query"] == q]["id"])) / 10 for q in range(200)])
    assert recall > 0.95


def test_calibrate_threshold():
    thr, rep = calibrate_threshold([0.95, 0.9, 0.85, 0.6, 0.5], [1, 1, 0, 1, 0], return_report=True)
    assert thr == pytest.approx(0.55) and rep["f1"] == pytest.approx(6 / 7)
    with pytest.raises(InvalidInputError, match="no positive"):
        calibrate_threshold([0.9, 0.1], [0, 0])
    with pytest.raises(InvalidInputError, match="equal length"):
        calibrate_threshold([0.9], [0, 1])


def test_calibrate_on_real_pairs(shared_data, embedder):
    import pandas as pd

    tr = pd.read_csv(shared_data / "bugdup_hadoop" / "train.csv")
    te = pd.read_csv(shared_data / "bugdup_hadoop" / "test.csv")
    d = Deduper(embedder)
    thr = calibrate_threshold(d.score_pairs(tr["text_a"], tr["text_b"]), tr["is_duplicate"])
    pred = d.score_pairs(te["text_a"], te["text_b"]) >= thr
    tp = (pred & (te["is_duplicate"] == 1)).sum()
    f1 = 2 * tp / (pred.sum() + (te["is_duplicate"] == 1).sum())
    assert f1 > 0.7  # 20 positive test pairs: one pair moves F1 by ~0.03; chance level is ~0.33


def test_bad_input(embedder, sample_vectors):
    with pytest.raises(InvalidInputError, match="empty corpus"):
        Deduper(embedder).fit([])
    d = Deduper(embedder).fit(ids=["a", "b"], embeddings=sample_vectors[:2])
    with pytest.raises(InvalidInputError, match="k=5 is larger than the index"):
        d.find("x y", k=5)
    with pytest.raises(ModelMismatchError, match="dimensions"):
        d.find(embeddings=np.ones((1, 10), dtype=np.float32), k=1)
    with pytest.raises(NotFittedError):
        Deduper().find("x")
    with pytest.raises(InvalidInputError, match="threshold"):
        Deduper(threshold=1.5).fit(ids=["a"], embeddings=sample_vectors[:1])


def test_save_load(deduper, tmp_path, embedder, hash_embedder):
    path = deduper.save(tmp_path / "d")
    loaded = Deduper.load(path, embedder=embedder)
    assert loaded.find("dark mode please", k=5).equals(deduper.find("dark mode please", k=5))
    with pytest.raises(ModelMismatchError):
        Deduper.load(path, embedder=hash_embedder)
    (path / "items.json").write_text((path / "items.json").read_text().replace("FB-00001", "FB-99999"))
    with pytest.raises(IntegrityError, match="checksum"):
        Deduper.load(path)


def test_folder_saved_with_rank_fusion_still_loads(deduper, tmp_path, embedder):
    """Folders saved while find() used reciprocal-rank fusion hold an ``rrf_k`` parameter: it is dropped, and
    their lexical_weight (a rank weight then) gives way to today's default unless it was 0 (vectors only)."""
    import json

    from feedback_nlp._persist import write_manifest

    path = deduper.save(tmp_path / "old")
    config = json.loads((path / "config.json").read_text())
    config["params"] = {**config["params"], "rrf_k": 60, "lexical_weight": 1.0}
    (path / "config.json").write_text(json.dumps(config))
    write_manifest(path)
    loaded = Deduper.load(path, embedder=embedder)
    assert loaded.lexical_weight == Deduper().lexical_weight and "rrf_k" not in loaded.get_params()
    assert len(loaded.find("dark mode please", k=3)) == 3
    config["params"]["lexical_weight"] = 0.0
    (path / "config.json").write_text(json.dumps(config))
    write_manifest(path)
    assert Deduper.load(path, embedder=embedder).lexical_weight == 0.0


def test_threshold_is_exact_at_float32_boundaries(hash_embedder):
    """Scores are float32; a threshold a hair above one of them must exclude it (it was compared in float32)."""
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(60, hash_embedder.dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    d = Deduper(hash_embedder, threshold=0.5).fit(ids=[f"i{k}" for k in range(60)], embeddings=vecs)
    everything = d.pairs(0.01)
    s = float(everything["score"].iloc[len(everything) // 2])
    thr = float(np.nextafter(s, 1.0))  # above s in float64, equal to s once rounded to float32
    assert np.float32(thr) == np.float32(s)
    p = d.pairs(thr)
    assert (p["score"] >= thr).all() and s not in p["score"].to_numpy()
    assert len(p) == (everything["score"] > s).sum()


def _bug_corpus(dup_cosine=0.8):
    """A query whose duplicate shares an identifier but, by vector, sits behind two distractors (0.9, 0.85)."""
    texts = ["NullPointerException in S3AFileSystem.getFileStatus when the bucket is empty",
             "Upload to the object store is slow for big files",
             "Listing a directory on the object store is slow",
             "Add a metric for the number of open files"]
    rng = np.random.default_rng(0)
    q = rng.normal(size=16).astype(np.float32)
    q /= np.linalg.norm(q)
    off = float(np.sqrt(1 - dup_cosine ** 2))
    emb = np.vstack([dup_cosine * q + off * _orth(q, rng), 0.9 * q + 0.436 * _orth(q, rng),
                     0.85 * q + 0.527 * _orth(q, rng), _orth(q, rng)]).astype(np.float32)
    return texts, emb, q[None, :], "S3AFileSystem.getFileStatus throws NullPointerException"


def _orth(q, rng):
    v = rng.normal(size=q.shape).astype(np.float32)
    v -= (v @ q) * q
    return v / np.linalg.norm(v)


def test_hybrid_ranks_a_shared_identifier_first():
    texts, emb, q, query = _bug_corpus()
    vector_only = Deduper(lexical_weight=0.0).fit(texts, embeddings=emb).find([query], k=3, embeddings=q)
    hybrid = Deduper().fit(texts, embeddings=emb).find([query], k=3, embeddings=q)
    assert vector_only["id"].tolist()[0] == 1 and vector_only["id"].tolist().index(0) == 2
    assert hybrid["id"].tolist()[0] == 0  # BM25 over identifiers lifts the true duplicate
    assert hybrid.loc[0, "score"] == pytest.approx(float(emb[0] @ q[0]), abs=1e-5)  # score stays the cosine
    # without query texts (vectors only) the lexical ranking cannot take part
    assert Deduper().fit(texts, embeddings=emb).find(k=3, embeddings=q)["id"].tolist() == vector_only["id"].tolist()


def test_lexical_bonus_is_bounded_and_ignores_common_words():
    # a duplicate 0.3 behind by cosine (0.6 vs 0.9): the default bonus (at most 0.3) never overtakes it ...
    texts, emb, q, query = _bug_corpus(dup_cosine=0.6)
    assert Deduper().fit(texts, embeddings=emb).find([query], k=3, embeddings=q)["id"].tolist()[0] == 1
    # ... a larger, faster-saturating bonus does
    assert Deduper(lexical_weight=0.5, lexical_scale=1.0).fit(texts, embeddings=emb).find([query], k=3, embeddings=q)["id"].tolist()[0] == 0
    # words that many indexed items share (here "export" and "csv" in 8 of 12) are not evidence: vector order holds
    rng = np.random.default_rng(1)
    many = [f"csv export of board {i} is slow" for i in range(8)] + ["dark mode", "sso login", "gantt chart", "mobile app"]
    X = rng.normal(size=(12, 8)).astype(np.float32)
    query_vec = X[9:10] + 0.01  # the vector says: "sso login"
    plain = Deduper(lexical_weight=0.0).fit(many, embeddings=X).find(["csv export"], k=3, embeddings=query_vec)
    hybrid = Deduper().fit(many, embeddings=X).find(["csv export"], k=3, embeddings=query_vec)
    assert hybrid["id"].tolist() == plain["id"].tolist() and hybrid["id"].tolist()[0] == 9


def test_hybrid_follows_incremental_add_and_odd_queries():
    texts, emb, q, query = _bug_corpus()
    d = Deduper().fit(texts[1:], ids=["b", "c", "d"], embeddings=emb[1:])
    d.add(texts[:1], ids=["a"], embeddings=emb[:1])
    assert d.find([query], k=1, embeddings=q)["id"].tolist() == ["a"]
    for odd in ["", "the and of", "ß∂ƒ 🙏", "x" * 10_000]:  # no known token, stop words, unicode, huge
        assert len(d.find([odd], k=2, embeddings=q)) == 2


def test_is_a_sklearn_estimator(tmp_path, sample_vectors, sample):
    from sklearn.base import clone

    d = Deduper(threshold=0.8, lexical_weight=0.5, lexical_scale=10.0)
    c = clone(d)
    assert c.get_params()["lexical_weight"] == 0.5 and c.set_params(lexical_scale=5.0).lexical_scale == 5.0
    assert d.lexical_scale == 10.0
    fitted = d.fit(sample.head(300), embeddings=sample_vectors[:300])
    loaded = Deduper.load(fitted.save(tmp_path / "d"))
    assert {k: v for k, v in loaded.get_params().items() if k != "embedder"} == \
        {k: v for k, v in fitted.get_params().items() if k != "embedder"}


@pytest.mark.parametrize(("params", "message"), [
    ({"lexical_weight": -1.0}, "lexical_weight"), ({"lexical_scale": 0.0}, "lexical_scale"),
    ({"lexical_max_df": 1.5}, "lexical_max_df"), ({"index": "faiss"}, "index"),
    ({"candidates": 2.5}, "candidates"), ({"threshold": 0}, "threshold"),
])
def test_bad_parameters_name_themselves(params, message, sample_vectors):
    with pytest.raises(InvalidInputError, match=message):
        Deduper(**params).fit(ids=["a", "b"], embeddings=sample_vectors[:2])


def test_find_rejects_bool_k(deduper):
    with pytest.raises(InvalidInputError, match="positive integer"):
        deduper.find("dark mode", k=True)
