import numpy as np
import pandas as pd
import pytest

from feedback_nlp import InvalidInputError, ModelMismatchError, NotFittedError
from feedback_nlp.themes import (
    BaseClusterer,
    GraphClusterer,
    HDBSCANClusterer,
    PCAReducer,
    ThemeModel,
    clean_title,
)


def _ai_themes(tm):
    """The themes of the sample's late AI-summaries feature (each of its requests is a theme)."""
    t = tm.themes_
    return t[t["title"].str.contains("summar", case=False)]


@pytest.fixture(scope="module")
def fitted(sample, sample_vectors, embedder):
    return ThemeModel(embedder, min_theme_size=15).fit(sample["text"], timestamps=sample["created_at"],
                                                      accounts=sample["account_id"], embeddings=sample_vectors)


def test_themes_table(fitted, sample):
    t = fitted.themes_
    assert {"id", "label", "keywords", "size", "share", "representatives", "first_seen", "last_seen",
            "unique_accounts"} <= set(t.columns)
    assert len(t) >= 10
    assert fitted.outlier_share_ <= fitted.max_outlier_share + 1e-9
    assert t["size"].sum() == (fitted.labels_ >= 0).sum()
    assert t["id"].tolist()[:3] == [0, 1, 2]  # ids follow size
    # the late AI-summaries requests are found and named, and their themes hold nothing else
    ai = _ai_themes(fitted)
    in_area = sample["product_area"].str.contains("ai_summaries").to_numpy()
    assert len(ai) >= 3
    assert np.isin(fitted.labels_[in_area], ai["id"]).mean() >= 0.95
    assert np.isin(fitted.labels_[~in_area], ai["id"]).sum() <= 2
    assert all(len(r) == 3 for r in t["representatives"])


def test_titles_are_readable(fitted):
    t = fitted.themes_
    assert (t["label"] == t["title"]).all()  # no custom label yet: the title is the label
    assert t["title"].str.len().between(8, 81).all()
    assert not t["title"].str.contains(r"<[A-Z_]+>|^(?:ugh|fyi|hi|hey)\b", case=False, regex=True).any()
    # a title is a member's text, cleaned: every word of it is in one of the theme's own items
    for _, row in t.iterrows():
        members = [fitted.texts_[i].lower() for i in np.flatnonzero(fitted.labels_ == row["id"])]
        words = row["title"].rstrip("…").lower().split()
        assert any(all(w in m for w in words) for m in members), row["title"]


def test_keywords_are_phrases_of_the_text_and_plurals_merge():
    from feedback_nlp.themes import CTFIDFLabeller

    docs = {0: ["Does not matter to me", "it does not matter", "doesn't matter at all", "no matter"],
            1: ["Mute email notifications", "<div>mute emails</div>", "email digest please", "mute email"],
            2: ["Export to CSV fails", "csv export fails again", "the export fails", "export csv"]}
    kw = CTFIDFLabeller(min_df=1).keywords(docs, top_n=10)
    every = {w for words in kw.values() for w in words}
    # a stop word ("not"), an item boundary or markup ends a phrase: no bigram bridges them
    assert "does matter" not in every and "matter mute" not in every and "div mute" not in every
    assert "matter" in kw[0] and {"mute", "email"} <= set(kw[1])
    # "emails" counts as "email": one keyword, not two
    assert "emails" not in every and "email" in kw[1]
    # bigrams that do stand in the text are counted ("csv export" twice, across two items)
    from feedback_nlp.themes._labels import _terms

    assert _terms("csv export fails again", set(), (1, 2)).count("csv export") == 1


@pytest.mark.parametrize(("raw", "title"), [
    ("QBR notes - please add offline mode to the mobile app", "Please add offline mode to the mobile app"),
    ("Ugh, fyi: the <EMAIL> export fails. Also dark mode?", "The export fails"),
    ("Time tracking totals are off by one day 🙏 :(", "Time tracking totals are off by one day"),
    ("x" * 500, "X" + "x" * 79 + "…"),
    ("", ""),
    ("🙏🙏", "🙏🙏"),
])
def test_clean_title(raw, title):
    assert clean_title(raw) == title


