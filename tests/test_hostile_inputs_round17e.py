"""Round 17e: the data scientist's workflow — scikit-learn conventions of TagClassifier, and evaluation
figures that say what they measure."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from conftest import HashEmbedder
from feedback_nlp.errors import InvalidInputError
from feedback_nlp.evaluation import evaluate_predictions
from feedback_nlp.tagging import TagClassifier


def test_a_multi_label_reports_per_level_accuracy_is_named_subset_accuracy():
    """A multi-label report's per-level line read "level 1 accuracy" while the figure is subset accuracy (a row
    right at that depth only when every tag it has there is), as the headline line already says; a multi-class
    report keeps "accuracy"."""
    truth = [["feature", "feature.ui", "feature.api"], ["feature", "feature.ui"]]
    pred = [["feature", "feature.ui"], ["feature", "feature.ui"]]
    levels = {0: ([["feature"], ["feature"]], [["feature"], ["feature"]]),
              1: ([["feature.ui", "feature.api"], ["feature.ui"]], [["feature.ui"], ["feature.ui"]])}
    r = evaluate_predictions(truth, pred, classes=["feature", "feature.ui", "feature.api"], multi_label=True,
                             levels=levels)
    assert r.per_level[1]["accuracy"] == 0.5 and r.per_level[1]["micro_f1"] == 0.8  # 2 of 3 true tags found, none wrong
    md = r.to_markdown()
    assert "| level 1 subset accuracy / macro F1 (2 rows with a tag there) | 0.5000 / " in md
    assert "level 1 accuracy" not in md
    single = evaluate_predictions([["a"], ["b"]], [["a"], ["a"]], classes=["a", "b"],
                                  levels={0: ([["a"], ["b"]], [["a"], ["a"]])})
    assert "| level 0 accuracy / macro F1 (2 rows with a tag there) | 0.5000 / " in single.to_markdown()


TEXTS = ["crash on start", "app crashes on save", "crash after update", "it crashed again",
         "please add dark mode", "add export to csv", "would love a dark theme", "add sso login"]
LABELS = ["bug"] * 4 + ["feature"] * 4


@pytest.mark.parametrize("value", [5, -1, float("nan"), "0.5", None])
def test_min_confidence_set_after_fit_is_checked_before_predict_and_save(tmp_path, value):
    """``set_params(min_confidence=...)`` after fit took effect unchecked (prediction reads it): 5 sent every row
    to review, NaN none, "0.5" or None failed with numpy's UFuncTypeError / a TypeError, and save wrote a folder
    that load then refused. Now predict, tag and save name the parameter, as fit does."""
    clf = TagClassifier(HashEmbedder(), cv=2, random_state=0).fit(TEXTS, LABELS)
    clf.set_params(min_confidence=value)
    for call in (lambda: clf.predict(TEXTS[:2]), lambda: clf.tag(TEXTS[:2]), lambda: clf.save(tmp_path / "m")):
        with pytest.raises(InvalidInputError, match=r"min_confidence must be a float in \[0, 1\]"):
            call()
    assert not (tmp_path / "m").exists()
    clf.set_params(min_confidence=1.0)  # a valid value set after fit applies, and is saved
    assert clf.predict(["dark crash"]).tolist() == [None]
    assert TagClassifier.load(clf.save(tmp_path / "ok"), embedder=HashEmbedder()).min_confidence == 1.0


def test_find_label_issues_of_a_fitted_model_is_not_bound_to_its_fitted_width():
    """find_label_issues trains out-of-fold models of its own on the current embedder, but a fitted model refused
    another width ("this model was trained on 64 dimensions", a ModelMismatchError) after
    ``set_params(embedder=...)``. Now it answers as an unfitted clone does (predict keeps the fitted embedder)."""
    texts, labels = TEXTS * 2, LABELS * 2
    clf = TagClassifier(HashEmbedder(64), cv=2, random_state=0).fit(texts, labels)
    before = clf.predict(texts)
    clf.set_params(embedder=HashEmbedder(32))
    issues = clf.find_label_issues(texts, labels)
    fresh = TagClassifier(HashEmbedder(32), cv=2, random_state=0).find_label_issues(texts, labels)
    assert issues.equals(fresh)
    assert (clf.predict(texts) == before).all()


def test_score_weights_are_refused_in_terms_of_scoring_and_not_bound_to_float32():
    """``score(sample_weight=zeros)`` said "nothing would be learned", and a weight of 1e300 was refused as
    outside "float32's range (the embeddings' precision)": fit's checks, which scoring (a float64 average of
    the rows' being right) does not need. Now all-zero weights say no row would count, and large weights score
    as scikit-learn's accuracy_score weighs them."""
    from sklearn.metrics import accuracy_score

    clf = TagClassifier(HashEmbedder(), cv=2, random_state=0).fit(TEXTS, LABELS)
    texts, truth = ["dark crash", "crash on start", "add csv"], ["bug", "bug", "bug"]
    with pytest.raises(InvalidInputError, match="zero for every row: no row would count in the score"):
        clf.score(texts, truth, sample_weight=[0.0, 0.0, 0.0])
    w = [1e300, 1e300, 3e300]
    assert clf.score(texts, truth, sample_weight=w) == pytest.approx(
        accuracy_score(truth, clf.predict(texts), sample_weight=w))
    with pytest.raises(InvalidInputError, match="zero for every row: nothing would be learned"):
        TagClassifier(HashEmbedder(), cv=2).fit(TEXTS, LABELS, sample_weight=[0.0] * 8)


