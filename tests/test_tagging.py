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
    assert {p.name for p in path.iterdir()} == {"config.json", "weights.npz", "README.md", "manifest.json"}
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
    # the embedder and taxonomy are shared, not deep-copied (a copied Embedder reloads its weights)
    assert c.embedder is multiclass.embedder and c.taxonomy is multiclass.taxonomy


def test_finetune_head_small(tmp_path):
    from feedback_nlp import Embedder

    texts = ["the app crashes on start", "crash when opening a file", "it freezes and crashes",
             "please add dark mode", "we would love a dark theme", "add an export to excel",
             "how do I invite my team?", "where can I download invoices?", "is SSO included?"] * 2
    labels = ["bug"] * 3 + ["feature_request"] * 3 + ["question"] * 3
    labels = labels * 2
    clf = TagClassifier(Embedder(cache=None, backend="torch"), head="finetune", finetune_epochs=1, cv=2).fit(texts, labels)
    path = clf.save(tmp_path / "ft")
    assert (path / "adapter.npz").exists() and not (path / "encoder").exists()  # LoRA: no 90 MB encoder
    assert TagClassifier.load(path).embedder_.base_model_id.startswith("encoder@")  # the fine-tuned encoder
    loaded = TagClassifier.load(path, embedder=Embedder(cache=None, backend="torch"))  # merged over this base
    assert loaded.embedder_.model_id != Embedder(cache=None, backend="torch").model_id
    np.testing.assert_allclose(loaded.predict_proba(texts).to_numpy(), clf.predict_proba(texts).to_numpy(), atol=1e-5)


# --- scikit-learn citizenship (issue #14), on fast hashed-word embeddings -------------------------------

_VOCAB = {"bug": "crash error broken fails freeze", "feature": "please add wish would love option",
          "question": "how where what can does", "praise": "great love awesome thanks nice"}


def _texts(classes, n=20, seed=0):
    rng = np.random.default_rng(seed)
    noise = ["the", "a", "app", "it", "my", "on", "to", "with", "and", "for"]
    texts, labels = [], []
    for c in classes:
        words = _VOCAB[c].split()
        for _ in range(n):
            texts.append(" ".join(rng.choice(words, 3).tolist() + rng.choice(noise, 3).tolist()))
            labels.append(c)
    return texts, labels


def test_is_a_sklearn_classifier_and_cross_val_score_stratifies(hash_embedder):
    from sklearn.base import is_classifier
    from sklearn.model_selection import cross_val_score

    texts, labels = _texts(["bug", "feature", "question"])  # sorted by class: unstratified folds miss classes
    clf = TagClassifier(hash_embedder, cv=3)
    assert is_classifier(clf)
    scores = cross_val_score(clf, texts, labels, cv=3)
    assert scores.min() > 0.8


@pytest.mark.parametrize("classes", [["bug", "feature"], ["bug", "feature", "question"]])
def test_probability_scorers_work(hash_embedder, classes):
    from sklearn.model_selection import cross_val_score

    texts, labels = _texts(classes)
    clf = TagClassifier(hash_embedder, cv=2)
    for scoring in ("neg_log_loss", "roc_auc" if len(classes) == 2 else "roc_auc_ovr"):
        assert np.isfinite(cross_val_score(clf, texts, labels, cv=3, scoring=scoring, error_score="raise")).all()
    P = clf.fit(texts, labels).predict_proba(texts)
    np.testing.assert_array_equal(P[:, 1], P[clf.classes_[1]].to_numpy())  # named columns and array slicing


@pytest.mark.parametrize("classes", [["bug", "feature"], ["bug", "feature", "question"]])
def test_calibrated_classifier_cv_works(hash_embedder, classes):
    from sklearn.calibration import CalibratedClassifierCV

    texts, labels = _texts(classes)
    cal = CalibratedClassifierCV(TagClassifier(hash_embedder, cv=2), cv=3).fit(texts, labels)
    P = cal.predict_proba(texts)
    assert P.shape == (len(texts), len(classes))
    assert (cal.predict(texts) == np.array(labels)).mean() > 0.9


