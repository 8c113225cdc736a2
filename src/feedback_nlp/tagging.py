"""Taxonomy tagging: trained multi-class / multi-label classifiers, calibrated, with abstain and zero-shot.

:class:`TagClassifier` follows the scikit-learn estimator contract (``fit``/``predict``/``predict_proba``,
learned attributes ending in ``_``, ``random_state``) and saves to a folder of plain arrays + JSON + a model
card (no pickle), checked by SHA-256 on load.

- Multi-class: logistic regression on embeddings, probabilities calibrated by temperature scaling fitted on
  out-of-fold predictions.
- Multi-label: one logistic regression per tag, Platt-calibrated on out-of-fold scores, with a threshold
  tuned per tag to maximise out-of-fold F1 (not a fixed 0.5). A row whose tags all fall below their
  thresholds gets its most probable tag — rows never end with no tag unless they abstain.
- ``min_confidence``: rows whose best probability is lower go to ``needs_review`` instead of a guess.
- ``zero_shot=True``: no labels needed; tags by similarity to the taxonomy's descriptions and examples,
  one tag per facet (top-level tag), same output format.
- ``head="finetune"``: fine-tunes the embedding model itself first (slower to train, more accurate).

Example:
    >>> clf = TagClassifier().fit(texts, labels)             # doctest: +SKIP
    >>> clf.tag(["Export to CSV fails"])                      # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from ._persist import check_embedder, read_config, write_config
from .embedding import BaseEmbedder, Embedder
from .errors import (
    IntegrityError,
    InvalidInputError,
    ModelMismatchError,
    ModelNotFoundError,
    NotFittedError,
)
from .evaluation import EvaluationReport, evaluate_predictions
from .taxonomy import Taxonomy

__all__ = ["FORMAT_VERSION", "TagClassifier", "bundled_models"]

log = logging.getLogger(__name__)
FORMAT_VERSION = 1
_BUNDLED_DIRS = (Path(__file__).resolve().parent / "_bundled" / "models",
                 Path(__file__).resolve().parent.parent.parent / "models")


def bundled_models() -> dict[str, Path]:
    """Tag models shipped with the library, by name (e.g. ``"request-type"``)."""
    out: dict[str, Path] = {}
    for base in _BUNDLED_DIRS:
        if base.is_dir():
            for d in sorted(base.iterdir()):
                if (d / "config.json").exists():
                    out.setdefault(d.name, d)
    return out


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


def _fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Temperature that minimises the out-of-fold negative log-likelihood."""
    from scipy.optimize import minimize_scalar

    def nll(t: float) -> float:
        p = _softmax(logits / t)
        return -float(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean())

    return float(minimize_scalar(nll, bounds=(0.05, 20.0), method="bounded").x)


def _best_threshold(p: np.ndarray, y: np.ndarray) -> float:
    """The probability cut that maximises F1 for one tag (ties → the higher, more precise cut)."""
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    tp = np.cumsum(ys)
    fp = np.cumsum(1 - ys)
    f1 = 2 * tp / (tp + fp + ys.sum())
    last = np.r_[ps[1:] != ps[:-1], True]  # only cut between distinct scores
    f1 = np.where(last, f1, -1)
    i = int(np.argmax(f1))
    nxt = ps[i + 1] if i + 1 < len(ps) else 0.0
    return float(np.clip((ps[i] + nxt) / 2, 0.02, 0.98))