def test_a_refit_refused_for_its_parameters_leaves_the_fitted_model_whole(tmp_path):
    """A refit refused before training (``C=-1``, ``holdout=2``) had already forgotten the indicator columns and
    the trained parameters of the fitted model: predict answered lists of tag names ('0', '2') instead of the
    0/1 matrix it was fitted on, and save wrote C=-1 into a folder that load refused (IntegrityError). Now the
    model stays as it was until a refit gets past its checks."""
    Y = np.array([[1, 0, 0], [1, 0, 1]] * 2 + [[0, 1, 0], [0, 1, 1]] * 2)
    clf = TagClassifier(HashEmbedder(), cv=2, random_state=0).fit(TEXTS, Y)
    before = clf.predict(TEXTS)
    assert before.shape == (8, 3)
    clf.set_params(C=-1.0)
    with pytest.raises(InvalidInputError, match="C must be"):
        clf.fit(TEXTS, Y)
    with pytest.raises(InvalidInputError, match="holdout"):
        clf.set_params(C=10.0).fit(TEXTS, Y, holdout=2)
    clf.set_params(C=-1.0)
    assert np.array_equal(clf.predict(TEXTS), before)
    loaded = TagClassifier.load(clf.save(tmp_path / "m"), embedder=HashEmbedder())
    assert loaded.C == 10.0 and np.array_equal(loaded.predict(TEXTS), before)


def test_suggest_for_labeling_names_the_tag_predict_gives_first_on_a_multi_label_model():
    """``predicted`` was each suggested row's most probable tag, but a multi-label model tags a row with the tags
    that pass their own thresholds: with the most probable tag below its threshold and another above its own,
    predict named the other and suggest_for_labeling contradicted it. Now it names predict's first tag."""
    tags = [["bug", "export"], ["bug"], ["export"], ["bug", "login"]] * 2
    clf = TagClassifier(HashEmbedder(), cv=2, random_state=0, lexical=False).fit(TEXTS, tags)
    P = clf.predict_proba(TEXTS).to_numpy()
    top = int(P[0].argmax())
    clf.head_.thresholds_ = np.where(np.arange(P.shape[1]) == top, 0.999, 1e-4).astype(np.float32)
    first = [p[0] for p in clf.predict(TEXTS)]
    assert first[0] != clf.classes_[top]  # the case: the most probable tag is not predict's first
    s = clf.suggest_for_labeling(TEXTS, n=8)
    assert s["predicted"].tolist() == [first[i] for i in s["index"]]


