"""The lexical channel of TagClassifier: words past the embedding's window, fusion kept only where it helps,
save/load, precomputed vectors with their texts, multi-label, hostile texts."""

import hashlib

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from feedback_nlp import BaseEmbedder, InvalidInputError
from feedback_nlp.tagging import FORMAT_VERSION, TagClassifier

FILLER = ["the", "app", "the", "screen", "when", "I", "open", "it", "again", "today", "and", "then", "the", "page", "shows", "the", "list", "of", "my", "items", "with", "all", "of", "the", "settings", "as", "before"]


class WindowEmbedder(BaseEmbedder):
    """Reads only the first ``window`` words (as a transformer reads its first 256 tokens): hashed bag of words."""

    def __init__(self, window: int = 12, dim: int = 32) -> None:
        self.window, self.dim, self.model_id = window, dim, f"window-test@{window}"

    def encode(self, texts):
        texts = [texts] if isinstance(texts, str) else list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split()[: self.window]:
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % self.dim] += 1
        out += 1e-3  # never a zero vector
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def _long_texts(n: int, seed: int) -> tuple[list[str], list[str]]:
    """The tag is told by one word at the end of a long text (a GitHub issue's template heading)."""
    rng = np.random.default_rng(seed)
    words = {"bug": ["crash", "traceback", "regression"], "feature": ["proposal", "enhancement", "wishlist"],
             "question": ["howto", "clarification", "usage"]}
    texts, labels = [], []
    for i in range(n):
        label = ["bug", "feature", "question"][i % 3]
        body = " ".join(rng.choice(FILLER, size=30))
        texts.append(f"{body} steps {rng.choice(words[label])} {rng.choice(words[label])}")
        labels.append(label)
    return texts, labels


@pytest.fixture(scope="module")
def data():
    return _long_texts(90, 0), _long_texts(60, 1)


def test_words_past_the_window_are_learned_and_kept(data):
    (xtr, ytr), (xte, yte) = data
    emb = WindowEmbedder()
    plain = TagClassifier(emb, lexical=False).fit(xtr, ytr)
    fused = TagClassifier(emb).fit(xtr, ytr)
    assert plain.lexical_ is None and fused.lexical_ is not None
    assert fused.lexical_fusion_[1] > 0  # the words' weight
    assert plain.score(xte, yte) < 0.6  # the window sees only filler: near chance (1/3)
    assert fused.score(xte, yte) >= 0.95
    P = fused.predict_proba(xte).to_numpy()
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-6)


def test_words_that_add_nothing_are_dropped():
    # the embedding sees the tag word itself (it is first); the rest is noise the words cannot improve on
    (texts, labels) = _long_texts(90, 2)
    texts = [f"{lab} {t}" for t, lab in zip(texts, labels)]
    emb = WindowEmbedder(window=1, dim=64)
    clf = TagClassifier(emb).fit(texts, labels)
    assert clf.lexical_ is None and clf.lexical_fusion_ is None
    assert clf.score(texts, labels) == 1.0