def test_transform_agrees_with_fit(fitted, sample, sample_vectors, embedder):
    assert np.array_equal(fitted.transform(embeddings=sample_vectors), fitted.labels_)
    again = ThemeModel(embedder, min_theme_size=15).fit_transform(sample["text"], embeddings=sample_vectors)
    assert np.array_equal(again, fitted.labels_)  # deterministic, and fit_transform == fit + labels_
    assert np.array_equal(fitted.transform(sample["text"][:50].tolist()), fitted.labels_[:50])


def test_transform_never_invents_ids(fitted):
    labels = fitted.transform(["completely unrelated text about medieval castle architecture"])
    assert set(labels) <= set(fitted.theme_ids_.tolist()) | {-1}


def test_trends_flag_the_late_theme(fitted):
    trends = fitted.trends("W")
    ai = set(_ai_themes(fitted)["id"])
    emerging = set(fitted.emerging_themes("W"))
    assert ai <= emerging  # every AI-summaries theme is flagged
    assert len(emerging - ai) <= 2  # and few others
    assert trends.groupby("theme")["count"].sum().sum() == (fitted.labels_ >= 0).sum()
    assert trends["partial"].iloc[-1]


def test_update_keeps_ids_and_finds_new_theme(sample, sample_vectors, embedder):
    late = sample["created_at"] >= pd.Timestamp("2026-07-27", tz="UTC")
    early_idx, late_idx = np.flatnonzero(~late), np.flatnonzero(late)
    tm = ThemeModel(embedder, min_theme_size=15).fit(sample["text"][early_idx], timestamps=sample["created_at"][early_idx],
                                                      embeddings=sample_vectors[early_idx])
    before = tm.themes_.set_index("id")["label"].to_dict()
    old_labels = tm.labels_.copy()
    tm.rename_theme(0, "Top theme")
    tm.update(sample["text"][late_idx], timestamps=sample["created_at"][late_idx], embeddings=sample_vectors[late_idx])
    assert set(before) <= set(tm.themes_["id"])  # old ids survive
    kept = old_labels >= 0
    assert np.array_equal(tm.labels_[: len(old_labels)][kept], old_labels[kept])  # memberships stable
    new = set(tm.themes_["id"]) - set(before)
    assert any("summar" in tm.themes_.set_index("id").loc[i, "label"] for i in new)
    assert tm.themes_.set_index("id").loc[0, "label"] == "Top theme"


def test_merge_and_rename(fitted):
    tm = ThemeModel.__new__(ThemeModel)
    tm.__dict__.update({k: (v.copy() if hasattr(v, "copy") else v) for k, v in fitted.__dict__.items()})
    s1, s2 = (int(tm.themes_.set_index("id").loc[i, "size"]) for i in (1, 2))
    kept = tm.merge_themes([1, 2], label="merged")
    assert kept == 1 and 2 not in tm.themes_["id"].tolist()
    assert tm.themes_.set_index("id").loc[1, "size"] >= s1 + s2 - 5
    assert tm.themes_.set_index("id").loc[1, "label"] == "merged"
    with pytest.raises(InvalidInputError, match="unknown"):
        tm.merge_themes([1, 999])
    with pytest.raises(InvalidInputError, match="unknown theme id"):
        tm.rename_theme(999, "x")


def test_swappable_clusterer(sample_vectors, sample):
    class KMeansClusterer(BaseClusterer):
        def fit_predict(self, X):
            from sklearn.cluster import KMeans

            return KMeans(20, n_init=3, random_state=0).fit_predict(X)

    tm = ThemeModel(min_theme_size=15, clusterer=KMeansClusterer(), merge_threshold=0.99).fit(sample["text"], embeddings=sample_vectors)
    assert 10 <= len(tm.themes_) <= 20


def test_outlier_bound(sample_vectors, sample):
    strict = ThemeModel(min_theme_size=15, assign_threshold=0.95, max_outlier_share=0.1).fit(sample["text"], embeddings=sample_vectors)
    assert strict.outlier_share_ <= 0.1 + 1e-9 and strict.assign_threshold_ < 0.95


def test_save_load(fitted, tmp_path, sample_vectors, hash_embedder):
    path = fitted.save(tmp_path / "t")
    loaded = ThemeModel.load(path)
    pd.testing.assert_frame_equal(loaded.themes_, fitted.themes_, check_dtype=False)
    assert np.array_equal(loaded.transform(embeddings=sample_vectors[:100]), fitted.labels_[:100])
    with pytest.raises(ModelMismatchError):
        ThemeModel.load(path, embedder=hash_embedder)


