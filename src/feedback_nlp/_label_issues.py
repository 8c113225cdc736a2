"""Finding mislabelled rows from out-of-fold probabilities: confident learning (Northcutt et al., 2021).

:func:`label_issue_mask` uses cleanlab (``pip install 'feedback_nlp[cleanlab]'``) when it is installed, and
otherwise :func:`confident_learning_mask`, a built-in implementation of the same default method
(``filter_by="prune_by_noise_rate"``), so results do not depend much on whether the extra is present:

1. per-class thresholds: the mean probability the model gives class j on rows labelled j (self-confidence);
2. the confident joint C[i, j]: rows labelled i whose probability for j reaches j's threshold (the most
   probable such class when several do), calibrated so row i sums to the count of label i;
3. for every off-diagonal cell, prune the C[i, j] rows labelled i with the largest margin p_j - p_i;
4. never flag a row whose given label is also the model's top prediction.

Multi-label data (:func:`multi_label_issue_mask`) is judged one tag at a time, as cleanlab's
``multilabel_classification.filter.find_label_issues`` does: each tag is a binary problem (has it / has it not)
with the tag's own out-of-fold probability, so a wrong extra tag and a missing tag are found, not only a wrong
first tag.

Example:
    >>> import numpy as np
    >>> P = np.array([[.9, .1], [.8, .2], [.85, .15], [.1, .9], [.2, .8], [.15, .85], [.05, .95]])
    >>> confident_learning_mask(np.array([0, 0, 0, 1, 1, 1, 0]), P).nonzero()[0].tolist()
    [6]
"""

from __future__ import annotations

import importlib.util

import numpy as np

from .errors import InvalidInputError, MissingDependencyError

__all__ = ["confident_learning_mask", "label_issue_mask", "multi_label_issue_mask"]

_EPS = 1e-6  # cleanlab's tolerance when comparing a probability with a threshold


def _round_preserving_row_totals(m: np.ndarray) -> np.ndarray:
    """Round each row to integers whose sum equals the row's rounded sum (largest remainders first)."""
    out = np.floor(m).astype(int)
    for i, row in enumerate(m):
        short = int(round(row.sum())) - int(out[i].sum())
        if short > 0:
            out[i, np.argsort(-(row - out[i]), kind="stable")[:short]] += 1
        elif short < 0:
            out[i, np.argsort(row - out[i], kind="stable")[:-short]] -= 1
    return out


def _confident_joint(labels: np.ndarray, P: np.ndarray) -> np.ndarray:
    """C[i, j]: rows labelled i confidently belonging to j, calibrated to the label counts."""
    k = P.shape[1]
    counts = np.bincount(labels, minlength=k)
    thresholds = np.array([P[labels == j, j].mean() if counts[j] else 1.0 for j in range(k)])
    confident = thresholds - _EPS <= P
    n_confident = confident.sum(axis=1)
    guess = np.where(n_confident > 1, P.argmax(axis=1), confident.argmax(axis=1))
    has = n_confident > 0
    cj = np.zeros((k, k))
    np.add.at(cj, (labels[has], guess[has]), 1)
    np.fill_diagonal(cj, np.maximum(cj.diagonal(), 1))
    cj = cj / np.maximum(cj.sum(axis=1, keepdims=True), 1e-12) * counts[:, None]  # row i sums to count(i)
    cj = cj / max(cj.sum(), 1e-12) * counts.sum()
    return _round_preserving_row_totals(cj)


def confident_learning_mask(labels: np.ndarray, P: np.ndarray, *, min_per_class: int = 1) -> np.ndarray:
    """Rows whose given label (class index) is probably wrong, by confident learning's noise-rate pruning."""
    labels = np.asarray(labels, dtype=int)
    k = P.shape[1]
    prune = _confident_joint(labels, P)  # prune[i, j]: how many rows labelled i to flag as truly j
    # keep at least min_per_class rows per label (cleanlab's _keep_at_least_n_per_class)
    diag = prune.diagonal().copy()
    lift = np.maximum(diag, min_per_class) - diag
    per_row = np.maximum(np.count_nonzero(prune, axis=1) - 1, 1)
    prune = np.maximum(prune - (lift / per_row)[:, None], 0)
    np.fill_diagonal(prune, diag + lift)
    prune = _round_preserving_row_totals(prune)
    mask = np.zeros(len(labels), dtype=bool)
    for i in range(k):
        rows = np.flatnonzero(labels == i)
        if len(rows) <= min_per_class:
            continue
        for j in range(k):
            n = int(prune[i, j])
            if j == i or n <= 0:
                continue
            margin = P[rows, j] - P[rows, i]
            mask[rows[np.argsort(-margin, kind="stable")[:n]]] = True
    top = (P + np.eye(k)[labels] * 1e-6).argmax(axis=1)  # ties go to the given label
    mask[top == labels] = False
    return mask


