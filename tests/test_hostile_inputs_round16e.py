"""Round 16e: tag models telling the truth about their answers — texts with no letter to read, what a
multi-label model's "accuracy" is, tag ids that differ only in case, and scikit-learn conventions a data
scientist retraining models relies on."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from conftest import HashEmbedder
from feedback_nlp.embedding import Embedder
from feedback_nlp.errors import TaxonomyError, UnknownTagError
from feedback_nlp.model_card import render_model_card
from feedback_nlp.tagging import TagClassifier
from feedback_nlp.taxonomy import Taxonomy

TEXTS = ["crash on start", "app crashes on save", "crash after update", "it crashed again",
         "please add dark mode", "add export to csv", "would love a dark theme", "add sso login"]
LABELS = ["bug"] * 4 + ["feature"] * 4


@pytest.fixture(scope="module")
def fitted() -> TagClassifier:
    return TagClassifier(HashEmbedder(), cv=2, random_state=0).fit(TEXTS, LABELS)


class CleaningHashEmbedder(HashEmbedder):
    """Cleans (HTML, quoted replies, signatures, PII redaction) as the default embedder does, and embeds fast."""

    clean = True

    def prepare(self, texts):
        return Embedder.prepare(self, texts)

    def encode(self, texts):
        return super().encode(self.prepare(texts))


@pytest.fixture(scope="module")
def cleaning() -> TagClassifier:
    return TagClassifier(CleaningHashEmbedder(), cv=2, random_state=0).fit(TEXTS, LABELS)


@pytest.mark.parametrize("text", ["👍👍", "!!!", "123", "???", "😀 🎉 100%", "４２"])
def test_a_text_with_no_letter_is_flagged_for_review_instead_of_read_as_an_answer(fitted, text):
    """The bundled sentiment model answered every emoji-only text "neutral" at 0.458 (and "123" "neutral" at
    0.88, "!!!" "negative") with ``needs_review`` False: a guess that read as an answer, through the API, where
    the report refuses such rows. Now a text with no letter (once cleaned, its personal data redacted) is always
    flagged ``needs_review``; at the default ``min_confidence=0`` it keeps its label (``predict`` answers one
    label a row, as scikit-learn's scorers need), and it abstains as a low-confidence row does when the model
    abstains at all (``min_confidence`` > 0): no tag, ``None`` from ``predict``."""
    out = fitted.tag([text, "crash on save"])
    assert out["needs_review"].tolist() == [True, False]
    assert out["tags"].tolist()[1] == ["bug"] and len(out["tags"].tolist()[0]) == 1
    assert None not in fitted.predict([text, "crash on save"]).tolist()
    vectors = fitted.embedder_.encode([text, "crash on save"])
    assert fitted.tag(vectors, texts=[text, "crash on save"])["needs_review"].tolist() == [True, False]
    assert fitted.evaluate([text], ["bug"]).abstain_rate == 0.0
    cautious = clone(fitted).set_params(min_confidence=0.01).fit(TEXTS, LABELS)
    out = cautious.tag([text, "crash on save"])
    assert out["needs_review"].tolist() == [True, False]
    assert out["tags"].tolist() == [[], ["bug"]]
    assert cautious.predict([text, "crash on save"]).tolist() == [None, "bug"]
    assert cautious.evaluate([text], ["bug"]).abstain_rate == 1.0


def test_scikit_learn_scorers_still_score_data_holding_texts_with_no_letter():
    """Abstaining on letterless rows at the default ``min_confidence=0`` made ``predict`` answer ``None`` among
    strings: ``cross_val_score(..., scoring="f1_macro")`` raised TypeError on any feedback with an emoji-only
    row. At the default they keep a label (flagged for review in ``tag``), so the scorers work."""
    from sklearn.model_selection import cross_val_score

    texts = TEXTS * 2 + ["👍👍", "!!!", "👎", "???"]
    labels = LABELS * 2 + ["feature", "bug", "bug", "feature"]
    scores = cross_val_score(TagClassifier(HashEmbedder(), cv=2, random_state=0), texts, labels, cv=2,
                             scoring="f1_macro")
    assert np.isfinite(scores).all()


@pytest.mark.parametrize("text", ["<p>😀</p>", "jane@example.com", "👍\n\nSent from my iPhone", "&amp;&amp;"])
def test_a_text_whose_letters_cleaning_removes_is_flagged_when_the_embedder_cleans(cleaning, fitted, text):
    """The letters of markup, of a signature or of redacted personal data are not read by an embedder that
    cleans: the text it embeds has none (a model whose embedder reads the raw text did read them)."""
    assert cleaning.tag([text, "crash on save"])["needs_review"].tolist() == [True, False]
    cautious = clone(cleaning).set_params(min_confidence=0.01).fit(TEXTS, LABELS)
    assert cautious.predict([text]).tolist() == [None]
    assert not fitted.tag([text])["needs_review"].any()


def test_texts_with_letters_in_any_script_do_not_abstain(fitted):
    texts = ["好评", "ok 👍", "Ça plante", "㎏ too heavy", "error 500!!!", "ошибка"]
    assert not fitted.tag(texts)["needs_review"].any()


def test_a_multi_label_models_card_names_its_accuracy_subset_accuracy(tmp_path):
    """A multi-label model's card listed "accuracy" 0.25 beside micro-F1 0.8: it was subset accuracy (a row
    right only when all its tags are), unnamed, so it read as the share of tags right. Now the card (and
    ``to_markdown``'s covered-rows line, and the head-selection table's CV column) say "subset accuracy"."""
    texts = [f"{w} word{i}" for i, w in enumerate(["crash export", "crash", "export", "login crash"] * 5)]
    tags = [["bug", "export"], ["bug"], ["export"], ["bug", "login"]] * 5
    clf = TagClassifier(HashEmbedder(), cv=2, random_state=0).fit(texts, tags, holdout=0.4)
    card = (clf.save(tmp_path / "m") / "README.md").read_text()
    assert "| subset accuracy (every tag of a row right) |" in card and "| accuracy |" not in card
    assert "| subset accuracy on covered rows |" in card
    assert "| mean_confidence (mean probability of a tag) |" in card
    assert "| abstain (`min_confidence`) | below 0.0; any text with no letter" in card
    assert "| subset accuracy on covered rows |" in clf.holdout_report_.to_markdown()
    single = TagClassifier(HashEmbedder(), cv=2, random_state=0).fit(TEXTS * 2, LABELS * 2, holdout=0.5)
    single_card = (single.save(tmp_path / "s") / "README.md").read_text()
    assert "| accuracy |" in single_card and "subset" not in single_card
    config = {**__import__("json").loads((tmp_path / "m" / "config.json").read_text()),
              "head_selection": {"chosen": "logreg", "budget_s": 10.0, "folds": 2, "candidates": []}}
    assert "| CV subset accuracy |" in render_model_card(config)


@pytest.mark.parametrize("ids", [("Bug", "bug"), ("dark mode", "Dark  Mode"), ("BUG", "bug")])
def test_a_taxonomy_refuses_tag_ids_that_differ_only_in_case_or_spacing(ids, tmp_path):
    """``Bug`` and ``bug`` in one taxonomy were two tags, silently (NFC/NFD twins were already refused): a
    zero-shot model split a facet's probability between them and labels typed either way trained one of two.
    Now the taxonomy — built or loaded from a file, so zero-shot too — refuses them, naming both."""
    tags = [{"id": ids[0], "name": "One"}, {"id": ids[1], "name": "Two"}, {"id": "other", "name": "Other"}]
    with pytest.raises(TaxonomyError, match=f"tag ids '{ids[0]}' and '{ids[1]}' differ only in case or spacing"):
        Taxonomy.from_dict({"tags": tags})
    path = tmp_path / "t.json"
    path.write_text(__import__("json").dumps({"tags": tags}))
    with pytest.raises(TaxonomyError, match="differ only in case or spacing"):
        Taxonomy.load(path)


def test_a_label_that_differs_from_a_taxonomy_id_only_in_case_is_told_which_id(tmp_path):
    """Training with a taxonomy that has ``bug`` on labels written ``Bug`` said only "'Bug' not in taxonomy"."""
    tax = Taxonomy.from_dict({"tags": [{"id": "bug", "name": "Bug"}, {"id": "feature", "name": "Feature"}]})
    with pytest.raises(UnknownTagError, match=r"'Bug' in rows \[0, 1\] \(the taxonomy's id is 'bug'"):
        TagClassifier(HashEmbedder(), tax, cv=2).fit(TEXTS[:4], ["Bug", "Bug", "feature", "feature"])


def test_same_random_state_gives_the_same_model_twice():
    a = TagClassifier(HashEmbedder(), cv=2, random_state=3).fit(TEXTS, LABELS)
    b = TagClassifier(HashEmbedder(), cv=2, random_state=3).fit(TEXTS, LABELS)
    np.testing.assert_array_equal(a.predict_proba(TEXTS).to_numpy(), b.predict_proba(TEXTS).to_numpy())


def test_suggest_for_labeling_predicts_what_predict_does_on_a_model_that_reads_the_words():
    """``suggest_for_labeling`` scored rows with the embedding head alone: on a model that kept its word channel
    its ``predicted`` column named another tag than ``predict`` for 14 of 30 suggested rows of the sample (and
    multi-label uncertainty was measured against thresholds tuned on the fused probabilities). Now it uses
    ``predict_proba``'s probabilities; precomputed vectors take ``texts=`` as ``tag`` does."""
    from feedback_nlp import read_feedback
    from feedback_nlp.datasets import load_sample
    from feedback_nlp.errors import InvalidInputError

    records, _ = read_feedback(load_sample())
    train, test = records.iloc[:400], records.iloc[400:600]
    clf = TagClassifier(HashEmbedder(dim=16), cv=3, random_state=0).fit(train["text"], train["request_type"])
    assert clf.lexical_ is not None  # the words were worth keeping
    suggested = clf.suggest_for_labeling(test["text"], n=20)
    rows = test["text"].iloc[suggested["index"].tolist()]
    assert suggested["predicted"].tolist() == clf.predict(rows).tolist()
    vectors = clf.embedder_.encode(test["text"].tolist())
    again = clf.suggest_for_labeling(vectors, n=20, texts=test["text"].tolist())
    assert again["index"].tolist() == suggested["index"].tolist()
    assert again["text"].tolist() == suggested["text"].tolist()
    with pytest.raises(InvalidInputError, match="pass the texts"):
        clf.suggest_for_labeling(vectors, n=5)