def test_binary_problem_fits_with_1d_decision_function(hash_embedder):
    texts, labels = _texts(["bug", "feature"])
    clf = TagClassifier(hash_embedder).fit(texts, labels)
    assert clf.classes_.tolist() == ["bug", "feature"]
    assert (clf.predict(texts) == np.array(labels)).mean() > 0.9
    z = clf.decision_function(texts)
    assert z.shape == (len(texts),)
    assert ((z > 0) == (clf.predict(texts) == "feature")).all()  # positive means classes_[1]
    P = clf.predict_proba(texts).to_numpy()
    np.testing.assert_allclose(P.sum(axis=1), 1, atol=1e-6)


@pytest.mark.parametrize("kind", ["bool", "int", "str", "numpy-int", "float"])
def test_label_types_are_kept(hash_embedder, kind):
    from sklearn.metrics import accuracy_score

    texts, names = _texts(["bug", "feature", "question"] if kind != "bool" else ["bug", "feature"])
    order = sorted(set(names))
    convert = {"bool": lambda n: n == "bug", "int": lambda n: order.index(n) * 10,
               "str": lambda n: n, "numpy-int": lambda n: np.int64(order.index(n)), "float": lambda n: float(order.index(n))}
    y = [convert[kind](n) for n in names]
    clf = TagClassifier(hash_embedder).fit(texts, np.array(y) if kind == "numpy-int" else y)
    expected_dtype = {"bool": "b", "int": "i", "numpy-int": "i", "float": "f", "str": "O"}[kind]
    assert clf.classes_.dtype.kind == expected_dtype
    pred = clf.predict(texts)
    assert pred.dtype == clf.classes_.dtype
    assert accuracy_score(y, pred) > 0.9  # no "Mix of label input types"
    assert set(pred.tolist()) <= set(clf.classes_.tolist())
    assert clf.score(texts, y) == pytest.approx(accuracy_score(y, pred))
    report = clf.evaluate(texts, y)
    assert set(report.per_tag["tag"]) == set(clf.classes_.tolist())


def test_int_labels_survive_save_and_load(hash_embedder, tmp_path):
    texts, names = _texts(["bug", "feature", "question"])
    y = [{"bug": 3, "feature": 7, "question": 11}[n] for n in names]
    clf = TagClassifier(hash_embedder).fit(texts, y)
    loaded = TagClassifier.load(clf.save(tmp_path / "m"), embedder=hash_embedder)
    assert loaded.classes_.tolist() == [3, 7, 11] and loaded.classes_.dtype.kind == "i"
    assert loaded.predict(texts).tolist() == clf.predict(texts).tolist()


def test_bad_label_types_are_refused(hash_embedder):
    texts, _ = _texts(["bug", "feature"], n=2)
    with pytest.raises(InvalidInputError, match="mix types"):
        TagClassifier(hash_embedder).fit(texts, ["a", 1, "a", 1])
    with pytest.raises(InvalidInputError, match="continuous"):
        TagClassifier(hash_embedder).fit(texts, [0.5, 1.5, 0.5, 1.5])
    with pytest.raises(InvalidInputError, match="tag ids"):
        TagClassifier(hash_embedder, Taxonomy.load(sample_taxonomy_path())).fit(texts, [1, 2, 1, 2])


def test_outputs_keep_the_input_index(hash_embedder):
    import pandas as pd

    texts, labels = _texts(["bug", "feature", "question"])
    clf = TagClassifier(hash_embedder).fit(texts, labels)
    s = pd.Series(texts[::7], index=[f"r{i}" for i in range(len(texts[::7]))][::-1])
    for X in (s, s.to_frame("text")):
        assert clf.predict_proba(X).index.equals(s.index)
        out = clf.tag(X)
        assert out.index.equals(s.index)
        # joining back onto the frame aligns rows, instead of misaligning by position
        joined = s.to_frame("text").join(out)
        assert (joined["tags"].map(lambda t: t[0]) == pd.Series(clf.predict(s), index=s.index)).all()
    assert clf.tag(texts[:3]).index.tolist() == [0, 1, 2]


def test_not_fitted_error_is_sklearns(hash_embedder):
    import sklearn.exceptions

    with pytest.raises(sklearn.exceptions.NotFittedError):
        TagClassifier(hash_embedder).predict(["x"])
    assert issubclass(NotFittedError, sklearn.exceptions.NotFittedError)