def label_issue_mask(labels: np.ndarray, P: np.ndarray, *, method: str = "auto") -> tuple[np.ndarray, str]:
    """Rows flagged as label issues, and the method used: ``"cleanlab"`` or ``"builtin"``.

    ``method="auto"`` uses cleanlab when installed; ``"cleanlab"`` requires it; ``"builtin"`` never uses it.
    """
    if method not in ("auto", "cleanlab", "builtin"):
        raise InvalidInputError(f"method must be 'auto', 'cleanlab' or 'builtin', got {method!r}")
    P = np.asarray(P, dtype=float)
    if P.ndim != 2 or len(P) != len(labels) or not np.isfinite(P).all() or (P < -1e-6).any() or (P > 1 + 1e-6).any():
        raise InvalidInputError("probabilities must be a finite (rows, classes) array of values in [0, 1] with one "
                                "row per label")
    raw = np.asarray(labels)
    if raw.size and (raw.dtype.kind not in "iu" or raw.min() < 0 or raw.max() >= P.shape[1]):
        # a float 0.5 was cut to 0 and a string raised int()'s error; an index past the columns, numpy's
        raise InvalidInputError(f"labels must be class indices 0..{P.shape[1] - 1} (one column of P each)")
    labels = raw.astype(int)
    has_cleanlab = importlib.util.find_spec("cleanlab") is not None
    if method == "cleanlab" and not has_cleanlab:
        raise MissingDependencyError("method='cleanlab' needs cleanlab: pip install 'feedback_nlp[cleanlab]'")
    if method == "builtin" or not has_cleanlab:
        return confident_learning_mask(labels, P), "builtin"
    from cleanlab.filter import find_label_issues

    return np.asarray(find_label_issues(labels, P, filter_by="prune_by_noise_rate"), dtype=bool), "cleanlab"


def multi_label_issue_mask(Y: np.ndarray, P: np.ndarray, *, method: str = "auto") -> tuple[np.ndarray, str]:
    """Doubted (row, tag) cells of multi-label data, and the method used: one binary confident-learning problem
    per tag (cleanlab's one-vs-rest reduction), ``Y`` the 0/1 tag matrix and ``P`` each tag's independent
    probability. A tag on every row, or on none, is not judged (no row shows what its absence looks like).

    >>> Y = np.array([[1, 0], [1, 0], [1, 0], [0, 1], [0, 1], [0, 1], [1, 1]])
    >>> P = np.array([[.9, .1], [.8, .2], [.85, .1], [.1, .9], [.2, .8], [.15, .85], [.05, .95]])
    >>> multi_label_issue_mask(Y, P, method="builtin")[0].nonzero()
    (array([6]), array([0]))
    """
    if method not in ("auto", "cleanlab", "builtin"):
        raise InvalidInputError(f"method must be 'auto', 'cleanlab' or 'builtin', got {method!r}")
    Y, P = np.asarray(Y), np.asarray(P, dtype=float)
    if Y.ndim != 2 or Y.shape != P.shape or (Y.size and not np.isin(Y, (0, 1)).all()):
        raise InvalidInputError("multi-label targets must be a 0/1 (rows, tags) matrix of the probabilities' shape")
    mask = np.zeros(Y.shape, dtype=bool)
    used = "builtin" if method == "builtin" else ("cleanlab" if method == "cleanlab" else "")
    for j in range(Y.shape[1]):
        yj = Y[:, j].astype(int)
        if len(np.unique(yj)) < 2:  # a tag on every row, or on none
            continue
        pj = P[:, j].clip(0.0, 1.0)
        mask[:, j], used = label_issue_mask(yj, np.column_stack([1.0 - pj, pj]), method=method)
    if not used:  # nothing judged: say what would have run
        used = "cleanlab" if importlib.util.find_spec("cleanlab") is not None else "builtin"
    return mask, used
