"""The bundled ``sentiment`` model: loads by name everywhere a bundled model does, and says what it is."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from feedback_nlp.cli import main
from feedback_nlp.tagging import TagClassifier, bundled_models

HAND_LABELS = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "app_reviews_sentiment.csv"


@pytest.fixture(scope="module")
def sentiment(embedder):
    return TagClassifier.load("sentiment", embedder=embedder)


def test_bundled_by_name_with_three_classes(sentiment):
    assert "sentiment" in bundled_models() and "request-type" in bundled_models()
    assert sorted(sentiment.classes_) == ["negative", "neutral", "positive"]
    assert sentiment.multi_label_ is False


def test_clear_cases_and_probabilities(sentiment):
    # clearly emotional feedback; plain bug reports and questions are its weak spot (see the model card)
    texts = ["I love this app, it works perfectly and saves me hours!", "Great app, love it",
             "This update is awful, I hate it", "The export is broken again, so annoying"]
    assert list(sentiment.predict(texts)) == ["positive", "positive", "negative", "negative"]
    proba = sentiment.predict_proba(texts)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert proba.loc[0, "positive"] > 0.6 and proba.loc[2, "negative"] > 0.6
    assert proba.loc[2, "negative"] > proba.loc[3, "negative"] > proba.loc[1, "negative"]


def test_card_states_training_data_and_per_data_set_figures():
    folder = bundled_models()["sentiment"]
    card = (folder / "README.md").read_text()
    config = json.loads((folder / "config.json").read_text())
    assert "GoEmotions" in card and "No software feedback was used for training" in card
    metrics = config["metrics"]
    for key in ("goemotions test macro_f1", "app reviews (software, unseen) macro_f1",
                "app reviews (software, unseen) accuracy"):
        assert 0.0 < metrics[key] <= 1.0, key
        assert key in card
    assert (folder / "weights.npz").stat().st_size < 100_000  # a frozen head: a few kB, not an encoder
    assert not (folder / "encoder").exists()


def test_cli_tags_with_the_sentiment_model(tmp_path, cache_path):
    data = tmp_path / "in.csv"
    pd.DataFrame({"id": ["a", "b"], "text": ["Great app, love it", "This update is awful, I hate it"]}).to_csv(data, index=False)
    out = tmp_path / "out.csv"
    assert main(["tag", "--model", "sentiment", "--in", str(data), "--out", str(out), "--cache", str(cache_path)]) == 0
    tagged = pd.read_csv(out)
    assert tagged["id"].tolist() == ["a", "b"]
    assert tagged["tags"].tolist()[0].count("positive") == 1 and "negative" in tagged["tags"].tolist()[1]


def test_hand_labels_are_well_formed(shared_data):
    labels = pd.read_csv(HAND_LABELS)
    assert labels["row"].is_unique and set(labels["sentiment"]) == {"positive", "neutral", "negative"}
    assert set(labels["sample"]) == {"random", "bug_or_feature"}
    reviews = pd.read_csv(shared_data / "app_reviews_maalej" / "test.csv")
    digests = [hashlib.sha1(t.encode()).hexdigest()[:12] for t in reviews["text"].iloc[labels["row"]]]
    assert digests == labels["text_sha1"].tolist()  # the labels still point at the same texts