def test_head_auto_measures_the_frozen_head_with_the_words_it_is_trained_with():
    """head="auto" scored the frozen head's folds on vectors alone, without the word channel (lexical=True) that
    the head it then trains reads (and that the fine-tuned candidates, fitted on texts, had in their folds): on
    150 rows of the sample the card's CV macro-F1 was 0.45 for a model whose folds score 0.65. Now the folds
    get the texts, and the figure is the cross-validated score of the model trained."""
    from feedback_nlp._head_select import _folds
    from feedback_nlp.datasets import load_sample
    from feedback_nlp.tagging import _repeat_groups, _Targets

    sample = load_sample()
    sample = sample[~sample["product_area"].str.contains("|", regex=False)].head(150)
    X, y = sample["text"].tolist(), sample["product_area"].tolist()
    clf = TagClassifier(HashEmbedder(), cv=3, head="auto", random_state=0).fit(X, y)
    measured = clf.head_selection_["candidates"][0]
    assert measured["head"] == "logreg" and clf.lexical_ is not None
    scores = []
    for train, test in _folds(_Targets(y, None, None).primary, 3, 0, _repeat_groups(X, X)):
        fold = TagClassifier(HashEmbedder(), cv=3, random_state=0).fit([X[i] for i in train], [y[i] for i in train])
        scores.append(fold._evaluate([X[i] for i in test], [y[i] for i in test], None, None, stacklevel=2).macro_f1)
    assert measured["cv_macro_f1"] == round(float(np.mean(scores)), 4)


def test_a_multi_label_holdout_keeps_two_training_rows_of_every_tag():
    """The holdout split stratifies by each row's first tag: a tag that only came second ("login", 2 rows) could
    be held out whole, so the copy evaluated for the card never learned it, fit warned that rows had tags "this
    model was not trained on" (the saved model is), and the card scored them as missed. Now held-out rows go
    back to training until every tag keeps 2 there; a tag left without a held-out row is named as unmeasured."""
    tags = [["bug", "export"], ["bug"], ["export"], ["bug", "login"]] * 2
    with pytest.warns(UserWarning, match=r"not measured by these figures: \['login'\]"):
        clf = TagClassifier(HashEmbedder(), cv=2, random_state=0).fit(TEXTS, tags, holdout=0.5)
    assert clf.holdout_report_.unknown_tags == []
    assert "login" not in clf.holdout_report_.per_tag.query("support > 0")["tag"].tolist()


def test_the_card_states_the_share_actually_held_out():
    """holdout=0.99 on 8 rows holds out 4 (every tag keeps 2 training rows), but the card said "held-out
    stratified 99% (4 rows)". Now a share far from the asked one is stated as held out, with the reason."""
    clf = TagClassifier(HashEmbedder(), cv=2, random_state=0).fit(TEXTS, LABELS, holdout=0.99)
    assert clf.metrics_["evaluation"].startswith("held-out stratified 50% (4 of 8 rows; 99% was asked, but every "
                                                 "tag keeps 2 rows for training)")
    exact = TagClassifier(HashEmbedder(), cv=2, random_state=0).fit(TEXTS, LABELS, holdout=0.5)
    assert exact.metrics_["evaluation"].startswith("held-out stratified 50% (4 rows), trained on the rest")


def test_find_label_issues_with_repeated_texts_and_a_one_row_tag_warns_once_in_its_own_words():
    """With a text repeated (folds keep copies together) and a tag of one row, scikit-learn's "The least
    populated class in y has only 1 members, which is less than n_splits=2" came out beside the library's own
    warning naming the tag (with cv=3 asked: n_splits=2 was news to the caller). Now only the library's."""
    texts = TEXTS * 2 + ["a lonely question"]
    labels = LABELS * 2 + ["question"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        TagClassifier(HashEmbedder(), cv=3, random_state=0).find_label_issues(texts, labels)
    messages = [str(w.message) for w in caught]
    assert any("['question'] have fewer than 2 distinct texts" in m for m in messages)
    assert not any("least populated class" in m for m in messages), messages