def test_bad_input(embedder, sample_vectors):
    with pytest.raises(InvalidInputError, match="empty corpus"):
        ThemeModel(embedder).fit([])
    with pytest.raises(NotFittedError):
        ThemeModel(embedder).transform(["x"])
    with pytest.raises(InvalidInputError, match="timestamps has 2 values for 3 texts"):
        ThemeModel(embedder).fit(["a", "b", "c"], timestamps=["2026-01-01", "2026-01-02"], embeddings=sample_vectors[:3])
    tm = ThemeModel(embedder, min_theme_size=2).fit(["a"] * 3, embeddings=sample_vectors[:3])
    with pytest.raises(ModelMismatchError, match="dimensions"):
        tm.transform(embeddings=np.ones((1, 8), dtype=np.float32))
    with pytest.raises(InvalidInputError, match="trends need timestamps"):
        tm.trends()


def test_is_a_sklearn_estimator(embedder, tmp_path, sample, sample_vectors):
    from sklearn.base import clone

    tm = ThemeModel(embedder, min_theme_size=12, n_keywords=5, clusterer=GraphClusterer(resolution=2.0))
    c = clone(tm)
    assert c.get_params()["n_keywords"] == 5 and c.get_params()["clusterer__resolution"] == 2.0
    assert c.clusterer is not tm.clusterer and not hasattr(c, "labels_")
    c.set_params(clusterer__n_neighbors=7, merge_threshold=0.9)
    assert c.clusterer.n_neighbors == 7 and tm.clusterer.n_neighbors == 10
    # save/load store every parameter from get_params(): a non-default one survives the round trip
    tm = ThemeModel(min_theme_size=12, n_keywords=5, merge_threshold=0.9, max_outlier_share=0.07,
                    random_state=3).fit(sample["text"][:600], embeddings=sample_vectors[:600])
    loaded = ThemeModel.load(tm.save(tmp_path / "p"))
    skip = set(ThemeModel._PARTS)
    assert {k: v for k, v in loaded.get_params().items() if k not in skip} == \
        {k: v for k, v in tm.get_params().items() if k not in skip}


@pytest.mark.parametrize(("params", "message"), [
    ({"min_theme_size": 1}, "min_theme_size"),
    ({"max_outlier_share": 1.5}, "max_outlier_share"),
    ({"clusterer": "leiden"}, "clusterer"),
    ({"random_state": -1}, "random_state"),
    ({"n_keywords": True}, "n_keywords"),
])
def test_bad_parameters_name_themselves(params, message, sample_vectors):
    with pytest.raises(InvalidInputError, match=message):
        ThemeModel(**params).fit(embeddings=sample_vectors[:50])


def test_non_finite_embeddings_are_refused(sample_vectors):
    bad = sample_vectors[:40].copy()
    bad[3, 0] = np.nan
    with pytest.raises(InvalidInputError, match="not finite"):
        ThemeModel().fit(embeddings=bad)


def test_graph_clusterer_is_deterministic_and_leaves_the_rng_alone(sample_vectors):
    import random

    import igraph

    a = GraphClusterer().fit_predict(sample_vectors[:800])
    b = GraphClusterer().fit_predict(sample_vectors[:800])
    assert np.array_equal(a, b) and a[0] == 0  # ids by first member
    random.seed(5)  # igraph draws from Python's `random` again: our seeded generator was put back
    after = igraph.Graph.Erdos_Renyi(30, 0.2).get_edgelist()
    igraph.set_random_number_generator(random)
    random.seed(5)
    assert igraph.Graph.Erdos_Renyi(30, 0.2).get_edgelist() == after
    assert len(GraphClusterer().fit_predict(sample_vectors[:2])) == 2
    # 30 copies of one complaint: high resolution splits the clique, and the centre merge makes it one theme
    X = np.vstack([np.tile(sample_vectors[:1], (30, 1)), sample_vectors[100:400]])
    tm = ThemeModel(min_theme_size=10).fit(embeddings=X)
    assert len(set(tm.labels_[:30].tolist())) == 1 and tm.labels_[0] >= 0


def test_hdbscan_and_pca_still_plug_in(sample, sample_vectors):
    tm = ThemeModel(min_theme_size=15, reducer=PCAReducer(), clusterer=HDBSCANClusterer()).fit(
        sample["text"], embeddings=sample_vectors)
    assert len(tm.themes_) >= 10 and tm.reducer.get_params()["n_components"] == 16
