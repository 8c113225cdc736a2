"""The lexical channel of :class:`~feedback_nlp.tagging.TagClassifier`: word TF-IDF + logistic regression
over the whole text, fused with the embedding head's calibrated logits.

Why: an embedding model reads a window of 128-256 tokens and blurs rare, exact words; feedback often
carries its tag in both — a GitHub issue's template headings ("Steps to reproduce", "Feature request")
sit past the window, and product words ("PIN", "top-up") are rarer than the embedding's neighbourhoods. A
linear model on word unigrams and bigrams reads every token at once. Its logits are added to the head's
with a weight chosen on out-of-fold predictions of the training rows (``0`` when the words add nothing),
so it can only help where the training data says it does.

Nothing is pickled: the vocabulary is saved as UTF-8 bytes, the idf and coefficients (float16) as arrays.

Example:
    >>> import numpy as np
    >>> from feedback_nlp._heads import FitSettings
    >>> texts = ["app crashes on start", "crash when saving", "please add dark mode", "add export to csv"] * 3
    >>> lex = LexicalModel().fit(texts, np.array([0, 0, 1, 1] * 3), FitSettings(cv=2), multi_label=False)
    >>> int(lex.logits(["it crashes"]).argmax())
    0
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from ._heads import FitSettings, out_of_fold_logits, out_of_fold_scores, sigmoid
from .evaluation import best_f1_threshold

__all__ = ["LexicalModel", "fuse_weight", "fuse_multi_label"]

MAX_FEATURES = 20_000  # bounds the saved coefficients: classes x 20k float16 (77 tags: 3 MB)
MIN_GAIN = 0.005  # out-of-fold log-loss (nats per row) the words must save to be kept


# Chinese and Japanese write no spaces between words: scikit-learn's pattern (\b\w\w+\b) read a whole clause as
# one word, which no other text repeats, so the word channel learnt nothing from them. Their characters are tokens
# of one character here, and the bigrams below pair neighbours ("导出失败" -> 导, 出, 失, 败, 导出, 出失, 失败),
# the usual way to index them; every other word (Latin, Cyrillic, Hangul, digits) is read as before, so models
# fitted before read their words the same.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef"
TOKEN_PATTERN = rf"(?u)(?:(?![{_CJK}])\w){{2,}}|[{_CJK}]"


def _vectorizer(vocabulary: dict[str, int] | None = None, min_df: int = 1) -> TfidfVectorizer:
    # one definition for fitting and loading: the token pattern, n-grams and tf scaling must match
    return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True, min_df=min_df,
                           token_pattern=TOKEN_PATTERN,
                           max_features=None if vocabulary is not None else MAX_FEATURES, vocabulary=vocabulary,
                           dtype=np.float32)


class LexicalModel:
    """Word TF-IDF (unigrams + bigrams, sublinear tf) and one logistic regression (multi-class) or one per
    tag (multi-label), with the same ``C`` as the embedding head. ``oof_`` holds out-of-fold logits of the
    training rows after :meth:`fit` (not saved)."""

    def fit(self, texts: list[str], targets: np.ndarray, settings: FitSettings, *, multi_label: bool,
            sample_weight: np.ndarray | None = None) -> LexicalModel:
        """Learn the vocabulary (unweighted: which words exist) and the regressions (rows weighted by
        ``sample_weight``)."""
        # words in one document only are names, ids and typos: they cannot generalise, and they fill the
        # vocabulary of a large training set; small sets keep them (8 examples per tag have few repeats)
        self.oof_: np.ndarray | None = None
        min_df = 2 if len(texts) >= 1000 else 1
        vec = _vectorizer(min_df=min_df)
        try:
            M = vec.fit_transform(texts)
        except ValueError:  # no word of two or more characters anywhere: nothing to learn from
            M = None
        self.multi_label = multi_label
        if M is None or M.shape[1] == 0:
            self.vocabulary_: list[str] = []
            k = targets.shape[1] if multi_label else int(targets.max()) + 1
            self.idf_ = np.zeros(0, dtype=np.float32)
            self.coef_ = np.zeros((k, 0), dtype=np.float32)
            self.intercept_ = np.zeros(k, dtype=np.float32)
            return self
        vocab = sorted(vec.vocabulary_, key=vec.vocabulary_.__getitem__)
        self.vocabulary_ = vocab
        self.idf_ = vec.idf_.astype(np.float32)
        self._vec = vec
        if multi_label:
            self._fit_multi_label(M, targets, settings, sample_weight)
        else:
            self._fit_multi_class(M, targets, settings, sample_weight)
        return self

    def _fit_multi_class(self, M: sparse.csr_matrix, y: np.ndarray, settings: FitSettings,
                         sample_weight: np.ndarray | None) -> None:
        self.oof_ = out_of_fold_logits(M, y, settings, sample_weight)
        m = settings.logreg().fit(M, y, sample_weight=sample_weight)
        coef, intercept = m.coef_, m.intercept_
        if coef.shape[0] == 1:  # binary: two symmetric logits, as the embedding head stores them
            coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
        # float16 as saved, so a model predicts the same before and after save/load
        self.coef_, self.intercept_ = coef.astype(np.float16).astype(np.float32), intercept.astype(np.float32)

    def _fit_multi_label(self, M: sparse.csr_matrix, Y: np.ndarray, settings: FitSettings,
                         sample_weight: np.ndarray | None) -> None:
        k = Y.shape[1]
        coef = np.zeros((k, M.shape[1]), dtype=np.float32)
        intercept = np.zeros(k, dtype=np.float32)
        oof = np.zeros(Y.shape)
        seen = True
        for j in range(k):
            yj = Y[:, j]
            if yj.min() == yj.max():
                intercept[j] = 50.0 if yj[0] else -50.0
                oof[:, j] = intercept[j]
                continue
            scores = out_of_fold_scores(M, yj, settings, sample_weight)
            seen = seen and scores is not None
            if scores is not None:
                oof[:, j] = scores
            m = settings.logreg().fit(M, yj, sample_weight=sample_weight)
            coef[j], intercept[j] = m.coef_[0], m.intercept_[0]
        self.oof_ = oof if seen else None
        self.coef_, self.intercept_ = coef.astype(np.float16).astype(np.float32), intercept

    def transform(self, texts: list[str]) -> sparse.csr_matrix:
        vec = self.__dict__.get("_vec")
        if vec is None:  # loaded: rebuild the vectorizer from the saved vocabulary and idf
            vec = _vectorizer({w: i for i, w in enumerate(self.vocabulary_)})
            vec.idf_ = self.idf_
            self._vec = vec
        return vec.transform(texts)

    def logits(self, texts: list[str]) -> np.ndarray:
        """Raw logits, (n, classes): what the fusion weight multiplies."""
        if not self.vocabulary_:
            return np.tile(self.intercept_, (len(texts), 1)).astype(np.float64)
        return np.asarray(self.transform(texts) @ self.coef_.T.astype(np.float32)) + self.intercept_

    def arrays(self) -> dict[str, np.ndarray]:
        """What ``weights.npz`` keeps (prefixed ``lexical_``); the classifier adds the vocabulary beside them."""
        return {"lexical_idf_": self.idf_, "lexical_coef_": self.coef_.astype(np.float16),
                "lexical_intercept_": self.intercept_}

    @classmethod
    def from_arrays(cls, arrays: dict[str, Any], vocabulary: list[str], *, multi_label: bool) -> LexicalModel:
        lex = cls()
        lex.multi_label = multi_label
        lex.vocabulary_ = [str(w) for w in vocabulary]
        lex.idf_ = np.asarray(arrays["lexical_idf_"], dtype=np.float32)
        lex.coef_ = np.asarray(arrays["lexical_coef_"], dtype=np.float32)
        lex.intercept_ = np.asarray(arrays["lexical_intercept_"], dtype=np.float32)
        lex.oof_ = None
        if lex.coef_.shape[1] != len(lex.vocabulary_) or lex.idf_.shape[0] != len(lex.vocabulary_):
            from .errors import IntegrityError

            raise IntegrityError(f"the lexical arrays ({lex.coef_.shape[1]} words) do not match the saved "
                                 f"vocabulary ({len(lex.vocabulary_)} words)")
        return lex


def fuse_weight(head_oof: np.ndarray, lex_oof: np.ndarray, y: np.ndarray,
                sample_weight: np.ndarray | None = None) -> tuple[float, float, float]:
    """Multi-class: the scales ``a`` (head) and ``b`` (lexical, >= 0) whose fused logits ``a*head + b*lexical``
    have the lowest out-of-fold log-loss — a temperature scaling with two inputs. Returns ``(a, b, gain)``,
    ``gain`` the log-loss it saves over the head alone (temperature-rescaled); ``b`` is 0 when the words do
    not lower it by :data:`MIN_GAIN`. With ``sample_weight`` the log-loss is the weighted mean."""
    from scipy.optimize import minimize

    rows = np.arange(len(y))

    def nll(ab: np.ndarray) -> float:
        z = ab[0] * head_oof + ab[1] * lex_oof
        z = z - z.max(axis=1, keepdims=True)
        return float(np.average(np.log(np.exp(z).sum(axis=1)) - z[rows, y], weights=sample_weight))

    def nll_alone(a: np.ndarray) -> float:
        return nll(np.array([a[0], 0.0]))

    alone = minimize(nll_alone, x0=np.array([1.0]), bounds=[(0.05, 20.0)], method="L-BFGS-B")
    both = minimize(nll, x0=np.array([float(alone.x[0]), 0.5]), bounds=[(0.05, 20.0), (0.0, 50.0)],
                    method="L-BFGS-B")
    gain = float(alone.fun - both.fun)
    if gain < MIN_GAIN or both.x[1] <= 0:
        return 1.0, 0.0, max(gain, 0.0)
    return float(both.x[0]), float(both.x[1]), gain


def fuse_multi_label(head_oof: np.ndarray, lex_oof: np.ndarray, Y: np.ndarray,
                     sample_weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Multi-label: per tag, a two-input Platt scaling of (head logit, lexical logit) fitted on out-of-fold
    logits — the lexical input's coefficient is that tag's weight — and the F1-optimal threshold of the
    fused probability (all weighted by ``sample_weight``). Returns ``(platt (k, 3): a, b, c of a*head + b*lexical + c, thresholds (k,))``."""
    k = Y.shape[1]
    platt = np.tile(np.array([1.0, 0.0, 0.0], dtype=np.float32), (k, 1))
    thresholds = np.full(k, 0.5, dtype=np.float32)
    for j in range(k):
        yj = Y[:, j]
        if yj.min() == yj.max():
            continue
        Z = np.column_stack([head_oof[:, j], lex_oof[:, j]])
        cal = LogisticRegression(C=1e4).fit(Z, yj, sample_weight=sample_weight)
        a, b = cal.coef_[0]
        if b < 0:  # the words point the wrong way out of fold: keep the head alone for this tag
            cal = LogisticRegression(C=1e4).fit(Z[:, :1], yj, sample_weight=sample_weight)
            a, b = cal.coef_[0, 0], 0.0
        platt[j] = (a, b, cal.intercept_[0])
        cut, _ = best_f1_threshold(sigmoid(Z @ np.array([a, b]) + cal.intercept_[0]), yj, sample_weight=sample_weight)
        thresholds[j] = np.clip(cut, 0.02, 0.98)
    return platt, thresholds
