"""The decision heads of :class:`~feedback_nlp.tagging.TagClassifier`: multi-class, multi-label, zero-shot.

Each head is a small object with one interface — ``fit`` (learn from embeddings and encoded targets),
``logits`` (calibrated log-scale scores), ``scores`` (calibrated probabilities), ``decide`` (which tags a
row gets, and how confident) and ``arrays`` (what is saved) — so the classifier never asks which mode it
is in. Heads know nothing about label values, texts or embedders: targets are class indices (multi-class)
or a 0/1 matrix (multi-label), and the classifier maps indices back to its ``classes_``.

Example:
    >>> import numpy as np
    >>> emb = np.eye(4, dtype=np.float32)[[0, 0, 1, 1, 2, 2, 3, 3]] + 0.01
    >>> head = MultiClassHead().fit(emb, np.array([0, 0, 1, 1, 2, 2, 3, 3]), FitSettings(cv=2))
    >>> head.decide(head.scores(emb[:1]))[0]
    [[0]]
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from .errors import InvalidInputError
from .evaluation import best_f1_threshold

__all__ = ["FitSettings", "Head", "MultiClassHead", "MultiLabelHead", "ZeroShotHead", "head_from_arrays"]


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


@dataclass(frozen=True)
class FitSettings:
    """The classifier's training settings a head needs: regularisation, folds, seed."""

    C: float = 10.0
    cv: int = 5
    random_state: int = 0

    def logreg(self) -> LogisticRegression:
        return LogisticRegression(C=self.C, max_iter=3000, random_state=self.random_state)

    def folds(self, y: np.ndarray, X: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Stratified out-of-fold splits; none when a class has fewer than 2 rows or cv < 2.

        Rows of ``X`` that are identical (one text twice: the same vector, the same words) share a fold: a copy
        on the training side would answer its twin, and the temperature, thresholds and word weights fitted on
        those scores would trust the model more than new feedback warrants. Without repeats the splits are the
        plain stratified ones.
        """
        counts = np.bincount(y)
        k = min(self.cv, int(counts[counts > 0].min()))
        if k < 2:
            return iter(())
        groups = _repeated_rows(X)
        if groups is not None:
            # a tag that is one row repeated (or whose vectors cannot tell its texts apart) would leave the
            # training folds if its copies were grouped: its copies alone are split, and the other tags' copies
            # still share a fold (one such tag sent every tag back to the plain split)
            one_text = np.isin(y, [c for c in np.flatnonzero(counts) if len(np.unique(groups[y == c])) < 2])
            if one_text.any():
                groups = groups.copy()
                groups[one_text] = groups.max() + 1 + np.arange(int(one_text.sum()))
            # as many folds as the tag with the fewest distinct rows allows
            distinct = min(len(np.unique(groups[y == c])) for c in np.flatnonzero(counts))
            if min(k, distinct) >= 2:
                from sklearn.model_selection import StratifiedGroupKFold

                splits = list(StratifiedGroupKFold(n_splits=min(k, distinct), shuffle=True,
                                                   random_state=self.random_state).split(X, y, groups))
                # a text repeated under two tags is one group holding both: a fold could then train on one tag
                # alone (scikit-learn's "needs samples of at least 2 classes", a crash of fit)
                if all(len(np.unique(y[tr])) >= 2 for tr, _ in splits):
                    return iter(splits)
        return StratifiedKFold(n_splits=k, shuffle=True, random_state=self.random_state).split(X, y)


def _repeated_rows(X: Any) -> np.ndarray | None:
    """A group number per row of a dense or sparse matrix, shared by identical rows; None when all differ."""
    import hashlib

    from scipy import sparse

    if sparse.issparse(X):
        csr: Any = sparse.csr_matrix(X, copy=True)  # type: ignore[call-overload]
        csr.sort_indices()
        rows = (csr.indices[a:b].tobytes() + csr.data[a:b].tobytes() for a, b in zip(csr.indptr[:-1], csr.indptr[1:]))
    else:
        rows = (r.tobytes() for r in np.ascontiguousarray(X))
    keys = [hashlib.blake2b(r, digest_size=16).digest() for r in rows]
    if len(set(keys)) == len(keys):
        return None
    return np.unique(np.array(keys, dtype=object), return_inverse=True)[1].ravel()


def _class_logits(model: LogisticRegression, X: np.ndarray) -> np.ndarray:
    """One logit column per class the model saw: sklearn's decision_function is 1-D for two classes."""
    z = model.decision_function(X)
    return np.column_stack([-z / 2, z / 2]) if z.ndim == 1 else z


def _part(sample_weight: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    return None if sample_weight is None else sample_weight[rows]


def out_of_fold_logits(X: Any, y: np.ndarray, settings: FitSettings,
                       sample_weight: np.ndarray | None = None) -> np.ndarray | None:
    """Multi-class logits of each row from a logistic regression fitted without its fold, one column per class
    (-1e3 where a fold's training part lacked the class); None when no fold can be drawn. ``X`` may be sparse;
    ``sample_weight`` weighs the training rows of each fold."""
    k = int(y.max()) + 1
    oof = np.zeros((len(y), k))
    seen_fold = False
    for tr, te in settings.folds(y, X):
        m = settings.logreg().fit(X[tr], y[tr], sample_weight=_part(sample_weight, tr))
        oof[np.ix_(te, m.classes_)] = _class_logits(m, X[te])
        missing = np.setdiff1d(np.arange(k), m.classes_)
        oof[np.ix_(te, missing)] = -1e3  # a class absent from a fold's training part is impossible there
        seen_fold = True
    return oof if seen_fold else None


def out_of_fold_scores(X: Any, y: np.ndarray, settings: FitSettings,
                       sample_weight: np.ndarray | None = None) -> np.ndarray | None:
    """Binary (one tag) decision values of each row from a logistic regression fitted without its fold; None
    when no fold can be drawn. ``X`` may be sparse."""
    oof = np.zeros(len(y))
    seen_fold = False
    for tr, te in settings.folds(y, X):
        oof[te] = settings.logreg().fit(X[tr], y[tr], sample_weight=_part(sample_weight, tr)).decision_function(X[te])
        seen_fold = True
    return oof if seen_fold else None


def _fit_temperature(logits: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    """Temperature that minimises the out-of-fold negative log-likelihood (weighted by ``sample_weight``)."""
    from scipy.optimize import minimize_scalar

    def nll(t: float) -> float:
        p = softmax(logits / t)
        return -float(np.average(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)), weights=sample_weight))

    return float(minimize_scalar(nll, bounds=(0.05, 20.0), method="bounded").x)


class Head(ABC):
    """What a decision head does; see the module docstring."""

    kind: ClassVar[str]
    multi_label: bool

    @abstractmethod
    def fit(self, emb: np.ndarray, targets: np.ndarray | None, settings: FitSettings,
            sample_weight: np.ndarray | None = None) -> Head:
        """Learn from embeddings and encoded targets (rows weighted by ``sample_weight``); returns self."""

    @abstractmethod
    def logits(self, emb: np.ndarray) -> np.ndarray:
        """Calibrated log-scale scores, shape (n, classes)."""

    @abstractmethod
    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Probabilities from (calibrated, possibly fused) logits, shape (n, classes)."""

    def scores(self, emb: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, shape (n, classes)."""
        return self.probabilities(self.logits(emb))

    @abstractmethod
    def decide(self, P: np.ndarray) -> tuple[list[list[int]], np.ndarray]:
        """Chosen class indices per row (most probable first) and the row's confidence."""

    @abstractmethod
    def arrays(self) -> dict[str, np.ndarray]:
        """The learned arrays, by the attribute names saved in ``weights.npz``."""

    def temperature(self) -> float:
        return float(getattr(self, "temperature_", 1.0))


class MultiClassHead(Head):
    """Logistic regression on embeddings; softmax temperature fitted on out-of-fold logits."""

    kind = "multi_class"
    multi_label = False

    def fit(self, emb: np.ndarray, targets: np.ndarray | None, settings: FitSettings,
            sample_weight: np.ndarray | None = None) -> MultiClassHead:
        """``targets``: one class index per row; ``sample_weight`` weighs the logistic regression, its
        out-of-fold logits and the temperature."""
        if targets is None:
            raise InvalidInputError("a multi-class head needs targets")
        y = targets
        self.temperature_ = 1.0
        oof = out_of_fold_logits(emb, y, settings, sample_weight)
        if oof is not None:
            self.temperature_ = _fit_temperature(oof, y, sample_weight)
        # calibrated out-of-fold logits, for fusing another channel (the lexical one); not saved
        self.oof_ = None if oof is None else oof / self.temperature_
        model = settings.logreg().fit(emb, y, sample_weight=sample_weight)
        coef, intercept = model.coef_.astype(np.float32), model.intercept_.astype(np.float32)
        if coef.shape[0] == 1:  # binary: sklearn stores one row; expand to two symmetric logits
            coef = np.vstack([-coef / 2, coef / 2])
            intercept = np.array([-intercept[0] / 2, intercept[0] / 2], dtype=np.float32)
        self.coef_, self.intercept_ = coef, intercept
        return self

    def decision(self, emb: np.ndarray) -> np.ndarray:
        """Uncalibrated logits (before the temperature)."""
        return emb @ self.coef_.T + self.intercept_

    def logits(self, emb: np.ndarray) -> np.ndarray:
        return self.decision(emb) / self.temperature_

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        return softmax(logits)

    def decide(self, P: np.ndarray) -> tuple[list[list[int]], np.ndarray]:
        best = P.argmax(axis=1)
        return [[int(b)] for b in best], P[np.arange(len(P)), best]

    def arrays(self) -> dict[str, np.ndarray]:
        # thresholds_ (zeros) kept so models saved now load in older versions of the library
        return {"coef_": self.coef_, "intercept_": self.intercept_,
                "thresholds_": np.zeros(len(self.coef_), dtype=np.float32)}


def _platt(scores: np.ndarray, y: np.ndarray,
           sample_weight: np.ndarray | None = None) -> tuple[tuple[float, float], float, np.ndarray]:
    """One tag's Platt scaling ``a * score + c`` fitted on out-of-fold scores, the F1-optimal threshold of
    the calibrated probability, and the calibrated scores (both weighted by ``sample_weight``)."""
    cal = LogisticRegression(C=1e4).fit(scores[:, None], y, sample_weight=sample_weight)
    a, c = np.float32(cal.coef_[0, 0]), np.float32(cal.intercept_[0])  # as stored: the same scores at prediction
    calibrated = a * scores + c
    weighted = {} if sample_weight is None else {"sample_weight": sample_weight}
    cut, _ = best_f1_threshold(sigmoid(calibrated), y, **weighted)
    return (float(a), float(c)), float(np.clip(cut, 0.02, 0.98)), calibrated


class MultiLabelHead(Head):
    """One logistic regression per tag, Platt-calibrated out of fold, with a per-tag F1-optimal threshold.

    A row whose tags all fall below their thresholds gets its most probable tag: rows never end untagged
    unless the classifier abstains.
    """

    kind = "multi_label"
    multi_label = True

    def fit(self, emb: np.ndarray, targets: np.ndarray | None, settings: FitSettings,
            sample_weight: np.ndarray | None = None) -> MultiLabelHead:
        """``targets``: a 0/1 matrix, one column per tag; ``sample_weight`` weighs each tag's regression, its
        Platt scaling and its threshold."""
        if targets is None:
            raise InvalidInputError("a multi-label head needs targets")
        Y = targets
        k = Y.shape[1]
        coef = np.zeros((k, emb.shape[1]), dtype=np.float32)
        intercept = np.zeros(k, dtype=np.float32)
        platt = np.tile(np.array([1.0, 0.0], dtype=np.float32), (k, 1))
        thresholds = np.full(k, 0.5, dtype=np.float32)
        calibrated = np.zeros(Y.shape)  # out-of-fold Platt-scaled logits, for fusing the lexical channel
        all_folds = True
        for j in range(k):
            yj = Y[:, j]
            if yj.min() == yj.max():  # a tag on every row: always predict it
                intercept[j], platt[j] = 50.0, (1.0, 0.0)
                calibrated[:, j] = 50.0
                continue
            oof = out_of_fold_scores(emb, yj, settings, sample_weight)
            if oof is not None:
                platt[j], thresholds[j], calibrated[:, j] = _platt(oof, yj, sample_weight)
            all_folds = all_folds and oof is not None
            m = settings.logreg().fit(emb, yj, sample_weight=sample_weight)
            coef[j], intercept[j] = m.coef_[0], m.intercept_[0]
        self.coef_, self.intercept_, self.platt_, self.thresholds_ = coef, intercept, platt, thresholds
        self.oof_ = calibrated if all_folds else None  # not saved
        return self

    def decision(self, emb: np.ndarray) -> np.ndarray:
        """Uncalibrated per-tag scores (before the Platt scaling)."""
        return emb @ self.coef_.T + self.intercept_

    def logits(self, emb: np.ndarray) -> np.ndarray:
        return self.platt_[:, 0] * self.decision(emb) + self.platt_[:, 1]

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        return sigmoid(logits)

    def decide(self, P: np.ndarray) -> tuple[list[list[int]], np.ndarray]:
        chosen, conf = [], np.zeros(len(P))
        for i, p in enumerate(P):
            picks = [int(c) for c in np.flatnonzero(p >= self.thresholds_)] or [int(np.argmax(p))]
            chosen.append(sorted(picks, key=lambda c: -p[c]))
            conf[i] = max(p[c] for c in picks)
        return chosen, conf

    def arrays(self) -> dict[str, np.ndarray]:
        return {"coef_": self.coef_, "intercept_": self.intercept_, "platt_": self.platt_,
                "thresholds_": self.thresholds_}


class ZeroShotHead(Head):
    """Cosine similarity to one prototype per tag, softmax within each facet; one tag per facet.

    ``groups_`` holds each tag's facet; with several facets the head is multi-label (one pick per facet).
    :meth:`self_train` turns it into a linear head learnt from an unlabelled backlog (``bias_`` set).
    """

    kind = "zero_shot"
    temperature_ = 0.05  # cosine similarities live in a narrow band; sharpen them

    def __init__(self, groups: np.ndarray, temperature: float = 0.05) -> None:
        self.groups_ = np.asarray(groups, dtype=object)
        self.temperature_ = temperature
        self.multi_label = len(set(self.groups_)) > 1

    def fit(self, emb: np.ndarray, targets: np.ndarray | None, settings: FitSettings,
            sample_weight: np.ndarray | None = None) -> ZeroShotHead:
        """``emb`` holds one prototype per tag (its description and examples embedded); no targets."""
        norms = np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        self.prototypes_ = (emb / norms).astype(np.float32)
        return self

    def _facets(self) -> list[np.ndarray]:
        return [np.flatnonzero(self.groups_ == g) for g in dict.fromkeys(self.groups_)]

    def self_train(self, backlog: np.ndarray, settings: FitSettings) -> ZeroShotHead:
        """Replace each facet's prototypes by a head trained on the backlog's pseudo-labels
        (:func:`feedback_nlp.training.self_train_head`); logits become ``emb @ prototypes_.T + bias_``."""
        from .training import self_train_head

        coef = np.zeros_like(self.prototypes_)
        bias = np.zeros(len(coef), dtype=np.float32)
        for cols in self._facets():
            coef[cols], bias[cols] = self_train_head(backlog, self.prototypes_[cols], C=settings.C,
                                                     random_state=settings.random_state)
        self.prototypes_, self.bias_ = coef, bias
        self.temperature_ = 1.0  # the trained head's logits are already on the softmax scale
        return self

    def logits(self, emb: np.ndarray) -> np.ndarray:
        bias = self.__dict__.get("bias_")
        return emb @ self.prototypes_.T / self.temperature_ + (0.0 if bias is None else bias)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        sims = logits
        out = np.zeros_like(sims)
        for cols in self._facets():
            out[:, cols] = softmax(sims[:, cols])
        return out

    def decide(self, P: np.ndarray) -> tuple[list[list[int]], np.ndarray]:
        facets = self._facets()
        chosen, conf = [], np.zeros(len(P))
        for i, p in enumerate(P):
            picks = [int(cols[np.argmax(p[cols])]) for cols in facets]
            chosen.append(sorted(picks, key=lambda c: -p[c]))
            conf[i] = min(p[c] for c in picks)  # the row is as sure as its least sure facet
        return chosen, conf

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"prototypes_": self.prototypes_, "groups_": self.groups_.astype(str),
               "thresholds_": np.zeros(len(self.prototypes_), dtype=np.float32)}
        if "bias_" in self.__dict__:
            out["bias_"] = self.bias_
        return out


