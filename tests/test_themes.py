import numpy as np
import pandas as pd
import pytest

from feedback_nlp import InvalidInputError, ModelMismatchError, NotFittedError
from feedback_nlp.themes import BaseClusterer, ThemeModel


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
    ai = t[t["label"].str.contains("summar")]
    assert len(ai) == 1 and ai["size"].iloc[0] >= 100  # the late AI-summaries theme is found and named
    assert all(len(r) == 3 for r in t["representatives"])


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
    ai = int(fitted.themes_[fitted.themes_["label"].str.contains("summar")]["id"].iloc[0])
    assert ai in fitted.emerging_themes("W")
    assert len(fitted.emerging_themes("W")) <= 3
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
