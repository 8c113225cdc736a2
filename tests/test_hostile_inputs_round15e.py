"""Round 15e: honest evaluation — the figures a data scientist reads before trusting a model (held-out metrics,
per-level figures of a hierarchy, ``head="auto"``, the bundled sentiment model's outputs)."""

from __future__ import annotations

import warnings

import pytest

from conftest import HashEmbedder
from feedback_nlp.evaluation import evaluate_predictions
from feedback_nlp.tagging import TagClassifier


def _texts(labels: list[str]) -> list[str]:
    return [f"{label} word{i}" for i, label in enumerate(labels)]


def test_held_out_figures_name_the_tags_they_do_not_measure(tmp_path):
    """``fit(holdout=0.2)`` on 10 bug, 2 feature and 2 praise rows held out two bug rows only (a tag with 2 rows
    keeps both for training): the card said macro-F1 1.0 for a three-tag model, with nothing to say two of its
    tags were never measured. Now ``fit`` warns, and ``metrics_["evaluation"]`` (the card's *Measured on*) names
    them."""
    labels = ["bug"] * 10 + ["feature"] * 2 + ["praise"] * 2
    with pytest.warns(UserWarning, match=r"2 of 3 tags have no held-out row .*'feature', 'praise'"):
        clf = TagClassifier(HashEmbedder(), random_state=0).fit(_texts(labels), labels, holdout=0.2)
    assert clf.metrics_["macro_f1"] == 1.0  # the figure itself is right for the rows it measured …
    assert "not measured by these figures: ['feature', 'praise']" in clf.metrics_["evaluation"]  # … and says so
    card = (clf.save(tmp_path / "m") / "README.md").read_text()
    assert "not measured by these figures: ['feature', 'praise']" in card
    balanced = ["bug"] * 5 + ["feature"] * 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every tag held out: no note, no warning
        every = TagClassifier(HashEmbedder(), random_state=0).fit(_texts(balanced), balanced, holdout=0.2)
    assert "not measured" not in every.metrics_["evaluation"]


def test_per_level_accuracy_counts_only_rows_with_a_tag_at_that_depth():
    """Two top-level rows (``bug`` predicted ``praise``) have no tag at depth 1, true or predicted: counted as
    right there, they made the depth-1 accuracy 2/3 although the one row with a depth-1 tag was wrong. Now a level
    is scored on the rows with a tag at that depth, and says how many (``n``)."""
    truth = [["bug"], ["bug"], ["feature", "feature.ui"]]
    pred = [["praise"], ["praise"], ["feature", "feature.api"]]
    levels = {0: ([["bug"], ["bug"], ["feature"]], [["praise"], ["praise"], ["feature"]]),
              1: ([[], [], ["feature.ui"]], [[], [], ["feature.api"]])}
    r = evaluate_predictions(truth, pred, classes=["bug", "praise", "feature", "feature.ui", "feature.api"],
                             multi_label=True, levels=levels)
    assert r.per_level[0] == {"accuracy": pytest.approx(1 / 3), "macro_f1": pytest.approx(1 / 3),
                              "micro_f1": pytest.approx(1 / 3), "n": 3}
    assert r.per_level[1] == {"accuracy": 0.0, "macro_f1": 0.0, "micro_f1": 0.0, "n": 1}
    assert "| level 1 accuracy / macro F1 (1 rows with a tag there) | 0.0000 / 0.0000 |" in r.to_markdown()
    no_depth = evaluate_predictions([["bug"]], [["bug"]], classes=["bug"], levels={1: ([[]], [[]])})
    assert no_depth.per_level == {}  # no row reaches depth 1: no figure, rather than a perfect one