def test_empty_single_example_and_non_finite_inputs(hash_embedder, taxonomy):
    texts, labels = _texts(["bug", "feature"], n=5)
    with pytest.raises(InvalidInputError, match="empty"):
        TagClassifier(hash_embedder).fit([], [])
    with pytest.raises(InvalidInputError, match="single example"):
        TagClassifier(hash_embedder).fit(texts + ["how do I?"], labels + ["question"])
    with pytest.raises(InvalidInputError, match="single example"):
        TagClassifier(hash_embedder).fit(texts[:6], [["bug"]] * 5 + [["bug", "feature"]])
    emb = hash_embedder.encode(texts)
    bad = emb.copy()
    bad[3, 0] = np.nan
    with pytest.raises(InvalidInputError, match=r"NaN or infinity in rows \[3\]"):
        TagClassifier(hash_embedder).fit(bad, labels)
    clf = TagClassifier(hash_embedder).fit(emb, labels)
    bad[3, 0] = np.inf
    with pytest.raises(InvalidInputError, match="NaN or infinity"):
        clf.predict(bad)
    with pytest.raises(InvalidInputError, match="empty"):
        clf.predict([])
    with pytest.raises(InvalidInputError, match="empty"):
        clf.tag(np.zeros((0, hash_embedder.dim), dtype=np.float32))
    with pytest.raises(InvalidInputError, match=r"rows \[1\] are not text"):
        clf.predict(["fine", None])

    class NaNEmbedder(type(hash_embedder)):
        def encode(self, texts):
            out = super().encode(texts)
            out[0] = np.nan
            return out

    with pytest.raises(InvalidInputError, match="embedder's vectors contain NaN"):
        TagClassifier(NaNEmbedder()).fit(texts, labels)


def test_parameters_are_validated_in_fit(hash_embedder):
    texts, labels = _texts(["bug", "feature"], n=4)
    for params, name in [({"C": 0}, "C"), ({"head": "svm"}, "head"), ({"cv": 1}, "cv"),
                         ({"random_state": -1}, "random_state"), ({"multi_label": "yes"}, "multi_label"),
                         ({"min_confidence": 1.5}, "min_confidence"), ({"taxonomy": "taxonomy.yaml"}, "taxonomy")]:
        clf = TagClassifier(hash_embedder, **params)  # __init__ stores, fit validates
        with pytest.raises(InvalidInputError, match=f"TagClassifier: {name} must be"):
            clf.fit(texts, labels)
    with pytest.raises(InvalidInputError, match="holdout"):
        TagClassifier(hash_embedder).fit(texts, labels, holdout=1.5)


def test_one_head_interface_for_every_mode(multiclass, multilabel, taxonomy, embedder):
    from feedback_nlp._heads import Head, MultiClassHead, MultiLabelHead, ZeroShotHead

    zs = TagClassifier(embedder, taxonomy, zero_shot=True).fit(None)
    for clf, kind in ((multiclass, MultiClassHead), (multilabel, MultiLabelHead), (zs, ZeroShotHead)):
        assert isinstance(clf.head_, kind) and isinstance(clf.head_, Head)
        assert clf.head_.multi_label == clf.multi_label_
        assert "prototypes_" not in vars(clf) and "coef_" not in vars(clf)  # learned arrays live on the head
    assert zs.prototypes_.shape[0] == len(zs.classes_)


def test_holdout_metrics_fill_the_model_card(hash_embedder, tmp_path):
    texts, labels = _texts(["bug", "feature", "question"], n=20)
    clf = TagClassifier(hash_embedder).fit(texts, labels, holdout=0.25)
    assert clf.holdout_report_.n == 15  # 25% of each tag's 20 rows, stratified
    assert clf.metrics_["accuracy"] == pytest.approx(clf.holdout_report_.accuracy)
    card = (clf.save(tmp_path / "m") / "README.md").read_text()
    assert f"accuracy | {clf.holdout_report_.accuracy:.4f}" in card
    assert "Measured on: held-out stratified 25% (15 rows)" in card
    # the final model is trained on every row, not the 75%
    full = TagClassifier(hash_embedder).fit(texts, labels)
    np.testing.assert_array_equal(clf.coef_, full.coef_)
    # no holdout: the card says so instead of showing someone else's numbers
    card = (full.save(tmp_path / "n") / "README.md").read_text()
    assert "No evaluation was recorded" in card
    with pytest.raises(InvalidInputError, match="no row to evaluate"):
        TagClassifier(hash_embedder).fit(texts[:4] + texts[20:24], labels[:4] + labels[20:24], holdout=0.1)