def _normalise_labels(labels: Any, multi_label: bool | None, sep: str | None) -> tuple[list[list[str]], bool]:
    if isinstance(labels, pd.Series):
        labels = labels.tolist()
    labels = list(labels)
    rows: list[list[str]] = []
    is_list = [isinstance(v, (list, tuple, set, frozenset, np.ndarray)) for v in labels]
    for i, v in enumerate(labels):
        if is_list[i]:
            row = [str(x).strip() for x in v if str(x).strip()]
        elif isinstance(v, str):
            row = [x.strip() for x in v.split(sep) if x.strip()] if sep else ([v.strip()] if v.strip() else [])
        elif v is None or (isinstance(v, float) and np.isnan(v)):
            row = []
        else:
            row = [str(v)]
        rows.append(list(dict.fromkeys(row)))
    inferred = any(is_list) or any(len(r) > 1 for r in rows)
    mode = inferred if multi_label is None else multi_label
    empty = [i for i, r in enumerate(rows) if not r]
    if empty:
        raise InvalidInputError(f"rows {empty[:10]} have no label; every training row needs at least one tag")
    if not mode:
        multi = [i for i, r in enumerate(rows) if len(r) > 1]
        if multi:
            raise InvalidInputError(f"multi_label=False but rows {multi[:10]} have several tags")
    return rows, mode


