"""Labels a careless user gives a tag model: tags the model does not know at evaluation, tags typed two ways,
blank texts with an embedder that would embed them, long label values in messages."""

from __future__ import annotations

import json
import unicodedata
import warnings

import numpy as np
import pandas as pd
import pytest

from feedback_nlp.errors import InvalidInputError
from feedback_nlp.evaluation import evaluate_predictions
from feedback_nlp.tagging import TagClassifier

TEXTS = ["crash now", "crash again", "it crashes", "add dark mode", "add export", "add a button"]
LABELS = ["bug", "bug", "bug", "feature", "feature", "feature"]


@pytest.fixture
def fitted(hash_embedder):
    return TagClassifier(hash_embedder, cv=2).fit(TEXTS, LABELS)


def test_unknown_true_tags_are_scored_and_listed():
    # "question" is not a class: its row is missed, it gets a per-tag row, and macro F1 counts its 0
    r = evaluate_predictions([["bug"], ["feature"], ["question"]], [["bug"], ["feature"], ["bug"]],
                             classes=["bug", "feature"])
    assert r.unknown_tags == ["question"]
    row = r.per_tag.set_index("tag").loc["question"]
    assert (row["recall"], row["f1"], row["support"]) == (0.0, 0.0, 1)
    # bug: P 1/2, R 1 -> F1 2/3; feature: 1; question: 0 -> macro (2/3 + 1 + 0) / 3
    assert r.macro_f1 == pytest.approx((2 / 3 + 1 + 0) / 3)
    # micro: tp 2, fp 1, fn 1 -> P = R = 2/3
    assert r.micro_f1 == pytest.approx(2 / 3)
    assert r.to_dict()["unknown_tags"] == ["question"]
    assert "does not know" in r.to_markdown() and "question" in r.to_markdown()


def test_known_tags_only_report_lists_none():
    r = evaluate_predictions([["a"], ["b"]], [["a"], ["b"]], classes=["a", "b"])
    assert r.unknown_tags == [] and r.to_dict()["unknown_tags"] == []
    assert "does not know" not in r.to_markdown()


def test_evaluate_warns_about_tags_the_model_was_not_trained_on(fitted):
    with pytest.warns(UserWarning, match=r"1 of 3 rows have tags this model was not trained on \['question'\]"):
        r = fitted.evaluate(["crash now", "add export", "how do I log in"], ["bug", "feature", "question"])
    assert r.unknown_tags == ["question"]
    assert r.macro_f1 < 1.0  # a perfect model on the known tags still loses the unknown one


def test_evaluate_with_known_tags_does_not_warn(fitted):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted.evaluate(["it crashed today", "add a dark theme"], ["bug", "feature"])  # rows it was not trained on


def test_tags_differing_only_in_case_or_spacing_warn(hash_embedder):
    texts = TEXTS + ["crash crash", "add more"] + ["crash here", "crash there", "add it", "add that"]
    labels = ["Bug", "Bug", "bug", "feature  request", "feature  request", "Feature request", "bug",
              "Feature request", "Bug", "bug", "feature request", "feature request"]
    with pytest.warns(UserWarning, match="differ only in case, spacing or Unicode form") as caught:
        clf = TagClassifier(hash_embedder, cv=2).fit(texts, labels)
    message = str(caught[0].message)
    assert "['Bug', 'bug']" in message and "'Feature request'" in message
    # not merged behind the user's back: the classes are what they wrote
    assert sorted(clf.classes_) == sorted({"Bug", "bug", "feature  request", "Feature request", "feature request"})


def test_tags_differing_only_in_unicode_form_warn(hash_embedder):
    # the CLI merges these when it reads a file; the API keeps the user's labels but must say they look alike
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    assert composed != decomposed and unicodedata.normalize("NFC", decomposed) == composed
    labels = [composed, decomposed] * 3 + ["bug"] * 2
    texts = [f"coffee machine {i}" for i in range(6)] + ["crash here", "crash there"]
    with pytest.warns(UserWarning, match="Unicode form") as caught:
        clf = TagClassifier(hash_embedder, cv=2).fit(texts, labels)
    assert "composed vs decomposed accents" in str(caught[0].message)
    assert sorted(clf.classes_) == sorted({composed, decomposed, "bug"})


def test_case_variants_alone_do_not_mention_accents(hash_embedder):
    with pytest.warns(UserWarning) as caught:
        TagClassifier(hash_embedder, cv=2).fit(TEXTS + ["crash again", "crash more"], LABELS + ["Bug", "Bug"])
    assert "accents" not in str(caught[0].message)


def test_distinct_tags_do_not_warn(hash_embedder):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TagClassifier(hash_embedder, cv=2).fit(TEXTS, LABELS)


@pytest.mark.parametrize("blank", ["", "   ", "\n\t "])
def test_blank_texts_are_refused_even_when_the_embedder_would_embed_them(fitted, hash_embedder, blank):
    assert np.isfinite(hash_embedder.encode([blank])).all()  # the double embeds it (to zeros)
    with pytest.raises(InvalidInputError, match=r"empty text at positions \[1\]"):
        fitted.tag(["crash now", blank])
    with pytest.raises(InvalidInputError, match=r"empty text at positions \[0\]"):
        TagClassifier(hash_embedder, cv=2).fit([blank, *TEXTS[1:]], LABELS)


def test_single_example_message_cuts_long_tag_names(hash_embedder):
    long_tag = "x" * 5000
    with pytest.raises(InvalidInputError, match="single example") as caught:
        TagClassifier(hash_embedder, cv=2).fit(TEXTS + ["lonely"], LABELS + [long_tag])
    assert len(str(caught.value)) < 400 and "…" in str(caught.value)


def test_cli_eval_reports_and_warns_about_unknown_tags(tmp_path, capsys):
    from feedback_nlp.cli import main

    train = tmp_path / "train.csv"
    pd.DataFrame({"text": TEXTS + ["crash on start", "add a calendar"], "label": LABELS + ["bug", "feature"]}
                 ).to_csv(train, index=False)
    assert main(["train", "--data", str(train), "--out", str(tmp_path / "model"), "--json"]) == 0
    data = tmp_path / "labelled.csv"
    pd.DataFrame({"text": ["The app crashes when I save", "Please add a dark mode", "How do I export my data?"],
                  "label": ["bug", "feature", "billing"]}).to_csv(data, index=False)
    capsys.readouterr()
    assert main(["eval", "--model", str(tmp_path / "model"), "--data", str(data), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["unknown_tags"] == ["billing"]
    # one line, not Python's file:line and source
    assert ("feedback-nlp: warning: 1 of 3 rows have tags this model was not trained on ['billing']"
            in captured.err)
    assert "UserWarning" not in captured.err and ".py:" not in captured.err