def test_bundled_model_still_loads_and_tags():
    clf = TagClassifier.load("request-type")
    assert clf.classes_.dtype == object and "bug" in clf.classes_.tolist()
    out = clf.tag(["The app crashes every time I open the settings page"])
    assert out["tags"][0][0] == "bug"


def test_careless_inputs_get_clear_errors(hash_embedder):
    import pandas as pd

    texts, labels = _texts(["bug", "feature"], n=4)
    with pytest.raises(InvalidInputError, match="y must be a sequence of labels, got str"):
        TagClassifier(hash_embedder).fit(texts, "bug")
    with pytest.raises(InvalidInputError, match=r"rows \[2\] have no label"):
        TagClassifier(hash_embedder).fit(texts, labels[:2] + [None] + labels[3:])
    with pytest.raises(InvalidInputError, match="not a DataFrame"):
        TagClassifier(hash_embedder).fit(texts, pd.DataFrame({"a": labels, "b": labels}))
    with pytest.raises(InvalidInputError, match="not a tag"):
        TagClassifier(hash_embedder).fit(texts, [{"tag": "bug"}] * len(texts))
    clf = TagClassifier(hash_embedder).fit(texts, labels)
    with pytest.raises(InvalidInputError, match="2 columns"):
        clf.predict(pd.DataFrame({"text": texts, "other": texts}))
    with pytest.raises(InvalidInputError, match="ids has 1 values for 8 rows"):
        clf.tag(texts, ids=["only-one"])
    with pytest.raises(InvalidInputError, match="Reshape your data"):
        clf.predict(np.zeros(hash_embedder.dim, dtype=np.float32))
    with pytest.raises(InvalidInputError, match="sparse"):
        from scipy import sparse

        clf.predict(sparse.csr_matrix(np.zeros((2, hash_embedder.dim))))
    # a one-column DataFrame of texts is texts, and a single string is one row
    assert clf.predict(pd.DataFrame({"text": texts})).tolist() == clf.predict(texts).tolist()
    assert len(clf.predict(texts[0])) == 1


def test_decision_function_shapes(hash_embedder):
    texts, labels = _texts(["bug", "feature", "question"])
    clf = TagClassifier(hash_embedder).fit(texts, labels)
    z = clf.decision_function(texts)
    assert z.shape == (len(texts), 3)
    assert (clf.classes_[z.argmax(axis=1)] == clf.predict(texts)).all()


def test_bools_and_ints_are_not_merged(hash_embedder):
    texts, _ = _texts(["bug", "feature"], n=2)
    with pytest.raises(InvalidInputError, match="mix types"):
        TagClassifier(hash_embedder).fit(texts, [True, False, 1, 0])  # True == 1 in a Python set


def test_label_issues_of_multi_label_rows_never_suggest_a_given_tag(hash_embedder):
    texts, names = _texts(["bug", "feature", "question"], n=20)
    labels = [[n] for n in names]
    for i in range(0, 60, 4):  # every 4th row also carries a second, unrelated tag
        labels[i] = [names[i], "question" if names[i] != "question" else "bug"]
    issues = TagClassifier(hash_embedder, cv=3).find_label_issues(texts, labels, method="builtin")
    # every tag is judged (round 14): ``suggested`` is the row's corrected tag set, never the given one, and the
    # unrelated second tags are what it removes (it was one suggested tag, never one the row already held)
    assert all(set(s.split("|")) != set(g.split("|")) for g, s in zip(issues["given"], issues["suggested"]))
    removed = {i for i, g, s in zip(issues["index"], issues["given"], issues["suggested"])
               if len(g.split("|")) == 2 and s == g.split("|")[0]}
    assert len(removed) >= 5 and removed <= set(range(0, 60, 4))
    flipped = [5, 25, 45]
    for i in flipped:
        labels[i] = ["feature"] if names[i] != "feature" else ["bug"]
    issues = TagClassifier(hash_embedder, cv=3).find_label_issues(texts, labels, method="builtin")
    assert set(flipped) <= set(issues["index"])