def test_save_load_round_trip_and_format(data, tmp_path):
    import json

    (xtr, ytr), (xte, _) = data
    emb = WindowEmbedder()
    clf = TagClassifier(emb).fit(xtr, ytr)
    folder = clf.save(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    assert config["format_version"] == 3 and FORMAT_VERSION == 5  # 4: keep_base, 5: in-sample calibration
    assert config["params"]["lexical"] is True
    back = TagClassifier.load(folder, embedder=emb)
    np.testing.assert_allclose(back.predict_proba(xte).to_numpy(), clf.predict_proba(xte).to_numpy(), atol=1e-4)
    assert back.lexical_.vocabulary_ == clf.lexical_.vocabulary_
    # loading never unpickles: the vocabulary is UTF-8 bytes (not a fixed-width string array padded to the longest term)
    with np.load(folder / "weights.npz", allow_pickle=False) as z:
        stored = z["lexical_vocabulary_"]
        assert stored.dtype == np.uint8 and stored.nbytes == len("\n".join(clf.lexical_.vocabulary_).encode())


def test_vocabulary_saved_as_a_string_array_still_loads(data, tmp_path):
    from feedback_nlp._persist import write_manifest
    from feedback_nlp.tagging import _vocabulary

    (xtr, ytr), (xte, _) = data
    emb = WindowEmbedder()
    clf = TagClassifier(emb).fit([t + " café" for t in xtr], ytr)
    folder = clf.save(tmp_path / "m")
    with np.load(folder / "weights.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    assert "café" in _vocabulary(arrays["lexical_vocabulary_"])
    arrays["lexical_vocabulary_"] = np.array(clf.lexical_.vocabulary_, dtype=str)  # as first written
    np.savez(folder / "weights.npz", **arrays)
    write_manifest(folder)
    back = TagClassifier.load(folder, embedder=emb)
    np.testing.assert_allclose(back.predict_proba(xte).to_numpy(), clf.predict_proba(xte).to_numpy(), atol=1e-6)


def test_model_without_words_stays_format_1(tmp_path):
    import json

    texts, labels = _long_texts(30, 3)
    clf = TagClassifier(WindowEmbedder(), lexical=False).fit(texts, labels)
    folder = clf.save(tmp_path / "m")
    assert json.loads((folder / "config.json").read_text())["format_version"] == 1


def test_vectors_need_their_texts(data):
    (xtr, ytr), (xte, _) = data
    emb = WindowEmbedder()
    clf = TagClassifier(emb).fit(xtr, ytr)
    vectors = emb.encode(xte)
    with pytest.raises(InvalidInputError, match="texts=texts"):
        clf.predict(vectors)
    with pytest.raises(InvalidInputError, match="texts has 2 rows but X has 60"):
        clf.tag(vectors, texts=xte[:2])
    with pytest.raises(InvalidInputError, match="X is already texts"):
        clf.predict(xte, texts=xte)
    np.testing.assert_allclose(clf.predict_proba(vectors, texts=xte).to_numpy(), clf.predict_proba(xte).to_numpy(),
                               atol=1e-6)
    assert clf.tag(vectors, texts=xte)["tags"].tolist() == clf.tag(xte)["tags"].tolist()


def test_fit_on_vectors_with_texts_learns_the_words(data):
    (xtr, ytr), (xte, yte) = data
    emb = WindowEmbedder()
    on_vectors = TagClassifier(emb).fit(emb.encode(xtr), ytr)
    assert on_vectors.lexical_ is None  # no texts: the embedding alone, as before
    with_texts = TagClassifier(emb).fit(emb.encode(xtr), ytr, texts=xtr)
    assert with_texts.lexical_ is not None
    assert with_texts.evaluate(emb.encode(xte), yte, texts=xte).accuracy >= 0.95
    with pytest.raises(InvalidInputError, match="texts has 3 rows"):
        TagClassifier(emb).fit(emb.encode(xtr), ytr, texts=xtr[:3])


def test_holdout_with_vectors_and_texts(data):
    (xtr, ytr), _ = data
    emb = WindowEmbedder()
    clf = TagClassifier(emb).fit(emb.encode(xtr), ytr, texts=xtr, holdout=0.3)
    assert clf.metrics_["accuracy"] >= 0.9


def test_multi_label_fusion_and_thresholds(tmp_path):
    rng = np.random.default_rng(4)
    texts, labels = [], []
    for i in range(120):
        tags = [t for t, on in (("billing", i % 2 == 0), ("export", i % 3 == 0)) if on] or ["other"]
        words = {"billing": "invoice", "export": "csv", "other": "misc"}
        body = " ".join(rng.choice(FILLER, size=30))
        texts.append(body + " " + " ".join(words[t] + " " + words[t] for t in tags))
        labels.append(tags)
    emb = WindowEmbedder()
    clf = TagClassifier(emb).fit(texts[:90], labels[:90])
    assert clf.multi_label_ and clf.lexical_ is not None and clf.lexical_fusion_.shape == (3, 3)
    pred = clf.predict(texts[90:])
    exact = np.mean([sorted(p) == sorted(t) for p, t in zip(pred, labels[90:])])
    assert exact >= 0.9
    plain = TagClassifier(emb, lexical=False).fit(texts[:90], labels[:90])
    assert np.mean([sorted(p) == sorted(t) for p, t in zip(plain.predict(texts[90:]), labels[90:])]) < 0.6
    back = TagClassifier.load(clf.save(tmp_path / "ml"), embedder=emb)
    assert [sorted(p) for p in back.predict(texts[90:])] == [sorted(p) for p in pred]


@pytest.mark.parametrize("junk", [["!!", "??"], ["😀 😀", "🎉"], ["a b", "c d"], ["1", "2"]])
def test_texts_without_words_train_without_the_channel(junk):
    texts = [f"{j} {k}" for k in range(20) for j in junk] if junk[0] == "1" else junk * 20
    labels = ["x", "y"] * 20
    clf = TagClassifier(WindowEmbedder(window=3)).fit(texts, labels)
    assert clf.predict(texts[:2]).shape == (2,)


def test_unicode_words_are_read():
    texts = [f"{' '.join(['päivä'] * 30)} {w}" for w in ["näyttö", "kaatuu", "ミュート", "エクスポート"] * 15]
    labels = ["a", "b", "c", "d"] * 15
    clf = TagClassifier(WindowEmbedder(window=5)).fit(texts, labels)
    assert clf.lexical_ is not None and clf.score(texts, labels) == 1.0


def test_sklearn_contract(data):
    (xtr, ytr), _ = data
    emb = WindowEmbedder()
    clf = TagClassifier(emb)
    assert clf.get_params()["lexical"] is True
    assert clone(clf).set_params(lexical=False).lexical is False
    grid = GridSearchCV(TagClassifier(emb, cv=3), {"lexical": [False, True]}, cv=3).fit(xtr, ytr)
    assert grid.best_params_ == {"lexical": True}
    with pytest.raises(InvalidInputError):
        TagClassifier(emb, lexical="yes").fit(xtr, ytr)


def test_model_card_says_what_the_words_do(data, tmp_path):
    (xtr, ytr), _ = data
    emb = WindowEmbedder()
    card = (TagClassifier(emb).fit(xtr, ytr).save(tmp_path / "a") / "README.md").read_text()
    assert "word TF-IDF channel" in card and "× words" in card
    texts = [f"{lab} {t}" for t, lab in zip(*_long_texts(90, 2))]
    labels = _long_texts(90, 2)[1]
    dropped = TagClassifier(WindowEmbedder(window=1, dim=64)).fit(texts, labels).save(tmp_path / "b")
    assert "fitted and dropped" in (dropped / "README.md").read_text()