def test_evaluate_predictions_reads_predicts_none_as_an_abstention(fitted):
    """``evaluate_predictions(y, clf.predict(X))`` on a model that abstained (``None``) said abstain rate 0.0 and
    coverage 1.0, and its accuracy on covered rows counted the abstentions as answered. Now a None (or NaN)
    prediction is an abstention unless ``abstained`` says otherwise."""
    from feedback_nlp.evaluation import evaluate_predictions

    cautious = clone(fitted).set_params(min_confidence=0.01).fit(TEXTS, LABELS)
    pred = cautious.predict(["crash on save", "👍"])
    assert pred.tolist() == ["bug", None]
    r = evaluate_predictions(["bug", "feature"], pred, classes=["bug", "feature"])
    assert (r.abstain_rate, r.coverage, r.accuracy, r.accuracy_covered) == (0.5, 0.5, 0.5, 1.0)
    assert r.to_dict() == cautious.evaluate(["crash on save", "👍"], ["bug", "feature"]).to_dict() | {
        "mean_confidence": None, "calibration_error": None}


def test_an_abstaining_row_gives_no_tag_to_the_f1_figures():
    """``abstained=[True, False]`` with a (right) prediction on the abstaining row: the row counted as wrong in
    the accuracy (0.5) but its tag as right in micro and macro F1 (1.0 both). Now an abstaining row gives no tag
    anywhere: its tag is missed (F1 0.5 and 2/3), as ``TagClassifier`` scores it."""
    from feedback_nlp.evaluation import evaluate_predictions

    r = evaluate_predictions(["a", "b"], ["a", "b"], classes=["a", "b"], abstained=[True, False])
    assert (r.accuracy, r.macro_f1, r.micro_f1) == (0.5, 0.5, pytest.approx(2 / 3))
    assert r.per_tag.set_index("tag").loc["a", "recall"] == 0.0


def test_head_auto_scores_a_frozen_head_as_the_final_model_answers_texts_with_no_letter():
    """``head="auto"`` scored its frozen candidates on vectors without their texts, so a text with no letter
    (which the chosen model abstains on, as fine-tuned candidates did in their folds) counted as answered:
    digits-only rows of their own tag made a logistic regression look perfect (CV accuracy 1.0). Now the folds
    read the texts too, and those rows count as the abstentions they will be."""
    texts = [f"crash on save number {i}" for i in range(6)] + [str(1000 + 7 * i) for i in range(6)]
    labels = ["bug"] * 6 + ["ticket_number"] * 6
    clf = TagClassifier(HashEmbedder(), head="auto", time_budget=None, cv=2, random_state=0,
                        min_confidence=0.01).fit(texts, labels)
    logreg = next(r for r in clf.head_selection_["candidates"] if r["head"] == "logreg")
    assert logreg["cv_accuracy"] == pytest.approx(0.5)  # the bug rows right, every number abstained
    assert clf.tag(["1234"])["needs_review"].tolist() == [True]
