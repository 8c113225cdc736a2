"""The data scientist retraining tag models with scikit-learn conventions (twelfth round, helper d): label
types through save and load, scikit-learn's machinery, honest evaluation and label issues.
Each test failed (or showed the silent misbehaviour it names) before its fix."""

from __future__ import annotations

import numpy as np
import pytest

from feedback_nlp.errors import InvalidInputError
from feedback_nlp.tagging import TagClassifier

TEXTS = ["crash now", "crash again", "it crashes", "app crashed", "crash on save", "crash at login",
         "add dark mode", "add export", "add a button", "add sso", "add a theme", "add more filters",
         "how do i log in", "where is settings", "how to export", "what is sso", "how to reset", "where is help"]
LABELS = ["bug"] * 6 + ["feature"] * 6 + ["question"] * 6


def test_boolean_classes_load_back_as_false_and_true(hash_embedder, tmp_path):
    # was: classes_ loaded as [True, True] (numpy reads every non-empty string, "False" included, as True)
    clf = TagClassifier(hash_embedder, cv=2).fit(TEXTS[:12], [True] * 6 + [False] * 6)
    clf.save(tmp_path / "m")
    loaded = TagClassifier.load(tmp_path / "m", embedder=hash_embedder)
    assert loaded.classes_.dtype == bool and loaded.classes_.tolist() == [False, True]
    assert loaded.predict(TEXTS[:12]).tolist() == clf.predict(TEXTS[:12]).tolist()
    assert loaded.predict_proba(TEXTS[:2]).columns.tolist() == [False, True]


def test_saved_boolean_classes_that_are_no_booleans_are_refused():
    from feedback_nlp.tagging import _saved_classes

    assert _saved_classes(np.array(["False", "True"]), "bool").tolist() == [False, True]
    with pytest.raises(ValueError, match="not booleans"):  # inside load: the folder's fault, an IntegrityError
        _saved_classes(np.array(["no", "yes"]), "bool")


def test_multi_class_calibration_refuses_a_true_row_with_several_tags():
    from feedback_nlp.evaluation import evaluate_predictions

    # was: the calibration scored one of the row's two tags, chosen by set order (it changed with the hash seed)
    P = np.array([[0.9, 0.1], [0.2, 0.8]])
    with pytest.raises(InvalidInputError, match=r"rows \[0\] have several tags but multi_label=False"):
        evaluate_predictions([["a", "b"], ["b"]], [["a"], ["b"]], classes=["a", "b"], probabilities=P)
    report = evaluate_predictions([["a", "b"], ["b"]], [["a"], ["b"]], classes=["a", "b"], probabilities=P,
                                  multi_label=True)
    assert report.accuracy == 0.5 and np.isfinite(report.calibration_error)
    assert evaluate_predictions([["a", "b"], ["b"]], [["a"], ["b"]], classes=["a", "b"]).accuracy == 0.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_mislabelled_text_that_repeats_is_listed_every_time(hash_embedder, seed):
    # was: the copies were split across folds, each answered by its twin's wrong tag with confidence, and with
    # random_state=0 neither copy was listed
    X = TEXTS * 2 + ["crash app crashed again"] * 2
    y = LABELS * 2 + ["feature"] * 2
    issues = TagClassifier(hash_embedder, cv=3, random_state=seed).find_label_issues(X, y, method="builtin")
    listed = issues.set_index("index")
    assert {36, 37} <= set(listed.index)
    assert listed.loc[[36, 37], "suggested"].tolist() == ["bug", "bug"]
    assert (listed.loc[[36, 37], "p_given"] < 0.1).all()


@pytest.mark.parametrize("scoring", ["accuracy", "f1_macro"])
def test_integer_labels_with_min_confidence_are_scored_by_scikit_learn(hash_embedder, scoring):
    from sklearn.metrics import get_scorer

    # was: predict returned an array of objects whenever min_confidence > 0, even with no row abstaining, and
    # scikit-learn's metrics read integers in it as an "unknown" target: every scorer (and GridSearchCV) failed
    y = [0] * 6 + [1] * 6 + [2] * 6
    clf = TagClassifier(hash_embedder, cv=2, min_confidence=0.5).fit(TEXTS, y)
    pred = clf.predict(TEXTS)
    assert pred.dtype == clf.classes_.dtype and pred.tolist() == y
    assert get_scorer(scoring)(clf, TEXTS, y) == 1.0
    # a row that abstains still reads None, in an array of objects
    strict = TagClassifier(hash_embedder, cv=2, min_confidence=0.95).fit(TEXTS, y)
    mixed = "crash now add export how to"  # best probability 0.90
    out = strict.predict([mixed, "crash now"])
    assert out.dtype == object and out.tolist() == [None, 0]


def test_the_card_of_an_auto_head_says_the_held_out_rows_helped_choose_it(hash_embedder, tmp_path):
    # was: "held-out … trained on the rest" while head="auto" had picked the head by cross-validation on every
    # row, the held-out ones included: the figures were called unseen-row figures without that caveat
    clf = TagClassifier(hash_embedder, cv=2, head="auto").fit(TEXTS, LABELS, holdout=0.34)
    assert "held-out ones included" in clf.metrics_["evaluation"]
    clf.save(tmp_path / "m")
    assert "held-out ones included" in (tmp_path / "m" / "README.md").read_text(encoding="utf-8")
    plain = TagClassifier(hash_embedder, cv=2).fit(TEXTS, LABELS, holdout=0.34)
    assert "head='auto'" not in plain.metrics_["evaluation"]


def test_a_backlog_row_that_is_no_text_is_named_as_the_backlogs(hash_embedder):
    import pandas as pd

    # was: "X rows [6] are not text" — the training texts were fine; the row was the backlog's (unlabelled)
    backlog = pd.Series(["crash today", "add a calendar", "how to pay"] * 2 + [None])
    with pytest.raises(InvalidInputError, match=r"^unlabelled rows \[6\] are not text"):
        TagClassifier(hash_embedder, cv=2, self_train=True).fit(TEXTS, LABELS, unlabelled=backlog)
    with pytest.raises(InvalidInputError, match=r"^X rows \[1\] are not text"):
        TagClassifier(hash_embedder, cv=2).fit([TEXTS[0], None, *TEXTS[2:]], LABELS)
