"""keep_base=True: a fine-tuned head reads the tuned encoder's vectors beside the frozen base model's."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from feedback_nlp import Embedder
from feedback_nlp.cli import main
from feedback_nlp.embedding import BaseEmbedder
from feedback_nlp.errors import InvalidInputError, ModelMismatchError
from feedback_nlp.tagging import TagClassifier

TEXTS = ["the app crashes on start", "please add dark mode", "crash when I open a file", "add an export button",
         "it freezes when I save", "I would love a calendar view", "error 500 on login", "support markdown please"]
LABELS = ["bug", "feature"] * 4
PROBE = ["it crashes every time", "add a button for that", "login fails with an error", "a dark theme would be nice"]
SETTINGS = {"finetune_epochs": 1, "finetune_batch_size": 4, "finetune_max_seq_length": 16, "cv": 2}


@pytest.fixture(scope="module")
def base():
    return Embedder(backend="torch", cache=None)


@pytest.fixture(scope="module")
def fitted(base, tmp_path_factory):
    """One keep_base LoRA model for the module: (classifier, its saved folder)."""
    clf = TagClassifier(base, head="finetune", keep_base=True, lexical=False, **SETTINGS).fit(TEXTS, LABELS)
    return clf, clf.save(tmp_path_factory.mktemp("keep_base") / "model")


def test_head_reads_both_encoders(fitted, base):
    clf, _ = fitted
    assert clf.base_embedder_ is base and clf.embedder_ is not base
    assert clf.n_features_in_ == 2 * base.dim and clf.coef_.shape == (2, 2 * base.dim)
    # the head learnt from both blocks: neither half of its weights is zero
    assert np.abs(clf.coef_[:, : base.dim]).sum() > 0 and np.abs(clf.coef_[:, base.dim:]).sum() > 0
    tuned, frozen = clf.embedder_.encode(PROBE), base.encode(PROBE)
    z = np.hstack([tuned, frozen]) @ clf.coef_.T + clf.intercept_
    # the head's logits are the linear model over the two blocks side by side, over its temperature
    assert np.allclose(clf.decision_function(PROBE), (z[:, 1] - z[:, 0]) / clf.head_.temperature(), atol=1e-4)
    assert list(clf.predict(PROBE)) == ["bug", "feature", "bug", "feature"]


def test_round_trip_keeps_the_base_channel(fitted):
    clf, folder = fitted
    config = json.loads((folder / "config.json").read_text())
    assert config["format_version"] == 4 and config["params"]["keep_base"] is True
    assert config["embedder"]["keep_base"] == clf.base_embedder_.base_model_id and config["embedder"]["dim"] == 768
    assert "frozen base model's (`keep_base`)" in (folder / "README.md").read_text()
    loaded = TagClassifier.load(folder)
    assert loaded.base_embedder_ is not None and loaded.base_embedder_.base_model_id == config["embedder"]["keep_base"]
    assert np.array_equal(loaded.predict_proba(PROBE).to_numpy(), clf.predict_proba(PROBE).to_numpy())
    given = Embedder(backend="torch", cache=None)
    assert TagClassifier.load(folder, embedder=given).base_embedder_ is given  # a given embedder is the base


def test_load_refuses_another_base_model(fitted):
    _, folder = fitted

    class Other(BaseEmbedder):
        model_id, dim = "some-other-model", 384

        def encode(self, texts):
            return np.ones((len(texts), 384), dtype=np.float32) / np.sqrt(384)

    with pytest.raises(ModelMismatchError, match="keep_base"):
        TagClassifier.load(folder, embedder=Other())


def test_vectors_need_their_texts(fitted):
    clf, _ = fitted
    vectors = clf.embedder_.encode(PROBE)
    expected = clf.predict_proba(PROBE).to_numpy()
    assert np.allclose(clf.predict_proba(vectors, texts=PROBE).to_numpy(), expected, atol=1e-6)
    with pytest.raises(InvalidInputError, match="keep_base=True.*pass the texts"):
        clf.predict(vectors)
    with pytest.raises(InvalidInputError, match="texts has 3 rows but X has 4"):
        clf.predict(vectors, texts=PROBE[:3])
    with pytest.raises(InvalidInputError, match="features"):  # vectors of the two blocks, or of another width
        clf.predict(np.hstack([vectors, vectors]), texts=PROBE)
    bad = vectors.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InvalidInputError, match="finite|NaN"):
        clf.predict(bad, texts=PROBE)
    with pytest.raises(InvalidInputError, match="X is already texts"):
        clf.predict(PROBE, texts=PROBE)


def test_frozen_heads_ignore_it(base):
    clf = TagClassifier(base, keep_base=True, cv=2).fit(TEXTS, LABELS)
    assert clf.base_embedder_ is None and clf.n_features_in_ == base.dim
    assert clone(clf).get_params()["keep_base"] is True  # a parameter like the others: clone, grid search
    with pytest.raises(InvalidInputError, match="keep_base"):
        TagClassifier(base, keep_base="yes").fit(TEXTS, LABELS)


def test_multi_label_and_contrastive(base):
    tags = [["bug"], ["feature", "ui"], ["bug"], ["feature"], ["bug", "ui"], ["feature", "ui"], ["bug"],
            ["feature"]]
    ml = TagClassifier(base, head="finetune", keep_base=True, **SETTINGS).fit(TEXTS, tags)
    assert ml.multi_label_ and ml.coef_.shape == (3, 2 * base.dim)  # lexical on (the default): texts only
    assert ml.predict_proba(PROBE).shape == (4, 3)
    con = TagClassifier(base, head="contrastive", keep_base=True, **SETTINGS).fit(TEXTS, LABELS)
    assert con.n_features_in_ == 2 * base.dim and len(con.predict(PROBE)) == 4


def test_suggest_for_labeling_never_repeats_a_row(fitted):
    clf, _ = fitted
    picks = clf.suggest_for_labeling(PROBE + TEXTS, n=6)
    assert len(picks) == 6 and picks["index"].is_unique


def test_cli_train_keep_base(tmp_path, capsys):
    data = tmp_path / "labelled.csv"
    pd.DataFrame({"text": TEXTS * 2, "label": LABELS * 2}).to_csv(data, index=False)
    out = tmp_path / "model"
    assert main(["train", "--data", str(data), "--head", "finetune", "--keep-base", "--holdout", "0",
                 "--out", str(out), "--quiet"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["params"]["keep_base"] is True and config["embedder"]["dim"] == 768


def _blocks(seed: int = 0, n: int = 60, d: int = 6):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centres = rng.normal(size=(3, 2 * d))
    emb = centres[y] + rng.normal(scale=1.5, size=(n, 2 * d))
    return emb.astype(np.float32), y


def test_averaged_head_is_the_mean_of_the_two_block_heads():
    from feedback_nlp._heads import FitSettings, MultiClassHead, MultiLabelHead, fit_averaged

    emb, y = _blocks()
    settings = FitSettings(cv=3)
    out = fit_averaged(MultiClassHead(), [(emb[:, :6], y), (emb[:, 6:], y)], settings, shared=len(y))
    a, b = MultiClassHead().fit(emb[:, :6], y, settings), MultiClassHead().fit(emb[:, 6:], y, settings)
    raw = emb @ out.coef_.T + out.intercept_
    assert np.allclose(raw, (a.logits(emb[:, :6]) + b.logits(emb[:, 6:])) / 2, atol=1e-4)
    assert out.coef_.shape == (3, 12) and out.oof_ is not None and out.temperature_ > 0
    Y = np.eye(3, dtype=int)[y]
    Y[::4, 0] = 1  # multi-label: some rows carry tag 0 too
    ml = fit_averaged(MultiLabelHead(), [(emb[:, :6], Y), (emb[:, 6:], Y)], settings, shared=len(Y))
    a, b = MultiLabelHead().fit(emb[:, :6], Y, settings), MultiLabelHead().fit(emb[:, 6:], Y, settings)
    expected = (a.logits(emb[:, :6]) + b.logits(emb[:, 6:])) / 2
    assert np.allclose(emb @ ml.coef_.T + ml.intercept_, expected, atol=1e-4)
    assert ml.oof_ is not None and ((ml.thresholds_ >= 0.02) & (ml.thresholds_ <= 0.98)).all()


def test_self_training_pseudo_labels_each_block_on_its_own(base, monkeypatch):
    from feedback_nlp import training

    calls = []
    real = training.pseudo_labels

    def spy(emb, y, backlog, **kw):
        calls.append((emb.shape[1], backlog.shape[1]))
        return real(emb, y, backlog, **kw)

    monkeypatch.setattr(training, "pseudo_labels", spy)
    backlog = PROBE + ["the page is blank after update", "could you add a search box", "sync fails again",
                       "please support two accounts"]
    clf = TagClassifier(base, head="finetune", keep_base=True, self_train=True, **SETTINGS)
    clf.fit(TEXTS, LABELS, unlabelled=backlog)
    assert calls == [(base.dim, base.dim), (base.dim, base.dim)]  # the tuned block, then the base block
    assert clf.self_trained_rows_ == len(backlog) and clf.coef_.shape == (2, 2 * base.dim)
    assert list(clf.predict(PROBE)) == ["bug", "feature", "bug", "feature"]


def test_full_fine_tuning_keeps_the_base_too(base, tmp_path):
    clf = TagClassifier(base, head="finetune", adapter=None, keep_base=True, lexical=False, **SETTINGS)
    clf.fit(TEXTS, LABELS)
    folder = clf.save(tmp_path / "full")
    assert (folder / "encoder").is_dir() and not (folder / "adapter.npz").exists()
    loaded = TagClassifier.load(folder)
    assert loaded.base_embedder_.base_model_id == base.base_model_id
    assert np.allclose(loaded.predict_proba(PROBE).to_numpy(), clf.predict_proba(PROBE).to_numpy(), atol=1e-6)