def head_from_arrays(arrays: dict[str, Any], *, multi_label: bool, zero_shot: bool, temperature: float) -> Head:
    """Rebuild a saved head from ``weights.npz`` arrays and the config's mode and temperature."""
    head: Head
    if zero_shot:
        zero = ZeroShotHead(arrays["groups_"].astype(object), temperature)
        zero.prototypes_ = arrays["prototypes_"]
        if "bias_" in arrays:  # self-trained
            zero.bias_ = arrays["bias_"]
        return zero
    if multi_label:
        head = MultiLabelHead()
        head.platt_, head.thresholds_ = arrays["platt_"], arrays["thresholds_"]
    else:
        head = MultiClassHead()
        head.temperature_ = temperature
    head.coef_, head.intercept_ = arrays["coef_"], arrays["intercept_"]
    return head


def recalibrate(head: Head, decisions: np.ndarray, targets: np.ndarray) -> None:
    """Refit ``head``'s calibration from held-out uncalibrated scores of its training rows: the temperature
    (multi-class), or each tag's Platt scaling and F1-optimal threshold (multi-label); ``oof_`` becomes the
    calibrated held-out logits, which the lexical fusion is then fitted on.

    For a fine-tuned encoder, the out-of-fold logits a head computes on its own training rows are not held
    out: the encoder was tuned on those rows and separates them (nlbse24, 300 issues: mean top probability
    0.99 at 0.80 accuracy). ``decisions`` come from models whose encoder never saw the row.

    >>> head = MultiClassHead()
    >>> recalibrate(head, np.array([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [4.0, 0.0]]), np.array([0, 1, 1, 0]))
    >>> bool(head.temperature_ > 1)  # one of four rows is wrong at 98% confidence: soften
    True
    """
    if isinstance(head, MultiClassHead):
        head.temperature_ = _fit_temperature(decisions, targets)
        head.oof_ = decisions / head.temperature_
    elif isinstance(head, MultiLabelHead):
        calibrated = decisions.astype(np.float64)
        for j in range(targets.shape[1]):
            if targets[:, j].min() != targets[:, j].max():
                head.platt_[j], head.thresholds_[j], calibrated[:, j] = _platt(decisions[:, j], targets[:, j])
            else:  # a tag on every row (or none) keeps its fixed logit
                calibrated[:, j] = head.platt_[j, 0] * decisions[:, j] + head.platt_[j, 1]
        head.oof_ = calibrated
    else:
        raise TypeError(f"cannot recalibrate {type(head).__name__}")