class TagClassifier(BaseEstimator):
    """Tags feedback with the team's taxonomy.

    Args:
        embedder: any :class:`~feedback_nlp.embedding.BaseEmbedder`; default: :class:`Embedder` ().
        taxonomy: a :class:`Taxonomy`; labels are checked against it, predictions include ancestors, and
            zero-shot uses its descriptions.
        multi_label: ``None`` infers it from the labels (lists → multi-label), or force True/False.
        head: ``"logreg"`` (fast default) or ``"finetune"`` (fine-tunes the embedding model first).
        C: inverse regularisation strength of the logistic regression (10 suits normalised embeddings).
        min_confidence: rows whose best probability is below it are flagged ``needs_review`` and get no tag.
        zero_shot: tag by similarity to tag descriptions/examples; needs a taxonomy, no labels.
        cv: folds for the out-of-fold calibration and threshold tuning.
        finetune_epochs, finetune_batch_size, finetune_learning_rate, finetune_max_seq_length: the
            ``head="finetune"`` training settings; ``finetune_epochs=None`` picks the epochs that stay
            within about 30k row passes and 600k padded tokens, clipped to 1–10 (3 epochs for 10k short
            rows, 10 for a few hundred, fewer for long reviews), which keeps training within minutes on a
            2-core CPU; batches are bucketed by length so padding costs little.
        random_state: seed for folds and fine-tuning; same data and seed → identical model.
        show_progress: progress bars for embedding and fine-tuning.
    """

    def __init__(
        self,
        embedder: BaseEmbedder | None = None,
        taxonomy: Taxonomy | None = None,
        *,
        multi_label: bool | None = None,
        head: str = "logreg",
        C: float = 10.0,
        min_confidence: float = 0.0,
        zero_shot: bool = False,
        cv: int = 5,
        finetune_epochs: int | None = None,
        finetune_batch_size: int = 32,
        finetune_learning_rate: float = 5e-5,
        finetune_max_seq_length: int = 128,
        random_state: int = 0,
        show_progress: bool = False,
    ) -> None:
        self.embedder = embedder
        self.taxonomy = taxonomy
        self.multi_label = multi_label
        self.head = head
        self.C = C
        self.min_confidence = min_confidence
        self.zero_shot = zero_shot
        self.cv = cv
        self.finetune_epochs = finetune_epochs
        self.finetune_batch_size = finetune_batch_size
        self.finetune_learning_rate = finetune_learning_rate
        self.finetune_max_seq_length = finetune_max_seq_length
        self.random_state = random_state
        self.show_progress = show_progress

    # --- helpers ----------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise NotFittedError("this TagClassifier is not fitted yet; call fit() or TagClassifier.load()")

    def _embed(self, X: Any, embedder: BaseEmbedder) -> np.ndarray:
        if isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind == "f":
            if X.shape[1] != embedder.dim:
                raise ModelMismatchError(f"precomputed embeddings have {X.shape[1]} dimensions, the embedder "
                                         f"{embedder.model_id} gives {embedder.dim}")
            return X.astype(np.float32, copy=False)
        if isinstance(X, str):
            X = [X]
        if isinstance(X, pd.Series):
            X = X.tolist()
        return embedder.encode(list(X))

    def _validate_params(self) -> None:
        if self.head not in ("logreg", "finetune"):
            raise InvalidInputError(f"head must be 'logreg' or 'finetune', got {self.head!r}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise InvalidInputError(f"min_confidence must be in [0, 1], got {self.min_confidence}")
        if self.C <= 0:
            raise InvalidInputError(f"C must be > 0, got {self.C}")
        if self.taxonomy is not None and not isinstance(self.taxonomy, Taxonomy):
            raise InvalidInputError("taxonomy must be a feedback_nlp.Taxonomy (use Taxonomy.load(path))")

    # --- fitting ----------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, *, sep: str | None = None) -> TagClassifier:
        """Train on texts ``X`` (or precomputed embeddings) and labels ``y``.

        ``y`` holds one tag per row (multi-class) or a list of tags per row (multi-label); with ``sep``,
        strings such as ``"billing|export"`` are split. With ``zero_shot=True``, ``y`` may be omitted.

        Raises:
            UnknownTagError: a label is not in the taxonomy (message lists labels and rows).
            InvalidInputError: rows without labels, mismatched lengths, a class with a single example…
        """
        self._validate_params()
        for attr in (*self._ARRAYS, "groups_", "classes_", "multi_label_", "temperature_"):
            self.__dict__.pop(attr, None)  # a re-fit starts clean (e.g. zero-shot, then supervised)
        embedder = self.embedder if self.embedder is not None else Embedder(show_progress=self.show_progress)
        self.taxonomy_ = self.taxonomy
        if self.zero_shot:
            return self._fit_zero_shot(embedder)
        if y is None:
            raise InvalidInputError("fit needs labels y (or zero_shot=True with a taxonomy)")
        rows, multi = _normalise_labels(y, self.multi_label, sep)
        n = len(X) if not isinstance(X, str) else 1
        if n != len(rows):
            raise InvalidInputError(f"X has {n} rows but y has {len(rows)}")
        if self.taxonomy is not None:
            self.taxonomy.validate_labels(rows)
        self.multi_label_ = multi
        classes = sorted({t for r in rows for t in r})
        if len(classes) < 2:
            raise InvalidInputError(f"need at least 2 distinct tags to train, got {classes}")
        self.classes_ = np.array(classes, dtype=object)
        if self.head == "finetune":
            if isinstance(X, np.ndarray) and X.dtype.kind == "f":
                raise InvalidInputError("head='finetune' needs texts, not precomputed embeddings")
            embedder = self._finetune(embedder, X, rows)
        self.embedder_ = embedder
        emb = self._embed(X, embedder)
        self.n_features_in_ = emb.shape[1]
        if multi:
            self._fit_multi_label(emb, rows)
        else:
            self._fit_multi_class(emb, [r[0] for r in rows])
        return self

    def _folds(self, y: np.ndarray) -> StratifiedKFold | None:
        counts = np.bincount(y)
        k = min(self.cv, int(counts[counts > 0].min()))
        return StratifiedKFold(n_splits=k, shuffle=True, random_state=self.random_state) if k >= 2 else None

    def _logreg(self) -> LogisticRegression:
        return LogisticRegression(C=self.C, max_iter=3000, random_state=self.random_state)

    def _fit_multi_class(self, emb: np.ndarray, labels: list[str]) -> None:
        index = {c: i for i, c in enumerate(self.classes_)}
        y = np.array([index[t] for t in labels])
        folds = self._folds(y)
        self.temperature_ = 1.0
        if folds is not None:
            oof = np.zeros((len(y), len(self.classes_)))
            for tr, te in folds.split(emb, y):
                m = self._logreg().fit(emb[tr], y[tr])
                oof[np.ix_(te, m.classes_)] = m.decision_function(emb[te])
                missing = np.setdiff1d(np.arange(len(self.classes_)), m.classes_)
                oof[np.ix_(te, missing)] = -1e3  # a class absent from a fold's training part is impossible there
            self.temperature_ = _fit_temperature(oof, y)
        model = self._logreg().fit(emb, y)
        self.coef_ = model.coef_.astype(np.float32)
        self.intercept_ = model.intercept_.astype(np.float32)
        if self.coef_.shape[0] == 1:  # binary: sklearn stores one row; expand to two symmetric logits
            self.coef_ = np.vstack([-self.coef_ / 2, self.coef_ / 2])
            self.intercept_ = np.array([-self.intercept_[0] / 2, self.intercept_[0] / 2], dtype=np.float32)
        self.thresholds_ = np.zeros(len(self.classes_), dtype=np.float32)

    def _fit_multi_label(self, emb: np.ndarray, rows: list[list[str]]) -> None:
        k = len(self.classes_)
        index = {c: i for i, c in enumerate(self.classes_)}
        Y = np.zeros((len(rows), k), dtype=np.int64)
        for i, r in enumerate(rows):
            Y[i, [index[t] for t in r]] = 1
        coef = np.zeros((k, emb.shape[1]), dtype=np.float32)
        intercept = np.zeros(k, dtype=np.float32)
        platt = np.tile(np.array([1.0, 0.0], dtype=np.float32), (k, 1))
        thresholds = np.full(k, 0.5, dtype=np.float32)
        for j in range(k):
            yj = Y[:, j]
            if yj.min() == yj.max():  # a tag on every row: always predict it
                intercept[j], platt[j] = 50.0, (1.0, 0.0)
                continue
            folds = self._folds(yj)
            if folds is not None:
                oof = np.zeros(len(yj))
                for tr, te in folds.split(emb, yj):
                    oof[te] = self._logreg().fit(emb[tr], yj[tr]).decision_function(emb[te])
                cal = LogisticRegression(C=1e4).fit(oof[:, None], yj)
                platt[j] = (cal.coef_[0, 0], cal.intercept_[0])
                thresholds[j] = _best_threshold(_sigmoid(platt[j, 0] * oof + platt[j, 1]), yj)
            m = self._logreg().fit(emb, yj)
            coef[j], intercept[j] = m.coef_[0], m.intercept_[0]
        self.coef_, self.intercept_, self.platt_, self.thresholds_ = coef, intercept, platt, thresholds

    def _fit_zero_shot(self, embedder: BaseEmbedder) -> TagClassifier:
        if self.taxonomy is None:
            raise InvalidInputError("zero_shot=True needs a taxonomy with tag names/descriptions")
        facets = self.taxonomy.facets()
        leaves = [t for t in self.taxonomy.leaves() if t not in facets]
        if len(leaves) < 2:
            raise InvalidInputError("zero-shot needs at least 2 leaf tags in the taxonomy")
        self.embedder_ = embedder
        self.classes_ = np.array(leaves, dtype=object)
        protos = []
        for t in leaves:
            tag = self.taxonomy[t]
            v = embedder.encode([tag.prompt(), *tag.examples])
            p = v[0] if not tag.examples else 0.5 * v[0] + 0.5 * v[1:].mean(axis=0)
            protos.append(p / max(np.linalg.norm(p), 1e-12))
        self.prototypes_ = np.vstack(protos).astype(np.float32)
        self.n_features_in_ = self.prototypes_.shape[1]
        # One choice per facet; tags outside any facet form one group together.
        group_of = {leaf: root for root, ls in facets.items() for leaf in ls}
        self.groups_ = np.array([group_of.get(t, "") for t in leaves], dtype=object)
        self.multi_label_ = len(set(self.groups_)) > 1
        self.temperature_ = 0.05  # cosine similarities live in a narrow band; sharpen them
        self.thresholds_ = np.zeros(len(leaves), dtype=np.float32)
        return self

    def _finetune(self, embedder: BaseEmbedder, X: Any, rows: list[list[str]]) -> BaseEmbedder:
        from .training import finetune_encoder, remove_with, scratch_dir

        if not isinstance(embedder, Embedder):
            raise InvalidInputError("head='finetune' needs a sentence-transformers Embedder")
        texts = embedder.prepare(list(X) if not isinstance(X, pd.Series) else X.tolist())
        index = {c: i for i, c in enumerate(self.classes_)}
        if self.multi_label_:
            targets = np.zeros((len(rows), len(index)), dtype=np.float32)
            for i, r in enumerate(rows):
                targets[i, [index[t] for t in r]] = 1
        else:
            targets = np.array([index[r[0]] for r in rows])
        scratch = scratch_dir()
        try:
            path = finetune_encoder(embedder.location, texts, targets, out_dir=scratch / "encoder",
                                    multi_label=self.multi_label_, epochs=self.finetune_epochs,
                                    batch_size=self.finetune_batch_size, learning_rate=self.finetune_learning_rate,
                                    max_seq_length=self.finetune_max_seq_length, random_state=self.random_state,
                                    show_progress=self.show_progress)
            tuned = Embedder(path, cache=embedder.cache, backend=embedder.backend, batch_size=embedder.batch_size,
                             show_progress=self.show_progress)
        except BaseException:  # interrupted or failed: nothing stays behind
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        # The encoder lives as long as the embedder that reads it; save() copies it into the model folder.
        remove_with(tuned, scratch)
        return tuned

    # --- prediction -------------------------------------------------------------------------------
    def _proba_from_embeddings(self, emb: np.ndarray) -> np.ndarray:
        if hasattr(self, "prototypes_"):
            sims = emb @ self.prototypes_.T / self.temperature_
            out = np.zeros_like(sims)
            for g in dict.fromkeys(self.groups_):
                cols = np.flatnonzero(self.groups_ == g)
                out[:, cols] = _softmax(sims[:, cols])
            return out
        logits = emb @ self.coef_.T + self.intercept_
        if self.multi_label_:
            return _sigmoid(self.platt_[:, 0] * logits + self.platt_[:, 1])
        return _softmax(logits / self.temperature_)

    def predict_proba(self, X: Any) -> pd.DataFrame:
        """Calibrated probabilities, one column per tag (``classes_``), one row per input."""
        self._check_fitted()
        return pd.DataFrame(self._proba_from_embeddings(self._embed(X, self.embedder_)), columns=list(self.classes_))

    def _decide(self, P: np.ndarray) -> tuple[list[list[str]], np.ndarray, np.ndarray]:
        classes = self.classes_
        tags: list[list[str]] = []
        conf = np.zeros(len(P))
        review = np.zeros(len(P), dtype=bool)
        for i, p in enumerate(P):
            if hasattr(self, "prototypes_") and self.multi_label_:
                chosen = []
                for g in dict.fromkeys(self.groups_):
                    cols = np.flatnonzero(self.groups_ == g)
                    chosen.append(cols[np.argmax(p[cols])])
                conf[i] = min(p[c] for c in chosen)
            elif self.multi_label_:
                chosen = list(np.flatnonzero(p >= self.thresholds_)) or [int(np.argmax(p))]
                conf[i] = max(p[c] for c in chosen)
            else:
                chosen = [int(np.argmax(p))]
                conf[i] = p[chosen[0]]
            if conf[i] < self.min_confidence:
                review[i] = True
                chosen = []
            tags.append([classes[c] for c in sorted(chosen, key=lambda c: -p[c])])
        return tags, conf, review

    def predict(self, X: Any) -> np.ndarray:
        """Predicted tags: a string per row (multi-class) or a list of tags per row (multi-label, with the
        taxonomy's ancestors). Rows that abstain (``needs_review``) get ``None`` / an empty list."""
        self._check_fitted()
        tags, _, review = self._decide(self.predict_proba(X).to_numpy())
        if self.multi_label_:
            out = np.empty(len(tags), dtype=object)
            out[:] = [self._with_ancestors(t) for t in tags]
            return out
        return np.array([t[0] if t else None for t in tags], dtype=object)

    def _with_ancestors(self, tags: list[str]) -> list[str]:
        if self.taxonomy_ is None or not tags:
            return list(tags)
        extra = [a for a in self.taxonomy_.with_ancestors(tags) if a not in tags]
        return list(tags) + extra

    def tag(self, X: Any, ids: Sequence[Any] | None = None) -> pd.DataFrame:
        """The batch-friendly output: ``tags`` (with ancestors), ``probabilities`` (JSON of the predicted
        tags' probabilities), ``confidence`` and ``needs_review``; with ``ids``, an ``id`` column first."""
        self._check_fitted()
        P = self.predict_proba(X).to_numpy()
        tags, conf, review = self._decide(P)
        index = {c: i for i, c in enumerate(self.classes_)}
        out = pd.DataFrame({
            "tags": [self._with_ancestors(t) for t in tags],
            "probabilities": [json.dumps({t: round(float(P[i, index[t]]), 4) for t in row}) for i, row in enumerate(tags)],
            "confidence": conf.round(4),
            "needs_review": review,
        })
        if ids is not None:
            out.insert(0, "id", list(ids))
        return out

    def fit_predict(self, X: Any, y: Any = None, **kwargs: Any) -> np.ndarray:
        return self.fit(X, y, **kwargs).predict(X)

    def score(self, X: Any, y: Any) -> float:
        """Accuracy (subset accuracy for multi-label); abstained rows count as wrong."""
        return self.evaluate(X, y).accuracy

    # --- evaluation and label quality -------------------------------------------------------------
    def evaluate(self, X: Any, y: Any, *, sep: str | None = None) -> EvaluationReport:
        """Accuracy, micro/macro F1, per-tag P/R/F1/support, most confused pairs and abstain rate.

        With a hierarchical taxonomy, ``per_level`` reports accuracy and F1 at each depth.
        """
        self._check_fitted()
        rows, _ = _normalise_labels(y, self.multi_label_ if not hasattr(self, "prototypes_") else None, sep)
        if self.taxonomy_ is not None:
            self.taxonomy_.validate_labels(rows)
        P = self.predict_proba(X).to_numpy()
        if len(rows) != len(P):
            raise InvalidInputError(f"X has {len(P)} rows but y has {len(rows)}")
        pred, _, review = self._decide(P)
        levels = {}
        if self.taxonomy_ is not None and any(self.taxonomy_.depth(t) for t in self.classes_):
            depth = max(self.taxonomy_.depth(t) for t in self.classes_)
            for level in range(depth + 1):
                lt = [sorted({a for t in r if (a := self.taxonomy_.at_level(t, level))}) for r in rows]
                lp = [sorted({a for t in r if (a := self.taxonomy_.at_level(t, level))}) for r in pred]
                levels[level] = (lt, lp)
        return evaluate_predictions(rows, pred, classes=list(self.classes_), multi_label=bool(self.multi_label_),
                                    abstained=review, levels=levels)

    def suggest_for_labeling(self, X: Any, n: int = 20) -> pd.DataFrame:
        """The ``n`` items most worth labelling next: uncertain for the model and diverse among themselves.

        Uncertainty is 1 − (top probability − runner-up) for multi-class, and closeness to the tag
        thresholds for multi-label; among the 5n most uncertain, a farthest-point pass picks diverse ones.
        """
        self._check_fitted()
        texts = _texts_or_none(X)
        emb = self._embed(X, self.embedder_)
        P = self._proba_from_embeddings(emb)
        if self.multi_label_ and not hasattr(self, "prototypes_"):
            uncertainty = 1 - np.abs(P - self.thresholds_).min(axis=1) * 2
        else:
            top2 = np.sort(P, axis=1)[:, -2:]
            uncertainty = 1 - (top2[:, 1] - top2[:, 0])
        pool = np.argsort(-uncertainty, kind="stable")[: max(n * 5, n)]
        chosen = [int(pool[0])]
        dist = 1 - emb[pool] @ emb[pool[0]]
        while len(chosen) < min(n, len(pool)):
            # trade off uncertainty and distance to what is already chosen
            pick = int(np.argmax(dist * uncertainty[pool]))
            chosen.append(int(pool[pick]))
            dist = np.minimum(dist, 1 - emb[pool] @ emb[pool[pick]])
        top = P[chosen].argmax(axis=1)
        return pd.DataFrame({"index": chosen, "text": [texts[i] for i in chosen],
                             "uncertainty": uncertainty[chosen].round(4),
                             "predicted": [self.classes_[t] for t in top]})

    def find_label_issues(self, X: Any, y: Any, *, sep: str | None = None, cv: int | None = None) -> pd.DataFrame:
        """Training rows that cross-validated predictions say are probably mislabelled.

        A row is flagged when, out of fold, its given tag gets a probability below that tag's average
        self-confidence and another tag is predicted with at least its own average self-confidence
        (the confident-learning rule). Sorted by how much more likely the suggested tag is.
        """
        rows, multi = _normalise_labels(y, self.multi_label, sep)
        texts = _texts_or_none(X)
        if len(rows) != len(texts):
            raise InvalidInputError(f"X has {len(texts)} rows but y has {len(rows)}")
        embedder = self.embedder if self.embedder is not None else Embedder()
        emb = self._embed(X, embedder)
        classes = sorted({t for r in rows for t in r})
        index = {c: i for i, c in enumerate(classes)}
        primary = np.array([index[r[0]] for r in rows])
        folds = StratifiedKFold(n_splits=min(cv or self.cv, int(np.bincount(primary).min())), shuffle=True,
                                random_state=self.random_state)
        oof = np.zeros((len(rows), len(classes)))
        for tr, te in folds.split(emb, primary):
            m = self._logreg().fit(emb[tr], primary[tr])
            oof[np.ix_(te, m.classes_)] = m.predict_proba(emb[te])
        given_p = np.array([max(oof[i, index[t]] for t in r) for i, r in enumerate(rows)])
        thresholds = np.array([oof[primary == c, c].mean() if (primary == c).any() else 1.0 for c in range(len(classes))])
        best = oof.argmax(axis=1)
        out = []
        for i, r in enumerate(rows):
            given = [index[t] for t in r]
            if best[i] in given:
                continue
            if given_p[i] < thresholds[primary[i]] and oof[i, best[i]] >= thresholds[best[i]]:
                out.append({"index": i, "text": texts[i], "given": "|".join(r) if multi else r[0],
                            "suggested": classes[best[i]], "p_given": round(float(given_p[i]), 4),
                            "p_suggested": round(float(oof[i, best[i]]), 4)})
        df = pd.DataFrame(out, columns=["index", "text", "given", "suggested", "p_given", "p_suggested"])
        if len(df):
            df = df.assign(_m=df["p_suggested"] - df["p_given"]).sort_values("_m", ascending=False).drop(columns="_m")
        return df.reset_index(drop=True)

    # --- persistence ------------------------------------------------------------------------------
    _ARRAYS = ("coef_", "intercept_", "thresholds_", "platt_", "prototypes_")

    def save(self, path: str | os.PathLike, *, metrics: dict[str, Any] | None = None,
             description: str = "", training_data: str = "") -> Path:
        """Save to a folder: ``config.json`` (parameters, classes, embedder id, checksums),
        ``weights.npz`` (plain arrays), ``README.md`` (the model card) and, for fine-tuned models,
        ``encoder/`` (the fine-tuned embedding model). No pickle: loading never executes code."""
        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        arrays = {k: getattr(self, k) for k in self._ARRAYS if hasattr(self, k)}
        if hasattr(self, "groups_"):
            arrays["groups_"] = self.groups_.astype(str)
        arrays["classes_"] = self.classes_.astype(str)
        np.savez(path / "weights.npz", **arrays)
        files = ["weights.npz"]
        encoder_dir = None
        if self.head == "finetune" and isinstance(self.embedder_, Embedder):
            encoder_dir = path / "encoder"
            if Path(self.embedder_.location).resolve() != encoder_dir.resolve():
                shutil.rmtree(encoder_dir, ignore_errors=True)
                shutil.copytree(self.embedder_.location, encoder_dir)
            files += [str(f.relative_to(path)) for f in sorted(encoder_dir.rglob("*")) if f.is_file()]
        params = {k: v for k, v in self.get_params(deep=False).items() if k not in ("embedder", "taxonomy")}
        config = write_config(
            path, "feedback_nlp.TagClassifier", files, format_version=FORMAT_VERSION,
            library_version=_library_version(), created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            params=params, multi_label=bool(self.multi_label_), zero_shot=hasattr(self, "prototypes_"),
            temperature=float(getattr(self, "temperature_", 1.0)), classes=list(map(str, self.classes_)),
            embedder={"model_id": self.embedder_.model_id, "base_model_id": self.embedder_.base_model_id,
                      "dim": int(self.n_features_in_), "fine_tuned": encoder_dir is not None},
            taxonomy=self.taxonomy_.to_dict() if self.taxonomy_ is not None else None,
            metrics=metrics or {}, description=description, training_data=training_data,
        )
        from .model_card import render_model_card

        (path / "README.md").write_text(render_model_card(config), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, *, embedder: BaseEmbedder | None = None,
             backend: str | None = None) -> TagClassifier:
        """Load a saved model folder, or a bundled model by name (see :func:`bundled_models`).

        ``backend`` picks the numeric backend of the embedder built for it (default ``auto``); ignored when
        ``embedder`` is given.

        Raises:
            ModelNotFoundError: no such folder or bundled name.
            IntegrityError: a file was modified after saving (checksum mismatch) or is missing.
            ModelMismatchError: ``embedder`` is not the embedding model the tags were trained with.
        """
        folder = Path(path)
        if not (folder / "config.json").exists():
            named = bundled_models().get(str(path))
            if named is None:
                raise ModelNotFoundError(f"no tag model at {path!s} (no config.json) and no bundled model of that "
                                         f"name; bundled: {sorted(bundled_models())}")
            folder = named
        config = read_config(folder, "feedback_nlp.TagClassifier")
        if config.get("format_version", 0) > FORMAT_VERSION:
            raise IntegrityError(f"{folder} was saved by a newer feedback_nlp (format {config['format_version']})")
        info = config["embedder"]
        if embedder is None:
            embedder = Embedder(folder / "encoder" if info.get("fine_tuned") else None, backend=backend)
        check_embedder(info["base_model_id"], embedder, "the tag model")
        params = dict(config["params"])
        clf = cls(embedder=embedder, taxonomy=Taxonomy.from_dict(config["taxonomy"]) if config["taxonomy"] else None,
                  **params)
        with np.load(folder / "weights.npz", allow_pickle=False) as data:
            for k in data.files:
                setattr(clf, k, data[k].astype(object) if k in ("classes_", "groups_") else data[k])
        clf.embedder_ = embedder
        clf.taxonomy_ = clf.taxonomy
        clf.multi_label_ = bool(config["multi_label"])
        clf.temperature_ = float(config["temperature"])
        clf.n_features_in_ = int(info["dim"])
        clf.metrics_ = config.get("metrics", {})
        return clf


def _texts_or_none(X: Any) -> list[Any]:
    """The texts of X for reports, or Nones when X holds precomputed embeddings."""
    if isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind == "f":
        return [None] * len(X)
    return X.tolist() if isinstance(X, pd.Series) else list(X)


def _library_version() -> str:
    from . import __version__

    return __version__
