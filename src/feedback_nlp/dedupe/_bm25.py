"""A small BM25 index over text (scipy sparse), with tokens that keep identifiers.

Bug reports and feature requests share identifiers, error strings, versions, product and component names
(``NativeAzureFsOutputStream``, ``s3a``, ``4.1.45.Final``, ``HADOOP-16821``): the tokenizer keeps each
such token whole *and* adds its parts (split at dots, dashes, slashes and camelCase), so
``S3AFileSystem.getFileStatus`` matches ``getFileStatus`` and ``S3AFileSystem`` alike.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from .._scripts import CJK, WORD_MARKS, cjk_words
from ..cleaning import _check_text
from ..errors import InputTypeError, NotFittedError

__all__ = ["BM25", "tokenize"]

# combining marks are part of a word (\w leaves them out: Hindi "नहीं" gave "नह"; a decomposed "café" gave "cafe")
_TOKEN = re.compile(rf"[^\W_][\w{WORD_MARKS}.$#:/-]*(?:[^\W_]|[{WORD_MARKS}])|[^\W_]", re.UNICODE)
_PARTS = re.compile(r"[._:/#$-]+|(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_STOP = frozenset(ENGLISH_STOP_WORDS)


def tokenize(text: str) -> list[str]:
    """Lower-cased tokens of ``text``: words, identifiers whole and in parts; English stop words dropped.
    Chinese and Japanese are read as Han pairs and katakana words, with an identifier written against them
    apart (``导出NullPointerException错误`` → ``导出``, ``nullpointerexception``, ``null``…, ``错误``).

    >>> tokenize("NPE in S3AFileSystem.getFileStatus on hadoop-3.3")
    ['npe', 's3afilesystem.getfilestatus', 's3a', 'file', 'file', 'status', 'hadoop-3.3', 'hadoop', '3', '3']
    """
    out: list[str] = []
    if text is None:
        return out
    _check_text("tokenize", text)  # a number or NaN was an AttributeError ("'int' object has no attribute 'isascii'")
    if not text.isascii():  # one form for one word: "café" composed or decomposed, "ＣＳＶ" full-width
        text = unicodedata.normalize("NFKC", text).replace("İ", "i")  # Turkish İ: lower() gave "i" + a dot mark
    for tok in _TOKEN.findall(text):
        if not tok.isascii() and CJK.search(tok):  # a clause without spaces was one token, shared by no other text
            for word in cjk_words(tok, _TOKEN):
                if CJK.search(word):
                    out.append(word)
                else:
                    _add_token(word, out)
        else:
            _add_token(tok, out)
    return out


def _add_token(tok: str, out: list[str]) -> None:
    low = tok.casefold()  # "STRASSE" and "straße" are one word (lower() is casefold() on ASCII)
    if low not in _STOP:
        out.append(low)
    parts = [p.casefold() for p in _PARTS.split(tok) if p]
    if len(parts) > 1:
        out.extend(p for p in parts if p not in _STOP)


def _texts_not_one(func: str, texts: object) -> None:
    if isinstance(texts, (str, bytes)):
        raise InputTypeError(f"{func} expects a sequence of texts, got one {type(texts).__name__}; wrap it in a list")


class BM25:
    """Okapi BM25 (``k1``, ``b``) over a fixed corpus; ``scores(queries)`` is a dense (queries x corpus) block.

    >>> bm = BM25().fit(["export to csv fails", "dark mode please", "csv export is slow, really slow today"])
    >>> [round(float(x), 2) for x in bm.scores(["csv export"])[0]]
    [1.02, 0.0, 0.75]
    """

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b

    def fit(self, texts: Sequence[str | None]) -> BM25:
        _texts_not_one("BM25.fit", texts)  # "abc" was a corpus of three one-letter texts
        vocab: dict[str, int] = {}
        rows, cols = [], []
        for i, t in enumerate(texts):
            for tok in tokenize(t or ""):
                rows.append(i)
                cols.append(vocab.setdefault(tok, len(vocab)))
        n = len(texts)
        tf = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n, max(len(vocab), 1)))
        tf.sum_duplicates()
        df = np.bincount(tf.indices, minlength=tf.shape[1])
        idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
        length = np.asarray(tf.sum(axis=1)).ravel()
        norm = self.k1 * (1 - self.b + self.b * length / max(float(length.mean()), 1e-9))
        coo = tf.tocoo()
        w = coo.data * (self.k1 + 1) / (coo.data + norm[coo.row]) * idf[coo.col]
        # stored transposed (terms x docs): a query's scores are the sum of its terms' rows
        self.weights_ = sp.csr_matrix((w.astype(np.float32), (coo.col, coo.row)), shape=(tf.shape[1], n))
        self.vocab_ = vocab
        self.df_ = df  # how many corpus texts hold each term (see ``scores(max_df=)``)
        return self

    def _query_matrix(self, queries: Sequence[str | None]) -> sp.csr_matrix:
        rows, cols = [], []
        for i, q in enumerate(queries):
            for tok in set(tokenize(q or "")):  # a query term counts once, however often it is repeated
                j = self.vocab_.get(tok)
                if j is not None:
                    rows.append(i)
                    cols.append(j)
        return sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)),
                             shape=(len(queries), self.weights_.shape[0]))

    def scores(self, queries: Sequence[str | None], max_df: int | None = None) -> np.ndarray:
        """BM25 score of every corpus text for each query (float32, queries x corpus).

        ``max_df``: count only the query terms held by at most that many corpus texts — the *specific*
        terms (identifiers, error strings, names) that two reports of the same problem share and few others do.

        >>> bm = BM25().fit(["csv export fails", "csv import fails", "export of NPE-42 fails"])
        >>> [round(float(x), 2) for x in bm.scores(["csv export fails with NPE-42"], max_df=1)[0]]
        [0.0, 0.0, 2.56]
        """
        if not hasattr(self, "weights_"):  # was an AttributeError ("no attribute 'vocab_'")
            raise NotFittedError("this BM25 is not fitted yet; call fit() first")
        _texts_not_one("BM25.scores", queries)
        q = self._query_matrix(queries)
        if max_df is not None:
            q = sp.csr_matrix(q @ sp.diags((self.df_ <= max_df).astype(np.float32)))
        return (q @ self.weights_).toarray()
