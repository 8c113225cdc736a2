import json

import numpy as np
import pytest

from feedback_nlp import (
    IntegrityError,
    InvalidInputError,
    ModelMismatchError,
    ModelNotFoundError,
    NotFittedError,
    UnknownTagError,
)
from feedback_nlp.datasets import sample_taxonomy_path
from feedback_nlp.tagging import TagClassifier
from feedback_nlp.taxonomy import Taxonomy


@pytest.fixture(scope="module")
def taxonomy():
    return Taxonomy.load(sample_taxonomy_path())


@pytest.fixture(scope="module")
def split(sample, sample_vectors):
    # shuffle deterministically so every tag is on both sides
    rng = np.random.default_rng(0)
    order = rng.permutation(len(sample))
    tr, te = order[:2000], order[2000:]
    return sample.iloc[tr].reset_index(drop=True), sample.iloc[te].reset_index(drop=True), sample_vectors[tr], sample_vectors[te]


@pytest.fixture(scope="module")
def multiclass(split, embedder, taxonomy):
    tr, _, xtr, _ = split
    return TagClassifier(embedder, taxonomy).fit(xtr, tr["request_type"])


@pytest.fixture(scope="module")
def multilabel(split, embedder, taxonomy):
    tr, _, xtr, _ = split
    return TagClassifier(embedder, taxonomy).fit(xtr, tr["product_area"], sep="|")


def test_multiclass_quality_and_contract(multiclass, split):
    _, te, _, xte = split
    assert multiclass.multi_label_ is False
    assert list(multiclass.classes_) == ["bug", "feature_request", "praise", "question"]
    report = multiclass.evaluate(xte, te["request_type"])
    assert report.accuracy > 0.9 and report.macro_f1 > 0.85
    proba = multiclass.predict_proba(xte[:5])
    assert list(proba.columns) == list(multiclass.classes_)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    pred = multiclass.predict(xte[:5])
    assert all(p == proba.columns[i] for p, i in zip(pred, proba.to_numpy().argmax(axis=1)))


def test_texts_and_embeddings_agree(multiclass, split):
    _, te, _, xte = split
    from_text = multiclass.predict_proba(te["text"][:20].tolist()).to_numpy()
    np.testing.assert_allclose(from_text, multiclass.predict_proba(xte[:20]).to_numpy(), atol=1e-5)


def test_fit_predict_agrees_with_fit_then_predict(split, embedder):
    tr, _, xtr, _ = split
    a = TagClassifier(embedder).fit_predict(xtr[:400], tr["request_type"][:400])
    b = TagClassifier(embedder).fit(xtr[:400], tr["request_type"][:400]).predict(xtr[:400])
    assert a.tolist() == b.tolist()


def test_calibration_is_reasonable(multiclass, split):
    _, te, _, xte = split
    P = multiclass.predict_proba(xte).to_numpy()
    conf = P.max(axis=1)
    correct = multiclass.classes_[P.argmax(axis=1)] == te["request_type"].to_numpy()
    # expected calibration error over 10 bins stays small
    bins = np.minimum((conf * 10).astype(int), 9)
    ece = sum(abs(correct[bins == b].mean() - conf[bins == b].mean()) * (bins == b).mean() for b in range(10) if (bins == b).any())
    assert ece < 0.08
    assert 0.05 < multiclass.temperature_ < 20


def test_multilabel_thresholds_and_no_empty_rows(multilabel, split, taxonomy):
    _, te, _, xte = split
    assert multilabel.multi_label_ is True
    assert not np.allclose(multilabel.thresholds_, 0.5)  # tuned per tag, not a fixed 0.5
    pred = multilabel.predict(xte)
    assert all(len(p) >= 1 for p in pred)  # never empty without abstaining
    assert all("product_area" in p for p in pred)  # ancestors implied
    truth = [a.split("|") for a in te["product_area"]]
    report = multilabel.evaluate(xte, truth)
    assert report.micro_f1 > 0.85
    assert 1 in report.per_level and report.per_level[0]["accuracy"] == 1.0
    multi_rows = [i for i, t in enumerate(truth) if len(t) > 1]
    got_two = sum(len([x for x in pred[i] if x != "product_area"]) > 1 for i in multi_rows)
    assert got_two / len(multi_rows) > 0.6  # multi-label rows get several tags


