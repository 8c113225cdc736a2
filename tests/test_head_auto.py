"""head="auto": cross-validated head selection within a wall-clock budget (issue #16)."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from conftest import HashEmbedder
from feedback_nlp import Taxonomy
from feedback_nlp.cli import main
from feedback_nlp.errors import InvalidInputError
from feedback_nlp.tagging import TagClassifier

_WORDS = {"bug": "crash error broken fails freeze", "feature": "please add wish would love option",
          "question": "how where what can does"}


def _data(n: int = 12, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    noise = ["the", "a", "app", "it", "my", "on", "to", "with"]
    texts, labels = [], []
    for tag, words in _WORDS.items():
        for _ in range(n):
            texts.append(" ".join(rng.choice(words.split(), 3).tolist() + rng.choice(noise, 2).tolist()))
            labels.append(tag)
    return texts, labels


def _taxonomy() -> Taxonomy:
    return Taxonomy.from_dict({"tags": [{"id": t, "name": t, "description": w} for t, w in _WORDS.items()]})


class SlowEmbedder(HashEmbedder):
    """Embeds at a fixed cost per text, like a real model on a slow machine."""

    def encode(self, texts):
        texts = [texts] if isinstance(texts, str) else list(texts)
        time.sleep(0.02 * len(texts))
        return super().encode(texts)


@pytest.mark.parametrize("budget", [0, -5, math.nan, math.inf, -math.inf, "10m", True, [600]])
def test_bad_budgets_are_refused_by_name(budget):
    texts, labels = _data()
    with pytest.raises(InvalidInputError, match="time_budget"):
        TagClassifier(HashEmbedder(), head="auto", time_budget=budget).fit(texts, labels)


def test_is_a_parameter_clone_and_grid_search_keep(hash_embedder):
    clf = TagClassifier(hash_embedder, head="auto", time_budget=42.5)
    assert clf.get_params()["time_budget"] == 42.5 and clone(clf).get_params()["time_budget"] == 42.5
    texts, labels = _data()
    grid = GridSearchCV(TagClassifier(hash_embedder, cv=3), {"head": ["logreg", "auto"], "time_budget": [60, None]},
                        cv=3).fit(texts, labels)
    assert len(grid.cv_results_["params"]) == 4 and np.isfinite(grid.cv_results_["mean_test_score"]).all()
    assert grid.best_estimator_.predict(texts[:3]).tolist()


def test_measures_every_candidate_and_is_deterministic(hash_embedder):
    texts, labels = _data(14)
    backlog, _ = _data(20, seed=1)
    X, B = hash_embedder.encode(texts), hash_embedder.encode(backlog)

    def fit():
        return TagClassifier(hash_embedder, _taxonomy(), head="auto", time_budget=None, self_train=True,
                             random_state=3).fit(X, labels, unlabelled=B)

    a, b = fit(), fit()
    rows = {r["head"]: r for r in a.head_selection_["candidates"]}
    # precomputed embeddings: no fine-tuned candidates; the taxonomy and the backlog add theirs
    assert set(rows) == {"zero-shot", "zero-shot+self-train", "logreg", "logreg+self-train"}
    assert a.head_selection_["candidates"][0]["head"] == "logreg"  # the fallback is measured first
    assert all(r["folds"] == 3 and r["cv_macro_f1"] is not None for r in rows.values())
    best = max(rows.values(), key=lambda r: r["cv_macro_f1"])
    assert a.head_selection_["chosen"] == best["head"] and rows[best["head"]]["status"] == "chosen"
    assert [r["cv_macro_f1"] for r in a.head_selection_["candidates"]] == \
        [r["cv_macro_f1"] for r in b.head_selection_["candidates"]]
    np.testing.assert_array_equal(a.predict_proba(X).to_numpy(), b.predict_proba(X).to_numpy())
    assert a.head == "auto"  # the parameter is never rewritten


def test_too_few_rows_per_tag_takes_the_cheap_head_and_says_why(hash_embedder):
    texts, labels = _data(2)
    clf = TagClassifier(hash_embedder, head="auto").fit(texts, labels)
    assert clf.head_selection_["chosen"] == "logreg" and clf.selected_head_ == "logreg"
    assert "smallest tag has 2" in clf.head_selection_["candidates"][0]["reason"]


def test_budget_too_short_to_embed_fails_fast_and_clearly():
    texts, labels = _data(60)  # 180 texts at 20 ms: ~3.6 s to embed
    start = time.perf_counter()
    with pytest.raises(InvalidInputError, match=r"time_budget=1 s is too short: embedding the 180 training rows"):
        TagClassifier(SlowEmbedder(), head="auto", time_budget=1).fit(texts, labels)
    assert time.perf_counter() - start < 1.5  # it stopped after the 32-row pilot, not after embedding everything


def test_tiny_budget_keeps_its_promise_and_the_card_says_why(embedder, tmp_path):
    texts, labels = _data(8)
    embedder.encode(["load the model before the clock starts"])
    budget = 6.0  # enough for the frozen head, too little to even time a fine-tuning pilot
    start = time.perf_counter()
    clf = TagClassifier(embedder, head="auto", time_budget=budget).fit(texts, labels)
    assert time.perf_counter() - start <= budget
    sel = clf.head_selection_
    rows = {r["head"]: r for r in sel["candidates"]}
    assert sel["chosen"] == "logreg" and sel["within_budget"] and rows["logreg"]["folds"] == 3
    for head in ("finetune", "contrastive"):
        assert rows[head]["status"] == "skipped" and rows[head]["cv_macro_f1"] is None
        assert "left" in rows[head]["reason"]  # it says how much time the estimate needed and what was left
    path = clf.save(tmp_path / "auto")
    card = (path / "README.md").read_text()
    assert "## Head selection" in card and "chose **logreg**" in card and "skipped" in card
    assert "chosen by `head=\"auto\"`" in card and "logistic regression on frozen embeddings" in card
    loaded = TagClassifier.load(path, embedder=embedder)
    assert loaded.head_selection_ == json.loads(json.dumps(sel)) and loaded.selected_head_ == "logreg"
    np.testing.assert_allclose(loaded.predict_proba(texts).to_numpy(), clf.predict_proba(texts).to_numpy(), atol=1e-6)


@pytest.mark.slow
def test_without_a_budget_fine_tuned_heads_are_measured_and_the_winner_saved(embedder, tmp_path):
    texts, labels = _data(6)
    clf = TagClassifier(embedder, head="auto", time_budget=None, finetune_epochs=1).fit(texts, labels)
    rows = {r["head"]: r for r in clf.head_selection_["candidates"]}
    assert set(rows) == {"logreg", "finetune", "contrastive"}
    assert all(r["folds"] == 3 and r["cv_macro_f1"] is not None for r in rows.values())
    assert rows["finetune"]["seconds"] > 0 and rows["contrastive"]["seconds"] > 0
    assert rows["finetune"]["estimated_s"] > 0 and rows["contrastive"]["estimated_s"] > 0  # priced before running
    assert clf.selected_head_ == {"logreg": "logreg", "finetune": "finetune",
                                  "contrastive": "contrastive"}[clf.head_selection_["chosen"]]
    path = clf.save(tmp_path / "m")
    tuned = (path / "adapter.npz").exists() or (path / "encoder").exists()
    assert tuned == (clf.selected_head_ != "logreg")
    loaded = TagClassifier.load(path)
    np.testing.assert_allclose(loaded.predict_proba(texts).to_numpy(), clf.predict_proba(texts).to_numpy(), atol=1e-4)


def test_cli_time_budget(tmp_path, monkeypatch):
    texts, labels = _data(8)
    data = tmp_path / "l.csv"
    pd.DataFrame({"text": texts, "label": labels}).to_csv(data, index=False)
    out = str(tmp_path / "m")
    for bad in ["0", "-5", "nan", "inf", "abc", "10x", "8d"]:
        assert main(["train", "--data", str(data), "--time-budget", bad, "--out", out]) == 2, bad
    assert main(["train", "--data", str(data), "--head", "logreg", "--time-budget", "10m", "--out", out]) == 2
    assert main(["train", "--data", str(data), "--zero-shot", "--time-budget", "10m", "--out", out]) == 2
    from feedback_nlp import cli

    monkeypatch.setattr(cli, "_embedder", lambda args: HashEmbedder())
    assert main(["train", "--data", str(data), "--time-budget", "2m", "--holdout", "0.25", "--out", out]) == 0
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["params"]["head"] == "auto" and config["params"]["time_budget"] == 120.0
    assert config["head_selection"]["chosen"] == "logreg" and config["metrics"]["accuracy"] >= 0


def test_duration_parser():
    from feedback_nlp.cli import duration

    assert [duration(t) for t in ["600", "90s", "10m", "1.5h", " 2M "]] == [600, 90, 600, 5400, 120]
