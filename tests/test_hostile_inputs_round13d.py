"""Round 13d: the data scientist's scikit-learn habits (``fit(..., sample_weight=...)`` routed by Pipeline,
GridSearchCV and cross_val_score, metadata routing) and label issues attacked as a user would."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from conftest import HashEmbedder
from feedback_nlp import InvalidInputError
from feedback_nlp.tagging import TagClassifier

WORDS = {"bug": "crash error broken fails freeze", "feature": "please add feature wish would",
         "question": "how do i where question"}


def _data(per_tag: int = 12, seed: int = 0):
    rng = np.random.default_rng(seed)
    X, y = [], []
    for tag, words in WORDS.items():
        pool = words.split()
        for i in range(per_tag):
            X.append(" ".join(rng.choice(pool, 3)) + f" r{i} {tag}x{i % 4}")
            y.append(tag)
    return X, y


@pytest.fixture
def data():
    X, y = _data()
    w = np.random.default_rng(1).integers(0, 4, len(X)).astype(float)
    w[[0, 12, 24]] = 2.0  # every tag keeps some weight
    return X, y, w


# --- sample_weight ------------------------------------------------------------------------------------


def test_integer_weights_equal_repeated_rows(data):
    X, y, w = data
    emb = HashEmbedder()
    weighted = TagClassifier(emb).fit(X, y, sample_weight=w)
    rep = np.repeat(np.arange(len(X)), w.astype(int))
    repeated = TagClassifier(emb).fit([X[i] for i in rep], [y[i] for i in rep])
    np.testing.assert_allclose(weighted.head_.coef_, repeated.head_.coef_, atol=1e-4)
    np.testing.assert_allclose(weighted.head_.intercept_, repeated.head_.intercept_, atol=1e-4)
    plain = TagClassifier(emb).fit(X, y)
    assert np.abs(plain.head_.coef_ - weighted.head_.coef_).max() > 0.05  # the weights were not ignored
    # a weight of 0 is a row left out
    keep = w > 0
    dropped = TagClassifier(emb, lexical=False).fit([x for x, k in zip(X, keep) if k], [t for t, k in zip(y, keep) if k],
                                                    sample_weight=w[keep])
    zeroed = TagClassifier(emb, lexical=False).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(zeroed.head_.coef_, dropped.head_.coef_, atol=1e-4)


def test_weights_reach_the_calibration_and_the_words(monkeypatch, data):
    import feedback_nlp._heads as heads
    import feedback_nlp._lexical as lexical

    X, y, w = data
    seen = {}
    real_temperature, real_fuse = heads._fit_temperature, lexical.fuse_weight

    def temperature(logits, yy, sample_weight=None):
        seen["temperature"] = sample_weight
        return real_temperature(logits, yy, sample_weight)

    def fuse(h, lx, yy, sample_weight=None):
        seen["fusion"] = sample_weight
        return real_fuse(h, lx, yy, sample_weight)

    monkeypatch.setattr(heads, "_fit_temperature", temperature)
    monkeypatch.setattr(lexical, "fuse_weight", fuse)
    TagClassifier(HashEmbedder()).fit(X, y, sample_weight=w)
    np.testing.assert_array_equal(seen["temperature"], w)
    np.testing.assert_array_equal(seen["fusion"], w)


def test_multi_label_weights_reach_platt_and_thresholds(monkeypatch, data):
    import feedback_nlp._heads as heads

    X, y, w = data
    Y = [[t] + (["urgent"] if i % 3 == 0 else []) for i, t in enumerate(y)]
    calls = []
    real = heads._platt
    monkeypatch.setattr(heads, "_platt", lambda s, t, sw=None: calls.append(sw) or real(s, t, sw))
    clf = TagClassifier(HashEmbedder(), lexical=False).fit(X, Y, sample_weight=w)
    assert calls and all(c is not None and np.array_equal(c, w) for c in calls)
    assert clf.multi_label_


def test_weighted_best_f1_threshold_counts_rows():
    from feedback_nlp.evaluation import best_f1_threshold

    s, t = np.array([0.9, 0.8, 0.7, 0.6, 0.5]), np.array([1, 0, 1, 0, 1])
    w = np.array([2, 1, 0, 3, 1])
    rep = np.repeat(np.arange(5), w)
    assert best_f1_threshold(s, t, sample_weight=w)[1]["f1"] == pytest.approx(best_f1_threshold(s[rep], t[rep])[1]["f1"])


@pytest.mark.parametrize("bad, message", [
    ([1.0, 2.0], "has 2 values but X has 36 rows"),
    ("heavy", "one number per row"),
    ({"a": 1}, "one number per row"),
    (np.ones((36, 1)), "1-D"),
    (["x"] * 36, "must hold numbers"),
    ([-1.0] + [1.0] * 35, "row 0 is -1.0"),
    ([1.0] * 35 + [float("nan")], "row 35 is nan"),
    ([1.0] * 35 + [float("inf")], "row 35 is inf"),
    ([0] * 36, "zero for every row"),
    ([True] * 36, "booleans"),
    (-1, "non-negative"),
    ([1e-300] * 36, "float32's range"),  # was scikit-learn's "at least one non-zero number" from a fold
    ([1.0] * 35 + [1e300], "row 35 is 1e\\+300"),  # was scikit-learn's "infinity or a value too large"
])
def test_sample_weight_is_validated(data, bad, message):
    X, y, _ = data
    with pytest.raises(InvalidInputError, match=message):
        TagClassifier(HashEmbedder()).fit(X, y, sample_weight=bad)


def test_a_tag_weighted_zero_everywhere_is_refused(data):
    X, y, _ = data
    w = np.ones(len(X))
    w[12:24] = 0  # every "feature" row
    with pytest.raises(InvalidInputError, match="'feature'.*sample_weight 0.*class"):
        TagClassifier(HashEmbedder()).fit(X, y, sample_weight=w)


def test_a_weight_series_in_another_order_is_refused(data):
    X, y, w = data
    Xs = pd.Series(X, index=range(100, 136))
    with pytest.raises(InvalidInputError, match="sample_weight"):
        TagClassifier(HashEmbedder()).fit(Xs, y, sample_weight=pd.Series(w, index=Xs.index[::-1]))
    clf = TagClassifier(HashEmbedder(), lexical=False).fit(Xs, y, sample_weight=pd.Series(w, index=Xs.index))
    assert clf._sample_weight_["rows"] == 36


@pytest.mark.parametrize("params, named", [
    ({"head": "finetune"}, "head='finetune'"),
    ({"head": "contrastive"}, "head='contrastive'"),
    ({"head": "auto"}, "head='auto'"),
    ({"zero_shot": True}, "zero_shot=True"),
    ({"self_train": True}, "self_train=True"),
])
def test_heads_that_cannot_weigh_rows_refuse_weights(data, params, named):
    X, y, w = data
    with pytest.raises(InvalidInputError, match=f"sample_weight is not supported with {named}"):
        TagClassifier(HashEmbedder(), **params).fit(X, y, sample_weight=w)


def test_weights_are_routed_by_pipeline_grid_search_and_cross_val_score(data):
    X, y, w = data
    emb = HashEmbedder()
    grid = GridSearchCV(TagClassifier(emb, cv=2, lexical=False), {"C": [1.0, 10.0]}, cv=3).fit(X, y, sample_weight=w)
    assert grid.best_estimator_._sample_weight_["total"] == pytest.approx(w.sum())
    pipe = Pipeline([("same", FunctionTransformer(lambda v: v)), ("clf", TagClassifier(emb, lexical=False))])
    pipe.fit(X, y, clf__sample_weight=w)
    assert pipe[-1]._sample_weight_["rows"] == len(X)
    assert len(cross_val_score(TagClassifier(emb, cv=2, lexical=False), X, y, cv=3, params={"sample_weight": w})) == 3


def test_metadata_routing_requests_the_weights(data):
    X, y, w = data
    emb = HashEmbedder()
    with sklearn.config_context(enable_metadata_routing=True):
        est = TagClassifier(emb, cv=2, lexical=False).set_fit_request(sample_weight=True)
        est = est.set_score_request(sample_weight=True)
        scores = cross_val_score(est, X, y, cv=3, params={"sample_weight": w})
        assert len(scores) == 3
        grid = GridSearchCV(est, {"C": [1.0, 10.0]}, cv=3).fit(X, y, sample_weight=w)
        assert grid.best_estimator_._sample_weight_ is not None


def test_weighted_score_is_weighted_accuracy(data):
    X, y, w = data
    clf = TagClassifier(HashEmbedder(), lexical=False).fit(X, y)
    truth = ["bug"] * 36  # right on the bug rows only
    right = np.array([t == "bug" for t in clf.predict(X)])
    assert clf.score(X, truth) == pytest.approx(right.mean())
    assert clf.score(X, truth, sample_weight=w) == pytest.approx(np.average(right, weights=w))
    with pytest.raises(InvalidInputError, match="non-negative"):
        clf.score(X, truth, sample_weight=-w)


def test_weighted_model_saves_loads_clones_and_says_so(tmp_path, data):
    X, y, w = data
    emb = HashEmbedder()
    clf = TagClassifier(emb).fit(X, y, sample_weight=w, holdout=0.25)
    assert "sample_weight" not in clf.get_params()
    fresh = clone(clf)
    assert "_sample_weight_" not in fresh.__dict__ and fresh.get_params() == clf.get_params()
    folder = clf.save(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    assert config["sample_weight"]["total"] == pytest.approx(w.sum())
    assert config["sample_weight"]["zero_rows"] == int((w == 0).sum())
    card = (folder / "README.md").read_text()
    assert "Trained with sample weights" in card and f"{int((w == 0).sum())} rows weighted 0" in card
    loaded = TagClassifier.load(folder, embedder=emb)
    np.testing.assert_allclose(loaded.predict_proba(X).to_numpy(), clf.predict_proba(X).to_numpy(), atol=1e-5)
    assert loaded._sample_weight_ == clf._sample_weight_
    # a refit without weights forgets them, and its card says nothing of weights
    clf.fit(X, y)
    assert "_sample_weight_" not in clf.__dict__
    assert "sample weights" not in (clf.save(tmp_path / "plain") / "README.md").read_text()


# --- EvaluationReport.to_markdown -----------------------------------------------------------------------


def test_markdown_report_shows_tags_as_text_not_markup():
    MarkdownIt = pytest.importorskip("markdown_it").MarkdownIt

    from feedback_nlp.evaluation import evaluate_predictions

    tags = ["<img src=x onerror=alert(1)>", "*urgent*", "[docs](http://evil)", "feature_request", "__init__", "a|b",
            "&lt;b&gt;", "~~gone~~"]
    truth = tags * 2
    pred = tags + tags[1:] + tags[:1]  # confusions too
    md = evaluate_predictions(truth, pred, classes=tags).to_markdown()
    html = MarkdownIt("commonmark").enable("table").enable("strikethrough").render(md)
    assert "<img" not in html and "<em>" not in html and "<strong>" not in html and "<a " not in html
    assert "<s>" not in html and "<del>" not in html
    import html as entities
    import re

    cells = {entities.unescape(c) for c in re.findall(r"<td>(.*?)</td>", html)}
    assert set(tags) <= cells  # every tag reads back as the text it is
    assert "| feature_request |" in md  # an underscore inside a word stays unescaped


# --- find_label_issues ----------------------------------------------------------------------------------

_BAD_COPIES = ["app crashes error broken"] * 3  # a bug report, labelled feature three times


@pytest.mark.parametrize("method", ["builtin", "cleanlab"])
def test_a_tag_of_one_text_no_longer_lets_mislabelled_copies_vouch_for_each_other(method):
    if method == "cleanlab":
        pytest.importorskip("cleanlab")
    X, y = _data(10)
    X, y = X + _BAD_COPIES + ["great app love it"] * 2, y + ["feature"] * 3 + ["praise"] * 2
    with pytest.warns(UserWarning, match="'praise'.*fewer than 2 distinct texts"):
        issues = TagClassifier(HashEmbedder()).find_label_issues(X, y, method=method)
    # was []: the one-text tag "praise" dropped the grouping of copies for every tag, so the three copies
    # shared folds and each was predicted "feature" by the others
    assert {30, 31, 32} <= set(issues["index"])
    assert not {33, 34} & set(issues["index"])  # the unjudged tag's rows are not listed


def test_a_tag_with_a_single_example_does_not_stop_the_search():
    X, y = _data(10)
    X, y = X + _BAD_COPIES + ["typo tag row"], y + ["feature"] * 3 + ["bgu"]
    with pytest.warns(UserWarning, match="'bgu'"):  # was InvalidInputError: a single example
        issues = TagClassifier(HashEmbedder()).find_label_issues(X, y, method="builtin")
    assert {30, 31, 32} <= set(issues["index"]) and 33 not in set(issues["index"])
    with pytest.raises(InvalidInputError, match="at least 2 tags with 2 or more distinct texts"):
        TagClassifier(HashEmbedder()).find_label_issues(X[:10] + ["x y", "x y"], y[:10] + ["other", "other"])


def test_label_issues_are_out_of_fold_and_deterministic():
    X, y = _data(10)
    y = list(y)
    y[0] = "feature"  # a bug report labelled feature
    clf = TagClassifier(HashEmbedder())
    a = clf.find_label_issues(X, y, method="builtin")
    b = TagClassifier(HashEmbedder()).find_label_issues(list(X), list(y), method="builtin")
    pd.testing.assert_frame_equal(a, b)
    assert a["index"].tolist()[0] == 0 and a["suggested"].iloc[0] == "bug"
    # in sample, the model that trained on the wrong label would give it far more weight
    inside = TagClassifier(HashEmbedder(), lexical=False).fit(X, y).predict_proba(X[:1])["feature"].iloc[0]
    assert a["p_given"].iloc[0] < inside


def test_calibration_folds_keep_copies_together_beside_a_tag_of_one_text():
    from feedback_nlp._heads import FitSettings

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 8)).astype(np.float32)
    y = np.array([0] * 18 + [1] * 18 + [2] * 4)
    X[36:40] = X[36]  # tag 2 is one text, four times
    X[[1, 2, 3]] = X[0]  # a tag-0 text repeated
    splits = list(FitSettings(cv=3).folds(y, X))
    assert len(splits) == 3
    # was the plain split for every tag: the copies of row 0 answered each other in the out-of-fold logits
    assert any({0, 1, 2, 3} <= set(te) for _, te in splits)
    assert all(set(np.unique(y[tr])) == {0, 1, 2} for tr, _ in splits)  # the one-text tag is still trained on