def fit_averaged(head: Head, parts: Sequence[tuple[np.ndarray, np.ndarray]], settings: FitSettings,
                 shared: int) -> Head:
    """``keep_base``: one head of ``head``'s kind per ``(emb, targets)`` part — the fine-tuned encoder's
    vectors and the frozen base model's, each with its own training rows, of which the first ``shared`` are
    the same rows in both — whose calibrated logits are averaged with equal weights, returned as one head of
    that kind over the two blocks side by side (an average of linear maps is linear), re-calibrated on the
    averaged out-of-fold logits of the shared rows.

    Equal weights, not fitted ones: the tuned encoder separates the rows it was tuned on, so any weight
    measured on them favours it — one logistic regression over both blocks leans on the tuned block
    (banking77, 8 labels per intent, 2 draws: 0.8744 vs 0.8758 for the tuned encoder alone).
    """
    if not isinstance(head, (MultiClassHead, MultiLabelHead)) or len(parts) != 2:
        raise TypeError(f"cannot average {type(head).__name__} over {len(parts)} parts")
    fitted = [type(head)().fit(e, t, settings) for e, t in parts]
    oofs = [getattr(p, "oof_", None) for p in fitted]
    oof = None if oofs[0] is None or oofs[1] is None else (oofs[0][:shared] + oofs[1][:shared]) / 2
    targets = parts[0][1][:shared]
    if isinstance(head, MultiClassHead):
        mc = [p for p in fitted if isinstance(p, MultiClassHead)]
        out = MultiClassHead()
        out.coef_ = np.hstack([p.coef_ / (2 * p.temperature_) for p in mc]).astype(np.float32)
        out.intercept_ = sum((p.intercept_ / (2 * p.temperature_) for p in mc),
                             np.zeros(len(mc[0].intercept_))).astype(np.float32)
        out.temperature_, out.oof_ = 1.0, None
        if oof is not None:
            recalibrate(out, oof, targets)
        return out
    ml = [p for p in fitted if isinstance(p, MultiLabelHead)]
    k = targets.shape[1]
    multi = MultiLabelHead()
    # each part's calibrated logit a * (w.e + b) + c, averaged: one linear map, then a fresh Platt scaling
    multi.coef_ = np.hstack([p.coef_ * p.platt_[:, :1] / 2 for p in ml]).astype(np.float32)
    multi.intercept_ = sum(((p.platt_[:, 0] * p.intercept_ + p.platt_[:, 1]) / 2 for p in ml),
                           np.zeros(k)).astype(np.float32)
    multi.platt_ = np.tile(np.array([1.0, 0.0], dtype=np.float32), (k, 1))
    multi.thresholds_ = np.full(k, 0.5, dtype=np.float32)
    multi.oof_ = None
    if oof is not None:
        recalibrate(multi, oof, targets)
    return multi