def test_min_confidence_abstains(split, embedder):
    tr, te, xtr, xte = split
    clf = TagClassifier(embedder, min_confidence=0.999).fit(xtr, tr["request_type"])
    out = clf.tag(xte)
    assert out["needs_review"].any() and not out["needs_review"].all()
    assert (out.loc[out["needs_review"], "tags"].map(len) == 0).all()
    assert (out.loc[~out["needs_review"], "confidence"] >= 0.999).all()
    report = clf.evaluate(xte, te["request_type"])
    assert report.abstain_rate == pytest.approx(out["needs_review"].mean())
    assert report.accuracy_covered >= report.accuracy  # abstained rows count as errors in the headline
    assert clf.predict(xte)[out["needs_review"].to_numpy()].tolist()[0] is None


def test_tag_output_format(multiclass, split):
    _, te, _, xte = split
    out = multiclass.tag(xte[:3], ids=te["id"][:3])
    assert list(out.columns) == ["id", "tags", "probabilities", "confidence", "needs_review"]
    first = json.loads(out["probabilities"][0])
    assert list(first) == [t for t in out["tags"][0] if t != "request_type"]


def test_few_labels_give_useful_model(split, embedder):
    tr, te, xtr, xte = split
    idx = np.concatenate([np.flatnonzero(tr["request_type"].to_numpy() == c)[:8] for c in ["bug", "feature_request", "praise", "question"]])
    clf = TagClassifier(embedder).fit(xtr[idx], tr["request_type"].to_numpy()[idx])
    assert clf.score(xte, te["request_type"]) > 0.55  # majority class is 0.44


def test_zero_shot_cold_start(taxonomy, split, embedder):
    _, te, _, xte = split
    zs = TagClassifier(embedder, taxonomy, zero_shot=True).fit(None)
    assert zs.multi_label_ is True
    out = zs.tag(xte[:50])
    assert out["tags"].map(lambda t: "request_type" in t and "product_area" in t).all()  # one per facet
    truth = [[a.split("|")[0], b] for a, b in zip(te["product_area"], te["request_type"])]
    report = zs.evaluate(xte, truth)
    assert report.per_level[1]["micro_f1"] > 0.45  # far above chance (1/11 areas, 1/4 types)
    with pytest.raises(InvalidInputError, match="needs a taxonomy"):
        TagClassifier(embedder, zero_shot=True).fit(None)


def test_unknown_tag_and_bad_labels(embedder, taxonomy):
    with pytest.raises(UnknownTagError, match=r"'refund' in rows \[1\]"):
        TagClassifier(embedder, taxonomy).fit(["a b", "c d"], ["bug", "refund"])
    with pytest.raises(InvalidInputError, match=r"rows \[1\] have no label"):
        TagClassifier(embedder).fit(["a b", "c d"], ["bug", ""])
    with pytest.raises(InvalidInputError, match="X has 2 rows but y has 3"):
        TagClassifier(embedder).fit(["a b", "c d"], ["bug", "x", "y"])
    with pytest.raises(InvalidInputError, match="multi_label=False"):
        TagClassifier(embedder, multi_label=False).fit(["a", "b"], [["x", "y"], ["x"]])
    with pytest.raises(InvalidInputError, match="min_confidence"):
        TagClassifier(embedder, min_confidence=2).fit(["a", "b"], ["x", "y"])
    with pytest.raises(NotFittedError):
        TagClassifier(embedder).predict(["x"])


