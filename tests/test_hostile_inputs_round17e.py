"""Round 17e: the data scientist's workflow — scikit-learn conventions of TagClassifier, and evaluation
figures that say what they measure."""

from __future__ import annotations

from feedback_nlp.evaluation import evaluate_predictions


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
