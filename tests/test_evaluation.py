"""Evaluation reports and the one F1-threshold rule shared by tagging and dedupe."""

import numpy as np
import pytest

from feedback_nlp import InvalidInputError
from feedback_nlp.dedupe import calibrate_threshold
from feedback_nlp.evaluation import best_f1_threshold, evaluate_predictions


def test_empty_evaluation_raises_instead_of_reporting_zero():
    with pytest.raises(InvalidInputError, match="no rows"):
        evaluate_predictions([], [], classes=["a"])
    with pytest.raises(InvalidInputError, match="y_true has 2 rows but y_pred has 1"):
        evaluate_predictions([["a"], ["b"]], [["a"]], classes=["a", "b"])


def test_classifier_evaluate_on_nothing_raises(hash_embedder):
    from feedback_nlp.tagging import TagClassifier

    clf = TagClassifier(hash_embedder).fit(["crash now", "crash again", "add dark mode", "add export"],
                                           ["bug", "bug", "feature", "feature"])
    with pytest.raises(InvalidInputError, match="empty"):
        clf.evaluate([], [])


def test_report_figures():
    r = evaluate_predictions([["a"], ["b"], ["b"], ["a"]], [["a"], ["a"], ["b"], []], classes=["a", "b"],
                             abstained=[False, False, False, True])
    assert r.accuracy == 0.5 and r.abstain_rate == 0.25
    assert r.accuracy_covered == pytest.approx(2 / 3)
    assert r.confused_pairs.to_dict("records") == [{"true": "b", "predicted": "a", "count": 1}]


def test_best_f1_threshold_cases():
    cut, rep = best_f1_threshold([0.95, 0.9, 0.85, 0.6, 0.5], [1, 1, 0, 1, 0])
    assert cut == pytest.approx(0.55) and rep["recall"] == 1.0 and rep["precision"] == 0.75
    # every example positive: the cut is the lowest score, so all of them pass `score >= cut`
    cut, rep = best_f1_threshold([0.9, 0.2], [1, 1])
    assert cut == 0.2 and rep["f1"] == 1.0
    # ties are never split
    cut, _ = best_f1_threshold([0.7, 0.7, 0.1], [1, 0, 0])
    assert cut == pytest.approx(0.4)
    for scores, labels, msg in [([], [], "1-D of equal length"), ([0.1, 0.2], [1], "equal length"),
                                ([0.1, np.nan], [1, 0], "finite"), ([0.1, 0.2], [1, 2], "0 or 1"),
                                ([0.1, 0.2], [0, 0], "no positive")]:
        with pytest.raises(InvalidInputError, match=msg):
            best_f1_threshold(scores, labels)


def test_dedupe_and_multilabel_tagging_share_the_rule(monkeypatch):
    import feedback_nlp._heads as heads
    import feedback_nlp.dedupe._deduper as dedupe

    rng = np.random.default_rng(0)
    s, y = rng.random(200), (rng.random(200) > 0.6).astype(int)
    assert calibrate_threshold(s, y, return_report=True) == best_f1_threshold(s, y)
    assert dedupe.best_f1_threshold is best_f1_threshold and heads.best_f1_threshold is best_f1_threshold

    calls = []
    monkeypatch.setattr(heads, "best_f1_threshold", lambda p, t: calls.append(len(p)) or (0.3, {}))
    emb = rng.normal(size=(40, 8)).astype(np.float32)
    Y = np.zeros((40, 2), dtype=int)
    Y[:20, 0] = 1
    Y[10:, 1] = 1
    head = heads.MultiLabelHead().fit(emb, Y, heads.FitSettings(cv=2))
    assert calls == [40, 40] and np.allclose(head.thresholds_, 0.3)


def test_calibration_of_the_probabilities():
    from feedback_nlp.evaluation import calibration

    # multi-class: right 3 times of 4 at a top probability of 0.75 each: calibrated
    P = np.array([[0.75, 0.25]] * 4)
    conf, ece = calibration(P, np.array([0, 0, 0, 1]), multi_label=False)
    assert conf == pytest.approx(0.75) and ece == pytest.approx(0.0)
    # always sure, right half of the time: off by 0.5
    conf, ece = calibration(np.array([[1.0, 0.0]] * 4), np.array([0, 1, 0, 1]), multi_label=False)
    assert conf == 1.0 and ece == pytest.approx(0.5)
    # a label the model does not know (-1) is never right
    assert calibration(np.array([[0.6, 0.4]]), np.array([-1]), multi_label=False)[1] == pytest.approx(0.6)
    # multi-label: every tag probability against whether the row has the tag
    Y = np.array([[1, 0], [0, 1]])
    assert calibration(np.array([[0.9, 0.1], [0.1, 0.9]]), Y, multi_label=True) == pytest.approx((0.5, 0.1))
    assert calibration(np.array([[0.0, 1.0], [1.0, 0.0]]), Y, multi_label=True)[1] == pytest.approx(1.0)


def test_report_carries_calibration_only_with_probabilities():
    rows = [["a"], ["b"], ["b"], ["a"]]
    plain = evaluate_predictions(rows, [["a"], ["a"], ["b"], ["a"]], classes=["a", "b"])
    assert np.isnan(plain.calibration_error) and plain.to_dict()["calibration_error"] is None
    assert "calibration error" not in plain.to_markdown()
    P = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.7, 0.3]])
    r = evaluate_predictions(rows, [["a"], ["a"], ["b"], ["a"]], classes=["a", "b"], probabilities=P)
    assert r.mean_confidence == pytest.approx(0.75) and r.to_dict()["mean_confidence"] == pytest.approx(0.75)
    assert r.calibration_error == pytest.approx((0.1 + 0.6 + 0.2 + 0.3) / 4)
    assert "| calibration error (ECE, 10 bins) | 0.3000 |" in r.to_markdown()
    with pytest.raises(InvalidInputError, match="probabilities have shape"):
        evaluate_predictions(rows, rows, classes=["a", "b"], probabilities=P[:3])


def test_classifier_evaluate_reports_calibration(hash_embedder):
    from feedback_nlp.tagging import TagClassifier

    texts = ["crash now", "crash again", "it crashes", "add dark mode", "add export", "add a button"]
    labels = ["bug", "bug", "bug", "feature", "feature", "feature"]
    clf = TagClassifier(hash_embedder, cv=2).fit(texts, labels)
    report = clf.evaluate(texts, labels)
    P = clf.predict_proba(texts).to_numpy()
    assert report.mean_confidence == pytest.approx(P.max(axis=1).mean())
    assert 0.0 <= report.calibration_error <= 1.0
    multi = TagClassifier(hash_embedder, cv=2).fit(texts, [[lab] for lab in labels])
    r = multi.evaluate(texts, [[lab] for lab in labels])
    assert r.mean_confidence == pytest.approx(multi.predict_proba(texts).to_numpy().mean())
