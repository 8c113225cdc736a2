"""finetune_calibration: a fine-tuned head is calibrated on scores from encoders that never saw the row."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from feedback_nlp import Embedder
from feedback_nlp._heads import _fit_temperature, _platt
from feedback_nlp.cli import main
from feedback_nlp.errors import InvalidInputError
from feedback_nlp.tagging import TagClassifier, _crossfit_halves, _Targets

TEXTS = ["the app crashes on start", "please add dark mode", "crash when I open a file", "add an export button",
         "it freezes when I save", "I would love a calendar view", "error 500 on login", "support markdown please",
         "the page is blank after update", "could you add keyboard shortcuts"]
# two labels flipped (rows 0 and 3), so that held-out scores make mistakes and no temperature sits at its bound
LABELS = ["feature", "feature", "bug", "bug", "bug", "feature", "bug", "feature", "bug", "feature"]
PROBE = ["it crashes every time", "add a button for that", "login fails with an error", "a dark theme would be nice"]
SETTINGS = {"finetune_epochs": 2, "finetune_batch_size": 4, "finetune_max_seq_length": 16, "cv": 2, "lexical": False}


@pytest.fixture(scope="module")
def base():
    return Embedder(backend="torch", cache=None)


@pytest.fixture(scope="module")
def crossfit(base):
    return TagClassifier(base, head="finetune", **SETTINGS).fit(TEXTS, LABELS)


def _held_out_decisions(clf: TagClassifier, texts: list[str], labels: list) -> np.ndarray:
    """What the cross-fit should compute, rebuilt by hand: each half scored by a model fit on the other."""
    targets = _Targets(labels, None, None)
    out = np.zeros((len(texts), len(clf.classes_)))
    for train, test in _crossfit_halves(targets, int(clf.random_state)):
        sub = clone(clf).set_params(finetune_calibration="in_sample", lexical=False)
        sub.fit([texts[i] for i in train], [labels[i] for i in train])
        out[test] = sub.head_.decision(sub._features([texts[i] for i in test]))
    return out


def test_temperature_comes_from_encoders_that_never_saw_the_row(crossfit):
    assert crossfit.calibration_.startswith("cross-fitted")
    y = np.searchsorted(crossfit.classes_, LABELS)
    expected = _fit_temperature(_held_out_decisions(crossfit, TEXTS, LABELS), y)
    assert crossfit.head_.temperature_ == pytest.approx(expected, rel=1e-5)


def test_a_self_trained_model_keeps_the_in_sample_calibration_and_says_why(base):
    # halves trained on the labels alone calibrated a self-trained model worse than in sample (banking77 8-shot)
    backlog = ["crashes after the update", "add a widget to the home screen", "it fails when I save",
               "please support tags", "blank screen on launch", "an option to export csv", "error on sign in",
               "a setting for the font size"]
    clf = TagClassifier(base, head="finetune", self_train=True, **SETTINGS).fit(TEXTS, LABELS, unlabelled=backlog)
    assert "self-trained, so not cross-fitted" in clf.calibration_
    in_sample = clone(clf).set_params(finetune_calibration="in_sample").fit(TEXTS, LABELS, unlabelled=backlog)
    assert clf.head_.temperature_ == pytest.approx(in_sample.head_.temperature_, rel=1e-6)
    assert np.array_equal(clf.coef_, in_sample.coef_)


def test_only_the_calibration_changes(crossfit):
    in_sample = clone(crossfit).set_params(finetune_calibration="in_sample").fit(TEXTS, LABELS)
    assert "over-confident" in in_sample.calibration_
    # same encoder and head weights (same seed): the probabilities differ by the temperature alone
    assert np.array_equal(in_sample.coef_, crossfit.coef_)
    assert list(in_sample.predict(PROBE)) == list(crossfit.predict(PROBE))
    assert in_sample.head_.temperature_ != pytest.approx(crossfit.head_.temperature_)
    z = crossfit.head_.decision(crossfit._features(PROBE))
    assert np.allclose(np.log(crossfit.predict_proba(PROBE).to_numpy()).T[1] - np.log(crossfit.predict_proba(PROBE).to_numpy()).T[0],
                       (z[:, 1] - z[:, 0]) / crossfit.head_.temperature_, atol=1e-4)


def test_too_few_rows_per_tag_falls_back_and_says_so(base, caplog):
    with caplog.at_level(logging.WARNING, logger="feedback_nlp.tagging"):
        clf = TagClassifier(base, head="finetune", **SETTINGS).fit(TEXTS[:6], LABELS[:6])  # 3 rows per tag
    assert "too few rows per tag" in clf.calibration_
    assert "calibrated in sample" in caplog.text and "smallest has 3" in caplog.text


def test_multi_label_refits_each_tags_platt_scaling_and_threshold(base):
    tags = [["bug"], ["feature"], ["bug", "ui"], ["feature", "ui"], ["bug"], ["feature", "ui"], ["bug", "ui"],
            ["feature"], ["bug", "ui"], ["feature", "ui"]]
    clf = TagClassifier(base, head="finetune", **SETTINGS).fit(TEXTS, tags)
    assert clf.multi_label_ and clf.calibration_.startswith("cross-fitted")
    decisions = _held_out_decisions(clf, TEXTS, tags)
    Y = _Targets(tags, None, None).Y
    for j in range(Y.shape[1]):
        (a, c), cut, _ = _platt(decisions[:, j], Y[:, j])
        assert clf.head_.platt_[j] == pytest.approx([a, c], rel=1e-4, abs=1e-5)
        assert clf.head_.thresholds_[j] == pytest.approx(cut)


def test_a_multi_label_tag_missing_from_a_half_falls_back(base, caplog):
    # "ui" has 4 rows, all "bug" first: a split of the bug rows can leave fewer than 2 of them in a half
    tags = [["bug", "ui"], ["feature"], ["bug", "ui"], ["feature"], ["bug", "ui"], ["feature"], ["bug", "ui"],
            ["feature"], ["bug"], ["feature"]]
    targets = _Targets(tags, None, None)
    seed = next(s for s in range(100) if _crossfit_halves(targets, s) is None)
    with caplog.at_level(logging.WARNING, logger="feedback_nlp.tagging"):
        clf = TagClassifier(base, head="finetune", random_state=seed, **SETTINGS).fit(TEXTS, tags)
    assert "no split kept every tag in both halves" in clf.calibration_ and "over-confident" in caplog.text
    kept = next(s for s in range(100) if _crossfit_halves(targets, s) is not None)
    halves = _crossfit_halves(targets, kept)
    assert all(targets.Y[rows].sum(axis=0).min() >= 2 for rows, _ in halves)


def test_save_and_load(crossfit, tmp_path):
    folder = crossfit.save(tmp_path / "crossfit")
    config = json.loads((folder / "config.json").read_text())
    # the default is not written, so older versions (whose loader takes every saved parameter) still load it
    assert "finetune_calibration" not in config["params"] and config["format_version"] == 1
    assert config["calibration"] == crossfit.calibration_ and "cross-fitted" in (folder / "README.md").read_text()
    loaded = TagClassifier.load(folder)
    assert loaded.finetune_calibration == "crossfit" and loaded.calibration_ == crossfit.calibration_
    assert np.array_equal(loaded.predict_proba(PROBE).to_numpy(), crossfit.predict_proba(PROBE).to_numpy())
    in_sample = clone(crossfit).set_params(finetune_calibration="in_sample").fit(TEXTS, LABELS)
    folder = in_sample.save(tmp_path / "in_sample")
    config = json.loads((folder / "config.json").read_text())
    assert config["params"]["finetune_calibration"] == "in_sample" and config["format_version"] == 5
    assert TagClassifier.load(folder).finetune_calibration == "in_sample"


def test_frozen_heads_ignore_it(base):
    a = TagClassifier(base, **SETTINGS).fit(TEXTS, LABELS)
    b = TagClassifier(base, finetune_calibration="in_sample", **SETTINGS).fit(TEXTS, LABELS)
    assert a.calibration_ is None and b.calibration_ is None
    assert np.array_equal(a.predict_proba(PROBE).to_numpy(), b.predict_proba(PROBE).to_numpy())


@pytest.mark.parametrize("value", ["cross", "", None, 1])
def test_a_bad_value_is_refused(base, value):
    with pytest.raises((InvalidInputError, ValueError), match="finetune_calibration"):
        TagClassifier(base, head="finetune", finetune_calibration=value, **SETTINGS).fit(TEXTS, LABELS)


def test_cli_flag(tmp_path, capsys):
    data = tmp_path / "labelled.csv"
    pd.DataFrame({"text": TEXTS, "label": LABELS}).to_csv(data, index=False)
    for value, params_have_it in (("in_sample", True), ("crossfit", False)):
        out = tmp_path / value
        assert main(["train", "--data", str(data), "--head", "finetune", "--calibration", value, "--holdout", "0",
                     "--no-lexical", "--out", str(out), "--quiet"]) == 0
        config = json.loads((out / "config.json").read_text())
        assert ("finetune_calibration" in config["params"]) is params_have_it
        assert ("cross-fitted" in config["calibration"]) is (value == "crossfit")
    assert main(["train", "--data", str(data), "--head", "finetune", "--calibration", "sometimes", "--out",
                 str(tmp_path / "x"), "--quiet"]) == 2
    assert "argument --calibration: invalid choice: 'sometimes'" in capsys.readouterr().err