def test_save_load_round_trip(multilabel, split, tmp_path, embedder):
    _, _, _, xte = split
    path = multilabel.save(tmp_path / "m", metrics={"micro_f1": 0.9}, description="areas")
    assert {p.name for p in path.iterdir()} == {"config.json", "weights.npz", "README.md"}
    card = (path / "README.md").read_text()
    assert "micro_f1 | 0.9000" in card and "Platt" in card
    loaded = TagClassifier.load(path, embedder=embedder)
    np.testing.assert_array_equal(loaded.predict_proba(xte).to_numpy(), multilabel.predict_proba(xte).to_numpy())
    assert loaded.predict(xte).tolist() == multilabel.predict(xte).tolist()
    assert loaded.taxonomy == multilabel.taxonomy


def test_load_detects_tampering_and_mismatch(multiclass, tmp_path, hash_embedder):
    path = multiclass.save(tmp_path / "m")
    with pytest.raises(ModelMismatchError, match="built on embeddings of all-MiniLM-L6-v2"):
        TagClassifier.load(path, embedder=hash_embedder)
    data = bytearray((path / "weights.npz").read_bytes())
    data[-200] ^= 0xFF
    (path / "weights.npz").write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="checksum"):
        TagClassifier.load(path)
    with pytest.raises(ModelNotFoundError, match="no tag model"):
        TagClassifier.load(tmp_path / "nothing-here")


def test_precomputed_embeddings_dimension_mismatch(multiclass):
    with pytest.raises(ModelMismatchError, match="384"):
        multiclass.predict(np.zeros((2, 10), dtype=np.float32))


def test_label_quality_helpers(split, embedder):
    tr, te, xtr, xte = split
    labels = tr["request_type"].to_numpy().copy()
    flipped = np.arange(0, 60, 3)
    labels[flipped] = np.where(labels[flipped] == "bug", "praise", "bug")
    clf = TagClassifier(embedder)
    issues = clf.find_label_issues(xtr, labels)
    found = set(issues["index"]) & set(flipped)
    assert len(found) >= 0.6 * len(flipped)  # most planted errors are found
    assert len(issues) < 0.1 * len(labels)  # without flagging the whole set
    clf.fit(xtr, tr["request_type"])
    sug = clf.suggest_for_labeling(te["text"].tolist(), n=10)
    assert len(sug) == 10 and sug["index"].is_unique
    assert sug["uncertainty"].mean() > np.mean(1 - np.sort(clf.predict_proba(xte).to_numpy(), axis=1)[:, -1])


def test_deterministic_fit(split, embedder):
    tr, _, xtr, _ = split
    a = TagClassifier(embedder, random_state=3).fit(xtr[:500], tr["product_area"][:500], sep="|")
    b = TagClassifier(embedder, random_state=3).fit(xtr[:500], tr["product_area"][:500], sep="|")
    np.testing.assert_array_equal(a.coef_, b.coef_)
    np.testing.assert_array_equal(a.thresholds_, b.thresholds_)


def test_sklearn_clone_and_params(multiclass):
    from sklearn.base import clone

    c = clone(multiclass)
    assert c.get_params()["C"] == multiclass.C and not hasattr(c, "classes_")


def test_finetune_head_small(tmp_path):
    from feedback_nlp import Embedder

    texts = ["the app crashes on start", "crash when opening a file", "it freezes and crashes",
             "please add dark mode", "we would love a dark theme", "add an export to excel",
             "how do I invite my team?", "where can I download invoices?", "is SSO included?"] * 2
    labels = ["bug"] * 3 + ["feature_request"] * 3 + ["question"] * 3
    labels = labels * 2
    clf = TagClassifier(Embedder(cache=None, backend="torch"), head="finetune", finetune_epochs=1, cv=2).fit(texts, labels)
    path = clf.save(tmp_path / "ft")
    assert (path / "encoder" / "model.safetensors").exists()
    assert TagClassifier.load(path).embedder_.base_model_id.startswith("encoder@")  # the fine-tuned encoder
    loaded = TagClassifier.load(path, embedder=Embedder(path / "encoder", cache=None, backend="torch"))
    assert loaded.embedder_.model_id != Embedder(cache=None, backend="torch").model_id
    np.testing.assert_allclose(loaded.predict_proba(texts).to_numpy(), clf.predict_proba(texts).to_numpy(), atol=1e-5)
