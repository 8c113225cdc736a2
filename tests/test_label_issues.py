"""find_label_issues: cleanlab when installed, a built-in confident-learning rule that matches it otherwise."""

import importlib.util

import numpy as np
import pytest

import feedback_nlp._label_issues as li
from feedback_nlp import InvalidInputError, MissingDependencyError
from feedback_nlp.tagging import TagClassifier


@pytest.fixture(scope="module")
def noisy_blobs():
    """2,000 points in 64-d around 10 overlapping centres, 10% of labels flipped to another class."""
    rng = np.random.default_rng(0)
    k, n = 10, 2000
    centres = rng.normal(size=(k, 64))
    y_true = rng.integers(0, k, n)
    X = centres[y_true] + rng.normal(scale=1.6, size=(n, 64))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    flipped = rng.choice(n, n // 10, replace=False)
    y = y_true.copy()
    y[flipped] = (y_true[flipped] + rng.integers(1, k, len(flipped))) % k
    return X.astype(np.float32), y, set(flipped.tolist())


def _recall_precision(issues, flipped):
    found = set(issues["index"]) & flipped
    return len(found) / len(flipped), len(found) / max(len(issues), 1)


def test_builtin_finds_planted_flips(noisy_blobs, hash_embedder):
    X, y, flipped = noisy_blobs
    issues = TagClassifier(hash_embedder).find_label_issues(X, y, method="builtin")
    assert issues.attrs["method"] == "builtin"
    recall, precision = _recall_precision(issues, flipped)
    assert recall > 0.85 and precision > 0.8, (recall, precision)
    assert issues["index"].is_unique and (issues["given"] != issues["suggested"]).all()
    assert issues["given"].map(type).eq(int).all()  # labels keep their type in the report


def test_builtin_matches_cleanlab(noisy_blobs, hash_embedder):
    pytest.importorskip("cleanlab")
    X, y, flipped = noisy_blobs
    clf = TagClassifier(hash_embedder)
    ours = clf.find_label_issues(X, y, method="builtin")
    theirs = clf.find_label_issues(X, y, method="cleanlab")
    assert theirs.attrs["method"] == "cleanlab" and clf.find_label_issues(X, y).attrs["method"] == "cleanlab"
    r_ours, p_ours = _recall_precision(ours, flipped)
    r_theirs, p_theirs = _recall_precision(theirs, flipped)
    assert r_ours >= r_theirs - 0.01 and p_ours >= p_theirs - 0.02, (r_ours, r_theirs, p_ours, p_theirs)
    a, b = set(ours["index"]), set(theirs["index"])
    assert len(a & b) / len(a | b) > 0.95  # the same rows, not just the same counts


def test_auto_falls_back_to_builtin_without_cleanlab(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(li.importlib.util, "find_spec", lambda name: None if name == "cleanlab" else real(name))
    P = np.array([[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.1, 0.9], [0.05, 0.95]])
    mask, used = li.label_issue_mask(np.array([0, 0, 1, 1, 0]), P)
    assert used == "builtin" and mask.tolist() == [False, False, False, False, True]
    with pytest.raises(MissingDependencyError, match=r"feedback_nlp\[cleanlab\]"):
        li.label_issue_mask(np.array([0, 0, 1, 1, 0]), P, method="cleanlab")


def test_bad_arguments():
    P = np.full((3, 2), 0.5)
    with pytest.raises(InvalidInputError, match="method must be"):
        li.label_issue_mask(np.array([0, 1, 0]), P, method="magic")
    with pytest.raises(InvalidInputError, match="finite"):
        li.label_issue_mask(np.array([0, 1, 0]), np.full((3, 2), np.nan))
    with pytest.raises(InvalidInputError, match="one row per label"):
        li.label_issue_mask(np.array([0, 1]), P)


def test_clean_labels_give_few_issues(noisy_blobs, hash_embedder):
    X, _, _ = noisy_blobs
    centre_labels = (X @ np.random.default_rng(1).normal(size=(64, 3))).argmax(axis=1)  # separable labels
    issues = TagClassifier(hash_embedder).find_label_issues(X, centre_labels, method="builtin")
    assert len(issues) < 0.02 * len(X)
