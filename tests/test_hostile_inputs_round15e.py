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
    assert "| level 1 subset accuracy / macro F1 (1 rows with a tag there) | 0.0000 / 0.0000 |" in r.to_markdown()
    no_depth = evaluate_predictions([["bug"]], [["bug"]], classes=["bug"], levels={1: ([[]], [[]])})
    assert no_depth.per_level == {}  # no row reaches depth 1: no figure, rather than a perfect one


def test_train_and_eval_name_the_line_of_a_text_that_cleans_to_nothing(tmp_path, capsys, monkeypatch):
    """A cell holding only HTML (``<br>``) is not blank in the file, so the CLI took it, and the embedder's
    cleaning refused it as "empty text at positions [12]": counted from 0 in a list the user never saw (in the
    training part of the split, with a held-out share). Now train and eval name the file's line and why."""
    import json

    import feedback_nlp as fb
    from _hostile_support import write_file
    from feedback_nlp.cli import main
    from feedback_nlp.embedding import Embedder

    rows = [f"export to csv crashes {i},bug" for i in range(6)] + [f"please add dark mode {i},feature" for i in range(6)]
    data = write_file(tmp_path / "l.csv", "text,label\n" + "\n".join([*rows[:3], "<p><br></p>,bug", *rows[3:]]) + "\n")
    why = "no text left in column 'text' once cleaned (only HTML markup, a quoted reply or a signature)"
    # the default embedder refuses the row while cleaning, before its model is loaded
    assert main(["train", "--data", data, "--out", str(tmp_path / "m"), "--no-cache", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["error"] == f"{data}: {why} at line 5; fill or remove these rows"

    class Cleaning(HashEmbedder):  # cleans as the default embedder does, and embeds fast
        clean = True

        def prepare(self, texts):
            return Embedder.prepare(self, texts)

        def encode(self, texts):
            return super().encode(self.prepare(texts))

    model = TagClassifier(Cleaning()).fit([r.split(",")[0] for r in rows], [r.split(",")[1] for r in rows])
    model.save(tmp_path / "m")
    load = fb.TagClassifier.load.__func__
    monkeypatch.setattr(fb.TagClassifier, "load", classmethod(lambda cls, path, **kw: load(cls, path, embedder=Cleaning())))
    assert main(["eval", "--model", str(tmp_path / "m"), "--data", data, "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["error"] == f"{data}: {why} at line 5; fill or remove these rows"


def test_head_auto_does_not_show_an_estimate_for_the_head_it_never_priced(tmp_path):
    """The frozen baseline of ``head="auto"`` is measured, never estimated (its fold cost is set to 0 to say
    so), and the card's comparison table showed it "estimated s 0.0": a figure nobody computed. Now "–"."""
    labels = ["bug"] * 6 + ["feature"] * 6
    clf = TagClassifier(HashEmbedder(), head="auto", time_budget=60, random_state=0).fit(_texts(labels), labels)
    row = next(r for r in clf.head_selection_["candidates"] if r["head"] == "logreg")
    assert row["status"] == "chosen" and row["folds"] == 3 and row["estimated_s"] is None
    card = (clf.save(tmp_path / "m") / "README.md").read_text()
    assert "| logreg | 1.0000 | 1.0000 | 3 |" in card
    line = next(x for x in card.splitlines() if x.startswith("| logreg |"))
    assert line.split(" | ")[5] == "–"  # the estimated-seconds column


def test_evaluate_reads_the_ancestors_predict_writes_as_implied():
    """A multi-label model with a hierarchy predicts a row's tags with their ancestors (``area``, ``area.ui``);
    labels written the same way (copied from the model's output, or a labelling tool that keeps the path) were
    scored as tags "this model was not trained on": accuracy 0.0 on the model's own predictions. Now an ancestor
    given beside its descendant is implied, as ``predict`` means it."""
    from feedback_nlp.taxonomy import Taxonomy

    def tag(i, parent=None):
        return {"id": i, "name": i.replace(".", " "), **({"parent": parent} if parent else {})}

    tax = Taxonomy.from_dict({"tags": [tag("area"), tag("area.ui", "area"), tag("area.api", "area"), tag("type"),
                                       tag("type.bug", "type"), tag("type.req", "type")]})
    labels = [["area.ui", "type.bug"]] * 4 + [["area.api", "type.req"]] * 4 + [["area.ui", "type.req"]] * 4
    texts = [" ".join(row) + f" w{i}" for i, row in enumerate(labels)]
    clf = TagClassifier(HashEmbedder(), tax, multi_label=True, random_state=0).fit(texts, labels)
    new = [" ".join(row) + f" new{i}" for i, row in enumerate(labels)]
    predicted = [list(p) for p in clf.predict(new)]
    assert sorted(predicted[0]) == ["area", "area.ui", "type", "type.bug"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "tags this model was not trained on ['area', 'type']"
        report = clf.evaluate(new, predicted)
    assert report.accuracy == 1.0 and report.micro_f1 == 1.0 and report.unknown_tags == []
    assert clf.evaluate(new, labels).to_dict() == report.to_dict()


def test_evaluate_predictions_refuses_a_tag_listed_twice_in_classes():
    """``classes=["a", "a", "b"]`` gave ``a`` two per-tag rows, counted twice in the macro figure (0.711 where
    scikit-learn says 0.733) and, with probabilities, read the true tag's probability from the wrong column."""
    from feedback_nlp.errors import InvalidInputError

    truth, pred = [["a"], ["b"], ["b"], ["b"]], [["a"], ["a"], ["b"], ["b"]]
    with pytest.raises(InvalidInputError, match=r"classes list the tags \['a'\] more than once"):
        evaluate_predictions(truth, pred, classes=["a", "a", "b"])
    assert evaluate_predictions(truth, pred, classes=["a", "b"]).macro_f1 == pytest.approx((2 / 3 + 0.8) / 2)


@pytest.mark.parametrize("weights", [[1, 1, -5, 1], [1, float("nan"), 1, 1], [1, 1]])
def test_best_f1_threshold_refuses_weights_that_are_not_one_number_per_example(weights):
    """A NaN weight gave an F1 of NaN (and a cut from it), a negative one "labels have no positive example" for
    labels that have one, a short array numpy's broadcast ValueError."""
    import numpy as np

    from feedback_nlp.errors import InvalidInputError
    from feedback_nlp.evaluation import best_f1_threshold

    with pytest.raises(InvalidInputError, match="sample_weight must be one finite number >= 0 per example"):
        best_f1_threshold([0.9, 0.8, 0.3, 0.2], [1, 0, 1, 0], sample_weight=np.array(weights, dtype=float))
    assert best_f1_threshold([0.9, 0.8, 0.3, 0.2], [1, 0, 1, 0], sample_weight=np.ones(4))[0] == 0.25


def test_eval_names_the_file_lines_of_tags_outside_the_models_taxonomy(tmp_path, capsys, monkeypatch):
    """``eval --model request-type`` on a file labelled ``praise`` (the model's tag is ``praise_or_experience``)
    said "'praise' in rows [4, 39, 61, 115]": positions counted from 0 in a list the user never saw. ``train``
    named the file's lines already; now ``eval`` does too."""
    import json

    import feedback_nlp as fb
    from _hostile_support import write_file
    from feedback_nlp.cli import main
    from feedback_nlp.taxonomy import Taxonomy

    tax = Taxonomy.from_dict({"tags": [{"id": "bug", "name": "Bug"}, {"id": "feature", "name": "Feature"}]})
    labels = ["bug"] * 4 + ["feature"] * 4
    TagClassifier(HashEmbedder(), tax).fit(_texts(labels), labels).save(tmp_path / "m")
    load = fb.TagClassifier.load.__func__
    monkeypatch.setattr(fb.TagClassifier, "load", classmethod(lambda cls, path, **kw: load(cls, path,
                                                                                         embedder=HashEmbedder())))
    data = write_file(tmp_path / "e.csv", "text,label\nit crashes,bug\nlove it,praise\nadd sso,feature\nthanks,praise\n")
    assert main(["eval", "--model", str(tmp_path / "m"), "--data", data, "--json"]) == 1
    error = json.loads(capsys.readouterr().out)["error"]
    assert "'praise' at lines 3, 5" in error and "rows [" not in error


def test_a_budget_below_a_second_is_told_its_embedding_estimate_in_its_own_unit():
    """``time_budget=0.6`` on rows that take about 0.8 s to embed said "embedding the 60 training rows alone
    takes about 1 s" (and a budget of 0.004 s, "about 0 s", a refusal that contradicted itself): whole seconds
    for a sub-second budget. Now the estimate keeps two significant digits below a second."""
    import time

    from feedback_nlp.errors import InvalidInputError

    class Slow(HashEmbedder):  # 10 ms a row
        def encode(self, texts):
            out = super().encode(texts)
            time.sleep(0.01 * len(out))
            return out

    labels = ["bug"] * 30 + ["feature"] * 30
    with pytest.raises(InvalidInputError, match=r"embedding the 60 training rows alone takes about 0\.\d+ s"):
        TagClassifier(Slow(), head="auto", time_budget=0.6).fit(_texts(labels), labels)
