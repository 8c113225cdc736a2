"""Few labels per tag: the taxonomy's own words as extra training rows (``taxonomy_examples``, issue #16)."""

from __future__ import annotations

import pytest

from feedback_nlp import Taxonomy
from feedback_nlp.errors import InvalidInputError
from feedback_nlp.tagging import TagClassifier

_TAX = Taxonomy.from_dict({"tags": [
    {"id": "billing", "name": "invoice refund", "examples": ["charged twice on my card"]},
    {"id": "login", "name": "password reset", "description": "cannot sign in"},
    {"id": "export", "name": "csv download"},
]})
_TEXTS = ["alpha one", "alpha two", "beta one", "beta two", "gamma one", "gamma two"]
_LABELS = ["billing", "billing", "login", "login", "export", "export"]


def _proba(clf, text, tag):
    return float(clf.predict_proba([text])[tag].iloc[0])


def test_tag_names_and_examples_teach_the_head(hash_embedder):
    plain = TagClassifier(hash_embedder, _TAX, cv=2).fit(_TEXTS, _LABELS)
    named = TagClassifier(hash_embedder, _TAX, cv=2, taxonomy_examples=True).fit(_TEXTS, _LABELS)
    # words the labelled rows never use, only the taxonomy: its name, its description, its example
    for text, tag in [("invoice refund", "billing"), ("cannot sign in", "login"), ("charged twice on my card", "billing"),
                      ("csv download", "export")]:
        assert named.predict([text])[0] == tag, text
        assert _proba(plain, text, tag) < 0.34 < _proba(named, text, tag), text  # without: no idea (1/3 each)
    assert named.get_params()["taxonomy_examples"] is True


def test_with_self_training_and_holdout(hash_embedder):
    backlog = ["invoice refund please", "password reset link", "csv download broken"] * 3
    clf = TagClassifier(hash_embedder, _TAX, cv=2, self_train=True, taxonomy_examples=True)
    clf.fit(_TEXTS * 2, _LABELS * 2, unlabelled=backlog, holdout=0.25)
    assert clf.self_trained_rows_ == 9 and clf.predict(["refund my invoice"])[0] == "billing"


def test_needs_a_taxonomy_and_multi_class(hash_embedder):
    with pytest.raises(InvalidInputError, match="needs a taxonomy"):
        TagClassifier(hash_embedder, taxonomy_examples=True).fit(_TEXTS, _LABELS)
    with pytest.raises(InvalidInputError, match="multi-class labels only"):
        TagClassifier(hash_embedder, _TAX, taxonomy_examples=True).fit(_TEXTS, [[x] for x in _LABELS])
    with pytest.raises(InvalidInputError, match="taxonomy_examples"):
        TagClassifier(hash_embedder, _TAX, taxonomy_examples="yes").fit(_TEXTS, _LABELS)


def test_cli_taxonomy_examples(tmp_path, monkeypatch):
    import json

    import pandas as pd

    from conftest import HashEmbedder
    from feedback_nlp import cli
    from feedback_nlp.cli import main

    data, tax = tmp_path / "l.csv", tmp_path / "tax.json"
    pd.DataFrame({"text": _TEXTS * 2, "label": _LABELS * 2}).to_csv(data, index=False)
    tax.write_text(json.dumps(_TAX.to_dict()))
    out = str(tmp_path / "m")
    assert main(["train", "--data", str(data), "--taxonomy-examples", "--out", out]) == 2  # no --taxonomy
    monkeypatch.setattr(cli, "_embedder", lambda args: HashEmbedder())
    assert main(["train", "--data", str(data), "--taxonomy", str(tax), "--taxonomy-examples", "--holdout", "0",
                 "--out", out]) == 0
    clf = TagClassifier.load(out, embedder=HashEmbedder())
    assert clf.taxonomy_examples is True and clf.predict(["csv download"])[0] == "export"
