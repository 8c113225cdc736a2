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
