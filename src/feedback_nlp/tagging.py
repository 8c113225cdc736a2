"""Taxonomy tagging: trained multi-class / multi-label classifiers, calibrated, with abstain and zero-shot.

:class:`TagClassifier` is a scikit-learn classifier (``ClassifierMixin`` + ``BaseEstimator``: ``clone``,
``Pipeline``, ``GridSearchCV``, ``cross_val_score`` and ``CalibratedClassifierCV`` work with it) and saves to
a folder of plain arrays + JSON + a model card (no pickle), checked by SHA-256 on load.

- Multi-class: logistic regression on embeddings, probabilities calibrated by temperature scaling fitted on
  out-of-fold predictions. Labels may be strings, integers or booleans; ``classes_`` and ``predict`` keep
  their type.
- Multi-label: one logistic regression per tag, Platt-calibrated on out-of-fold scores, with a threshold
  tuned per tag to maximise out-of-fold F1 (not a fixed 0.5). A row whose tags all fall below their
  thresholds gets its most probable tag — rows never end with no tag unless they abstain.
- ``min_confidence``: rows whose best probability is lower go to ``needs_review`` instead of a guess.
- ``zero_shot=True``: no labels needed; tags by similarity to the taxonomy's descriptions and examples,
  one tag per facet (top-level tag), same output format.
- ``head="finetune"``: fine-tunes the embedding model itself first (slower to train, more accurate).

The three modes are heads behind one interface (:mod:`feedback_nlp._heads`).

Example:
    >>> clf = TagClassifier().fit(texts, labels, holdout=0.2)   # doctest: +SKIP
    >>> clf.tag(["Export to CSV fails"])                      # doctest: +SKIP
    >>> clf.save("my-model")                                   # the card shows the held-out metrics  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as _dt
import hashlib
import json
import logging
import numbers
import os
import shutil
import unicodedata
import warnings
from collections.abc import Hashable, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import DataConversionWarning
from sklearn.model_selection import StratifiedKFold

from ._heads import (
    FitSettings,
    Head,
    MultiClassHead,
    MultiLabelHead,
    ZeroShotHead,
    _repeated_rows,
    fit_averaged,
    head_from_arrays,
)
from ._params import HasMethods, Interval, Options, ParamsMixin, validate_params
from ._persist import (
    check_embedder,
    loading,
    prepare_folder,
    read_npz,
    read_saved,
    saving,
    write_config,
    write_manifest,
)
from .cleaning import _letterless
from .embedding import BaseEmbedder, Embedder, _refuse_empty
from .errors import (
    IntegrityError,
    InvalidInputError,
    ModelMismatchError,
    ModelNotFoundError,
    NotFittedError,
    quoted,
    quoted_list,
)
from .evaluation import EvaluationReport, evaluate_predictions
from .records import _id_key, _refuse_shuffled, _refuse_surrogate_ids
from .taxonomy import Taxonomy, _fold_tag_id

if TYPE_CHECKING:
    from ._lexical import LexicalModel

__all__ = ["FORMAT_VERSION", "ProbaFrame", "TagClassifier", "bundled_models"]

log = logging.getLogger(__name__)
FORMAT_VERSION = 5  # 2: self-trained zero-shot heads (a bias array); 3: a lexical channel; 4: keep_base;
# 5: finetune_calibration="in_sample" (a parameter older versions do not take); others 1
_HEADS = ("logreg", "finetune", "contrastive", "auto")  # auto: measured, see _head_select
_FINE_TUNED = ("finetune", "contrastive")  # heads that train the embedding model itself
_BUNDLED_DIRS = (Path(__file__).resolve().parent / "_bundled" / "models",
                 Path(__file__).resolve().parent.parent.parent / "models")
_PREDICTION_PARAMS = ("min_confidence", "show_progress")  # read by predict/tag, not by fit
_HEAD_ATTRS = frozenset({"coef_", "intercept_", "thresholds_", "platt_", "prototypes_", "groups_", "temperature_"})


def bundled_models() -> dict[str, Path]:
    """Tag models shipped with the library, by name (e.g. ``"request-type"``)."""
    out: dict[str, Path] = {}
    for base in _BUNDLED_DIRS:
        if base.is_dir():
            for d in sorted(base.iterdir()):
                if (d / "config.json").exists():
                    out.setdefault(d.name, d)
    return out


# --- labels ---------------------------------------------------------------------------------------

def _is_missing(v: Any) -> bool:
    # NaN of any float type: a float32 NaN from a NumPy column is no label, not a "continuous" one
    return (v is None or v is pd.NA or v is pd.NaT or (isinstance(v, (float, np.floating)) and np.isnan(v))
            or (isinstance(v, Decimal) and v.is_nan()))


def _plain_number(v: Any) -> Any:
    """A numeric label as the Python int or float it stands for: ``Decimal("2")`` and ``Fraction(4, 2)`` are the
    tag 2 (kept as a Decimal they saved as the string "2" and came back as another type), ``Decimal("1.5")``
    is the float 1.5 (then refused as continuous)."""
    v = v.item() if isinstance(v, np.generic) else v
    if isinstance(v, (bool, int, float)):
        return v
    f = float(v)
    return int(v) if np.isfinite(f) and f == int(f) else f


def _refuse_unordered(values: Any, name: str) -> None:
    """A set has no row order the caller can rely on, and a dict's rows are keys or values, not both: either
    would be matched to the wrong labels (or outputs) without a word."""
    if isinstance(values, (set, frozenset)):
        raise InvalidInputError(f"{name} is a {type(values).__name__}, which has no order: its rows cannot be "
                                "matched to the other rows (labels, texts, outputs); pass a list or Series")
    if isinstance(values, Mapping):
        raise InvalidInputError(f"{name} is a {type(values).__name__}: pass its texts or labels as a list or "
                                "Series (e.g. list(d.values())), in the same order as the other rows")


def _indicator(labels: Any) -> tuple[np.ndarray, list[str]] | None:
    """A multi-label indicator (scikit-learn's representation: a 2-D 0/1 array, sparse matrix or DataFrame, one
    column per tag) as its 0/1 matrix and its tag names (a DataFrame's column names, else the column positions),
    or None for any other ``y``."""
    if sparse.issparse(labels):
        labels = np.asarray(labels.todense())  # type: ignore[attr-defined]  # any scipy sparse matrix or array
    if isinstance(labels, pd.DataFrame):
        names = [str(c) for c in labels.columns]
        if len(set(names)) != len(names):
            return None
        if len(names) and all(pd.api.types.is_bool_dtype(t) or pd.api.types.is_numeric_dtype(t) for t in labels.dtypes):
            # nullable columns (boolean, Int64: what read_csv(dtype_backend=...) and convert_dtypes() give) were
            # objects to numpy, so the indicator was refused as "not a DataFrame"
            missing = labels.isna().any(axis=1).to_numpy()
            if missing.any():
                raise InvalidInputError(f"y's indicator columns have missing values in rows "
                                        f"{np.flatnonzero(missing)[:10].tolist()}; each cell is 1 (the row has the "
                                        "tag) or 0")
            labels = labels.to_numpy(dtype=float)
        else:
            labels = labels.to_numpy()
    elif isinstance(labels, np.ndarray) and labels.ndim == 2:
        names = [str(j) for j in range(labels.shape[1])]
    else:
        return None
    if labels.ndim != 2 or labels.shape[1] < 2 or labels.dtype.kind not in "biuf" or labels.size == 0:
        return None
    M = labels.astype(float)
    if not np.isin(M, (0.0, 1.0)).all():
        return None
    return M.astype(np.int64), names


def _label_rows(labels: Any, sep: str | None) -> tuple[list[list[Any]], bool]:
    """Labels as a list of tag lists, and whether any row came as a list (which means multi-label).

    Strings are stripped (and split on ``sep``); numbers and booleans keep their type; tag lists become
    lists of strings.
    """
    indicator = _indicator(labels)
    if indicator is not None:  # scikit-learn's multi-label representation: one 0/1 column per tag
        M, names = indicator
        return [[names[j] for j in np.flatnonzero(r)] for r in M], True
    if isinstance(labels, pd.DataFrame):
        raise InvalidInputError("y must be one column of labels (a list or Series), not a DataFrame (a DataFrame "
                                "of 0/1 columns, one per tag, is read as a multi-label indicator)")
    if not isinstance(labels, (pd.Series, np.ndarray, list, tuple)) and hasattr(labels, "__array__"):
        labels = np.asarray(labels)  # array-likes (xarray, torch tensors, sklearn's test doubles)
    if isinstance(labels, np.ndarray) and labels.ndim == 2 and labels.shape[1] == 1:
        warnings.warn("A column-vector y was passed when a 1d array was expected; ravelled to 1-D",
                      DataConversionWarning, stacklevel=3)
        labels = labels.ravel()
    if isinstance(labels, np.ndarray) and labels.ndim > 1:
        raise InvalidInputError(f"y must be 1-D (one label or one list of tags per row), got shape {labels.shape}; "
                                "for multi-label, pass a list of tag lists or a 0/1 indicator (one column per tag)")
    if isinstance(labels, (pd.Series, np.ndarray)):
        labels = labels.tolist()  # numpy scalars → Python ones (np.int64 → int, np.bool_ → bool)
    elif isinstance(labels, (str, bytes)) or not hasattr(labels, "__iter__"):
        raise InvalidInputError(f"y must be a sequence of labels, got {type(labels).__name__}")
    _refuse_unordered(labels, "y")
    if sep is not None and (not isinstance(sep, str) or not sep):
        raise InvalidInputError(f"sep must be a non-empty string (the character between a row's tags), got {sep!r}")
    rows: list[list[Any]] = []
    any_list = False
    for v in labels:
        if isinstance(v, (list, tuple, set, frozenset, np.ndarray)):
            any_list = True
            row: list[Any] = [str(x).strip() for x in v if not _is_missing(x) and str(x).strip()]
        elif isinstance(v, str):
            row = [x.strip() for x in v.split(sep) if x.strip()] if sep else ([v.strip()] if v.strip() else [])
        elif _is_missing(v):
            row = []
        elif isinstance(v, (complex, np.complexfloating)):
            raise InvalidInputError(f"Complex data not supported: label {quoted(v)}")
        elif isinstance(v, (bool, np.bool_, numbers.Number)):
            row = [_plain_number(v)]
        else:
            raise InvalidInputError(f"label {quoted(v)} of type {type(v).__name__} is not a tag; use strings, "
                                    "integers, booleans or lists of tags")
        rows.append(list(dict.fromkeys(row)))
    return rows, any_list


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _label_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, str):
        return "str"
    return "number"


def _classes_array(rows: list[list[Any]]) -> np.ndarray:
    """Sorted classes in the labels' own type: str → object array, bool → bool, numbers → int or float."""
    kinds = {_label_kind(t) for r in rows for t in r}  # over every label: a set would merge True and 1
    values = {t for r in rows for t in r}
    if len(kinds) > 1:
        raise InvalidInputError(f"labels mix types ({', '.join(sorted(kinds))}); use one type, e.g. all strings")
    kind = kinds.pop()
    if kind == "str":
        broken = sorted(t for t in values if not _encodable(t))
        if broken:  # fit took it, and save failed with a bare UnicodeEncodeError after the training
            raise InvalidInputError(f"tags {quoted_list(broken, limit=5)} hold lone surrogates (not valid Unicode; bytes "
                                    "decoded with the wrong encoding?): a model could not save them")
        return np.array(sorted(values), dtype=object)
    if kind == "bool":
        return np.array(sorted(values), dtype=bool)
    if any(isinstance(v, float) and (not np.isfinite(v) or v != int(v)) for v in values):
        raise InvalidInputError("labels look continuous (non-integer numbers): TagClassifier is a classifier, "
                                "not a regressor")
    arr = np.array(sorted(values))
    if arr.dtype.kind not in "iuf":  # integers beyond 64 bits: saved as text, they would load as strings
        raise InvalidInputError(f"integer labels beyond 64 bits ({quoted(max(values, key=abs))}) cannot be kept as "
                                "numbers; write them as strings")
    return arr


def _saved_classes(saved: np.ndarray, dtype: str) -> np.ndarray:
    """The classes a saved model wrote as strings, back in their own type. Booleans are read by name:
    numpy's ``astype(bool)`` makes every non-empty string ``True``, so ``"False"`` came back ``True``."""
    if dtype == "str":
        return saved.astype(object)
    if dtype == "bool":
        names = {"True": True, "False": False}
        odd = [str(v) for v in saved if str(v) not in names]
        if odd:
            raise ValueError(f"weights.npz: classes {odd[:5]} are not booleans (classes_dtype bool)")
        return np.array([names[str(v)] for v in saved], dtype=bool)
    return saved.astype(dtype)


def _warn_case_variants(classes: list[Any]) -> None:
    """Warn when tags differ only in case, spacing or Unicode form ("Bug" and "bug "; "café" with a composed é
    and pasted from a Mac as e + accent): almost always one tag typed two ways, which the model would learn as
    two competing tags. Not merged silently: the labels are the user's (the CLI's ``train`` merges Unicode
    forms, with a warning, because it reads them from files)."""
    if _LABELS_WARNED.get():
        return
    groups: dict[str, list[str]] = {}
    for c in classes:
        if isinstance(c, str):
            groups.setdefault(_fold_tag_id(c), []).append(c)
    clashes = [g for g in groups.values() if len(g) > 1]
    if clashes:
        shown = "; ".join(quoted_list(g, limit=4) for g in clashes[:5])
        more = f" (and {len(clashes) - 5} more groups)" if len(clashes) > 5 else ""
        # an NFC/NFD pair prints the same: say so, or the warning shows one word twice
        forms = any(len({unicodedata.normalize("NFC", t) for t in g}) < len(g) for g in clashes)
        hint = " (some look identical: they differ in composed vs decomposed accents; normalise to NFC)" \
            if forms else ""
        warnings.warn(f"tags that differ only in case, spacing or Unicode form are trained as separate tags: "
                      f"{shown}{more}{hint}; write each tag one way if they are the same", UserWarning,
                      stacklevel=4)


class _Targets:
    """Encoded training targets: ``classes_``, class indices (multi-class) or a 0/1 matrix (multi-label)."""

    def __init__(self, y: Any, multi_label: bool | None, sep: str | None) -> None:
        rows, any_list = _label_rows(y, sep)
        if not rows:
            raise InvalidInputError("y is empty: nothing to train on")
        empty = [i for i, r in enumerate(rows) if not r]
        if empty:
            raise InvalidInputError(f"rows {empty[:10]} have no label; every training row needs at least one tag")
        multi = (any_list or any(len(r) > 1 for r in rows)) if multi_label is None else multi_label
        if not multi:
            several = [i for i, r in enumerate(rows) if len(r) > 1]
            if several:
                raise InvalidInputError(f"multi_label=False but rows {several[:10]} have several tags")
        elif not all(isinstance(t, str) for r in rows for t in r):
            rows = [[str(t) for t in r] for r in rows]  # multi-label tags are names
        self.rows, self.multi_label = rows, bool(multi)
        self.classes = _classes_array(rows)
        _warn_case_variants(self.classes.tolist())
        if len(self.classes) < 2:
            raise InvalidInputError(f"need at least 2 distinct tags (classes) to train, got 1 class: "
                                    f"{self.classes.tolist()}")
        index = {c: i for i, c in enumerate(self.classes.tolist())}
        # one class index per row (the row's first tag): what multi-class trains on, and what stratifies splits
        self.primary = np.array([index[r[0]] for r in rows])
        if multi:
            self.Y = np.zeros((len(rows), len(index)), dtype=np.int64)
            for i, r in enumerate(rows):
                self.Y[i, [index[t] for t in r]] = 1
        else:
            self.Y = self.primary

    def require_two_per_tag(self) -> None:
        counts = self.Y.sum(axis=0) if self.multi_label else np.bincount(self.Y, minlength=len(self.classes))
        single = [self.classes[j] for j in np.flatnonzero(counts < 2)]
        if single:
            raise InvalidInputError(f"tags {quoted_list(single, limit=10)} have a single example; each tag needs at "
                                    "least 2 to train and calibrate (add examples or drop the tag)")


class ProbaFrame(pd.DataFrame):
    """What ``predict_proba`` returns: a DataFrame with one named column per class that also takes
    NumPy-style indexing (``P[:, 1]``), as scikit-learn's scorers and calibration expect.

    >>> P = ProbaFrame([[0.2, 0.8]], columns=["bug", "question"])
    >>> P["question"].tolist(), P[:, 1].tolist()
    ([0.8], [0.8])
    """

    @property
    def _constructor(self) -> type[ProbaFrame]:
        return ProbaFrame

    @property
    def dtype(self) -> np.dtype:
        """The probabilities' one dtype, as an array has: scikit-learn's ``cross_val_predict`` reads it to pad
        the columns of a class a fold did not train on."""
        try:
            return np.result_type(*self.dtypes) if len(self.columns) else np.dtype(np.float64)
        except TypeError:  # a column of a pandas-only dtype (strings) added by the user
            return np.dtype(object)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, tuple) and not isinstance(self.columns, pd.MultiIndex):
            return self.to_numpy()[key]  # (rows, columns) positions, as on an array
        return super().__getitem__(key)


# --- label issues ---------------------------------------------------------------------------------

def _issue_frame(X: Any, out: list[dict[str, Any]], used: str) -> pd.DataFrame:
    """The label issues as a frame, the most doubted first, indexed by X's own index labels."""
    df = pd.DataFrame(out, columns=["index", "text", "given", "suggested", "p_given", "p_suggested"])
    df[["p_given", "p_suggested"]] = df[["p_given", "p_suggested"]].astype(float).round(4)
    if len(df):
        df = df.assign(_m=df["p_suggested"] - df["p_given"]).sort_values("_m", ascending=False, kind="stable")
        df = df.drop(columns="_m")
    df.index = _labels_at(X, df["index"].tolist())  # X's own labels: df.loc[issues.index] is the right row
    df.attrs["method"] = used
    return df


def _multi_label_conflicts(groups: np.ndarray | None, Y: np.ndarray) -> np.ndarray:
    """(row, tag) cells where copies of one text disagree on a tag: the copies not holding the state most of
    them hold, and every copy of a tie."""
    cells = np.zeros(Y.shape, dtype=bool)
    if groups is None:
        return cells
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        if len(rows) < 2:
            continue
        share = Y[rows].mean(axis=0)
        mixed = (share > 0) & (share < 1)
        majority = share > 0.5
        cells[np.ix_(rows, np.flatnonzero(mixed))] = (
            (Y[rows] != majority) | (share == 0.5))[:, mixed]
    return cells


def _multi_label_issues(clf: TagClassifier, X: Any, targets: _Targets, emb: np.ndarray, texts: list[Any],
                        groups: np.ndarray | None, cv: int, method: str) -> pd.DataFrame:
    """``find_label_issues`` for multi-label rows: out-of-fold probabilities of every tag (one logistic
    regression per tag), then confident learning per tag (:func:`multi_label_issue_mask`)."""
    from ._label_issues import multi_label_issue_mask

    Y, names = targets.Y, targets.classes.tolist()
    n, k = Y.shape
    keys = np.arange(n) if groups is None else groups
    distinct = np.array([len(np.unique(keys[Y[:, j] == 1])) for j in range(k)])
    unjudged = np.flatnonzero(distinct < 2)
    if k - len(unjudged) < 2:
        raise InvalidInputError("find_label_issues cross-validates: it needs at least 2 tags with 2 or more "
                                "distinct texts each; tags with fewer: "
                                f"{quoted_list([names[j] for j in unjudged], limit=10)}")
    if len(unjudged):
        warnings.warn(f"tags {quoted_list([names[j] for j in unjudged], limit=10)} have fewer than 2 distinct texts "
                      "(one row, or copies of one text): no fold can train on them and test them, so they are "
                      "not judged (fit refuses a tag with a single example)", UserWarning, stacklevel=3)
    # folds stratified by each row's rarest judged tag, so every tag's rows spread over the folds (a row's
    # first tag left a tag that is never first to chance: all its rows in one fold, none to learn it from)
    counts = np.where(distinct >= 2, Y.sum(axis=0), n + 1)
    strata = np.where(Y == 1, counts, n + 2).argmin(axis=1)
    splits = _copies_together(strata, groups, cv, int(clf.random_state))
    if not splits:
        present = np.bincount(strata, minlength=k)
        folds = StratifiedKFold(n_splits=max(2, min(cv, int(distinct[distinct >= 2].min()))), shuffle=True,
                                random_state=clf.random_state)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
            splits = list(folds.split(emb, strata if (present[present > 0] >= 2).all() else np.zeros(n)))
    P = np.zeros((n, k))
    judged = np.ones((n, k), dtype=bool)
    judged[:, unjudged] = False
    for tr, te in splits:
        for j in np.flatnonzero(distinct >= 2):
            ytr = Y[tr, j]
            if ytr.min() == ytr.max():  # this fold's training part holds no row with (or without) the tag
                P[te, j], judged[te, j] = float(ytr[0]), False
                continue
            P[te, j] = clf._settings().logreg().fit(emb[tr], ytr).predict_proba(emb[te])[:, 1]
    mask, used = multi_label_issue_mask(Y, P, method=method)
    mask &= judged
    mask |= _multi_label_conflicts(groups, Y) & (distinct >= 2)  # copies that disagree: one of them is wrong
    out = []
    for i in np.flatnonzero(mask.any(axis=1)):
        doubted = np.flatnonzero(mask[i])
        removed = {names[j] for j in doubted if Y[i, j]}
        kept = [t for t in targets.rows[i] if t not in removed]
        added = [names[j] for j in sorted(doubted, key=lambda j: -P[i, j]) if not Y[i, j]]
        if not kept and not added:  # every tag doubted and none missing: the likeliest other tag, as fit needs one
            others = np.where(Y[i] == 1, -1.0, P[i])
            added = [names[int(others.argmax())]]
        p_given = float(np.min(np.where(Y[i, doubted] == 1, P[i, doubted], 1 - P[i, doubted])))
        out.append({"index": int(i), "text": texts[i], "given": "|".join(map(str, targets.rows[i])),
                    "suggested": "|".join(kept + added), "p_given": p_given, "p_suggested": 1 - p_given})
    return _issue_frame(X, out, used)


# --- inputs ---------------------------------------------------------------------------------------

def _index_of(X: Any) -> pd.Index | None:
    return X.index if isinstance(X, (pd.Series, pd.DataFrame)) else None


def _labels_at(X: Any, positions: list[int]) -> pd.Index:
    """The index labels of rows at ``positions`` of a Series/DataFrame X (a frame output keeps its input's
    index, beside an ``index`` column of positions), or a plain RangeIndex for other inputs."""
    index = _index_of(X)
    return pd.RangeIndex(len(positions)) if index is None else index[list(positions)]


def _checked_ids(X: Any, ids: Any) -> list[Any]:
    """``tag``'s ids as a list, one per row of X, in X's order: InvalidInputError for a string (its letters are not
    ids), something that is no sequence, an unordered container, an index in another order than X's, or ids that
    cannot be told apart (lists, dicts: unhashable)."""
    if isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__") or isinstance(ids, pd.DataFrame):
        raise InvalidInputError(f"ids must be a sequence of one id per row (a list, array or Series), got "
                                f"{type(ids).__name__}")
    _refuse_unordered(ids, "ids")
    _refuse_shuffled(X, ids, "ids")
    values = ids.tolist() if isinstance(ids, (pd.Series, np.ndarray)) else list(ids)
    bad = [i for i, v in enumerate(values) if not isinstance(v, Hashable)]
    if bad:
        raise InvalidInputError(f"ids at positions {bad[:10]} are {type(values[bad[0]]).__name__}s, which cannot be "
                                "told apart as ids; an id is a string or a number")
    return values


def _row_keys(X: Any, texts: Any = None) -> np.ndarray:
    """A 64-bit fingerprint of each row: its text (case and spacing aside, as :func:`_repeat_groups` reads
    copies) or, for embeddings without texts, its vector's bytes. Kept from training, they let ``evaluate``
    see test rows that are copies of training rows."""
    numeric = _numeric_rows(X)
    if numeric is None or texts is not None:
        raw = [_copy_key(t).encode("utf-8", "surrogatepass")
               for t in (_texts(X) if texts is None else _given_texts(X, texts))]
    else:
        raw = [r.tobytes() for r in np.ascontiguousarray(numeric, dtype=np.float32)]
    return np.array([int.from_bytes(hashlib.blake2b(b, digest_size=8).digest(), "little") for b in raw],
                    dtype=np.uint64)


def _once(value: Any) -> Any:
    """A one-shot iterator (a generator, ``map``, an open file) read into a list, anything else as it is: each
    method reads its inputs several times (counting rows, embedding, the word channel), and a second pass over
    a spent generator sees nothing ("X is empty") or fewer rows than the first."""
    return list(value) if isinstance(value, Iterator) else value


def _numeric_rows(X: Any) -> np.ndarray | None:
    """X as a 2-D float array when it holds precomputed embeddings (numbers), else None (texts)."""
    if isinstance(X, pd.DataFrame):
        if len(X.columns) and all(pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t)
                                  for t in X.dtypes):
            return X.to_numpy(dtype=np.float64)
        return None
    if sparse.issparse(X):
        raise InvalidInputError("sparse input is not supported: pass texts or dense embeddings")
    if not isinstance(X, (pd.Series, np.ndarray, list, tuple, str)) and hasattr(X, "__array__"):
        X = np.asarray(X)  # array-likes (xarray, torch tensors, sklearn's test doubles)
    if isinstance(X, np.ndarray) and X.dtype.kind == "c":
        raise InvalidInputError("Complex data not supported: embeddings must be real numbers")
    if isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind in "fiu":
        return X.astype(np.float64, copy=False)
    if isinstance(X, (list, tuple)) and X and all(
            isinstance(r, (list, tuple, np.ndarray)) and all(isinstance(v, numbers.Real) for v in r) for r in X):
        widths = sorted({len(r) for r in X})
        if len(widths) > 1:  # numpy's "inhomogeneous shape" says nothing of embeddings
            raise InvalidInputError(f"X's embedding rows have different lengths ({', '.join(map(str, widths[:5]))}); "
                                    "every vector must have the embedder's dimensions")
        return np.asarray(X, dtype=np.float64)  # a list of number rows: embeddings
    return None


def _texts(X: Any, name: str = "X") -> list[str]:
    """X as a list of texts; InvalidInputError naming the rows that are not text (and the argument, ``name``)."""
    if isinstance(X, str):
        return [X]
    if isinstance(X, pd.DataFrame):
        if X.shape[1] != 1:
            raise InvalidInputError(f"{name} is a DataFrame with {X.shape[1]} columns; pass the text column (a Series) "
                                    "or precomputed embeddings (numeric columns)")
        X = X.iloc[:, 0]
    if isinstance(X, np.ndarray) and X.ndim == 2 and X.shape[1] == 1 and X.dtype.kind in "OU":
        X = X[:, 0]  # one column of texts, as a one-column DataFrame (what ColumnTransformer and Bagging pass)
    if isinstance(X, np.ndarray) and X.ndim == 1 and X.dtype.kind in "fiub":
        raise InvalidInputError(f"{name} is a 1-D array of numbers: pass texts, or embeddings as a 2-D array "
                                "(Reshape your data with X.reshape(1, -1) for a single embedding)")
    if isinstance(X, np.ndarray) and X.ndim != 1:
        raise InvalidInputError(f"{name} must be texts (1-D) or embeddings (2-D numbers), got a {X.ndim}-D "
                                f"{X.dtype} array")
    if not hasattr(X, "__iter__"):  # None, a number, an object
        raise InvalidInputError(f"{name} must be texts (a string, a list or Series of strings) or embeddings, got "
                                f"{type(X).__name__}")
    _refuse_unordered(X, name)
    values = X.tolist() if isinstance(X, (pd.Series, np.ndarray)) else list(X)
    bad = [i for i, t in enumerate(values) if not isinstance(t, str)]
    if bad:
        kinds = sorted({type(values[i]).__name__ for i in bad})
        raise InvalidInputError(f"{name} rows {bad[:10]} are not text ({', '.join(kinds)}); pass strings, or "
                                "precomputed embeddings as a 2-D numeric array")
    return values


def _given_texts(X: Any, texts: Any) -> list[str]:
    """``texts=``, the texts of precomputed embeddings ``X``, as a list: named ``texts`` in errors (a set was
    "X is a set"), and refused when it is a Series whose index holds X's labels in another order (the lexical
    channel read other rows' words)."""
    _refuse_shuffled(X, texts, "texts")
    return _texts(texts, "texts")


def _check_finite(emb: np.ndarray, what: str) -> None:
    bad = np.flatnonzero(~np.isfinite(emb).all(axis=1))
    if len(bad):
        raise InvalidInputError(f"{what} contain NaN or infinity in rows {bad[:10].tolist()}; "
                                "a non-finite vector cannot be tagged")


def _take(X: Any, idx: np.ndarray) -> Any:
    if isinstance(X, (pd.Series, pd.DataFrame)):
        return X.iloc[idx]
    if isinstance(X, np.ndarray):
        return X[idx]
    values = list(X)
    return [values[i] for i in idx]


class _Joined(BaseEmbedder):
    """A fine-tuned encoder's vectors beside its frozen base model's (``keep_base=True``): each row is the two
    L2-normalised vectors side by side, so a linear head adds a logit from each."""

    def __init__(self, tuned: BaseEmbedder, base: BaseEmbedder) -> None:
        self.tuned, self.base = tuned, base
        self.model_id = f"{tuned.model_id}+{base.model_id}"

    @property
    def dim(self) -> int:  # type: ignore[override]
        return int(self.tuned.dim) + int(self.base.dim)

    def encode(self, texts: Sequence[str] | str) -> np.ndarray:
        return np.hstack([np.asarray(self.tuned.encode(texts), dtype=np.float32),
                          np.asarray(self.base.encode(texts), dtype=np.float32)])


# Set while fit trains copies of itself (the held-out copy, calibration halves, head="auto"'s candidates): the
# warnings about the labels were given once by the fit the user called, not again by each copy.
_LABELS_WARNED: contextvars.ContextVar[bool] = contextvars.ContextVar("feedback_nlp_labels_warned", default=False)


@contextlib.contextmanager
def _labels_checked() -> Iterator[None]:
    token = _LABELS_WARNED.set(True)
    try:
        yield
    finally:
        _LABELS_WARNED.reset(token)


def _copy_key(text: str) -> str:
    """What makes two texts copies of one another here: the same words, case and spacing aside (the one rule for
    repeated training rows, leakage from training into evaluation and look-alike zero-shot tags).

    >>> _copy_key("  Export   FAILS ") == _copy_key("export fails")
    True
    """
    return " ".join(text.casefold().split())


def _repeat_groups(X: Any, texts: Any = None) -> np.ndarray | None:
    """One group number per row, shared by rows with the same text (case and spacing aside) — or the same
    vector when only embeddings are given; None when no row repeats another."""
    numeric = _numeric_rows(X)
    words = texts if texts is not None else (None if numeric is not None else X)
    if words is None:
        return None if numeric is None else _repeated_rows(numeric)  # one text embeds to the same bits
    keys = [_copy_key(t) for t in (_texts(X) if texts is None else _given_texts(X, texts))]
    if len(set(keys)) == len(keys):
        return None
    return np.unique(np.array(keys, dtype=object), return_inverse=True)[1].ravel()


def _copies_together(primary: np.ndarray, groups: np.ndarray | None, cv: int,
                     seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds in which the copies of one text (``groups``) share a fold and every training part keeps
    every tag; none when no text repeats or the tags have too few distinct texts for that (the caller then
    splits the plain way). Copies split across folds answer each other: a mislabelled text that repeats was
    predicted with its own wrong tag, confidently, and not listed as a label issue."""
    if groups is None:
        return []
    from sklearn.model_selection import StratifiedGroupKFold

    # a tag of one distinct text (one row, or copies of one text) cannot be in a training part and a test part
    # at once; counting it (1 fold) threw the grouping away for every tag, and the copies of a mislabelled
    # text elsewhere vouched for each other again. Its rows are tested unseen (the caller does not list them).
    present = np.flatnonzero(np.bincount(primary))
    distinct = {int(c): len(np.unique(groups[primary == c])) for c in present}
    judged = [c for c in distinct if distinct[c] >= 2]
    if len(judged) < 2:
        return []
    n_folds = min(cv, min(distinct[c] for c in judged))
    with warnings.catch_warnings():  # an unjudged tag's rows: the caller names them ("The least populated class")
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        splits = list(StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(primary, primary,
                                                                                                   groups))
    if all(set(judged) <= set(np.unique(primary[tr]).tolist()) for tr, _ in splits):
        return splits
    return []


def _unjudged_tags(primary: np.ndarray, groups: np.ndarray | None, k: int) -> list[int]:
    """Tags (class indices) some row has first but that hold fewer than 2 distinct texts (``groups``; every row
    its own text when None): out of fold, such a tag is never both trained on and tested."""
    keys = np.arange(len(primary)) if groups is None else groups
    return [j for j in range(k) if (primary == j).any() and len(np.unique(keys[primary == j])) < 2]


def _warn_conflicting_labels(groups: np.ndarray | None, rows: list[list[Any]]) -> None:
    """Warn when one text carries different tags in different rows: the model cannot learn both, and such
    rows are usually labelling slips (``find_label_issues`` lists the likely ones)."""
    if groups is None or _LABELS_WARNED.get():
        return
    tags: dict[int, set[tuple[str, ...]]] = {}
    for g, r in zip(groups.tolist(), rows):
        tags.setdefault(g, set()).add(tuple(sorted(map(str, r))))
    clashes = sum(1 for v in tags.values() if len(v) > 1)
    if clashes:
        warnings.warn(f"{clashes} text(s) appear more than once with different tags; the model cannot follow "
                      "both (find_label_issues lists the rows most likely mislabelled)", UserWarning, stacklevel=4)


def _unmeasured_tags(report: EvaluationReport, classes: list[Any]) -> str:
    """``"; the held-out rows hold no row of …"`` (and a warning) when trained tags are missing from the held-out
    share: a tag with too few rows keeps them all for training, and the card's macro-F1 of 1.0 for a three-tag
    model came from held-out rows of one tag, without a word. Empty when every tag was measured."""
    held = {t for t, n in zip(report.per_tag["tag"], report.per_tag["support"]) if n > 0}
    missing = [c for c in classes if c not in held]
    if not missing:
        return ""
    note = (f"; {len(missing)} of {len(classes)} tags have no held-out row (too few rows to hold one out) and are "
            f"not measured by these figures: {quoted_list(missing, limit=10)}")
    warnings.warn(f"held-out evaluation:{note[1:]}; label more rows of them, or evaluate on a labelled file of "
                  "your own", UserWarning, stacklevel=4)
    return note


def _conflicting_copies(groups: np.ndarray | None, primary: np.ndarray) -> dict[int, int]:
    """Rows whose text repeats under another tag (``groups`` from :func:`_repeat_groups`), each with the tag its
    copies carry most: the rows not carrying their group's most common tag, and every row of a tie.

    >>> _conflicting_copies(np.array([0, 0, 0, 1, 2, 2]), np.array([1, 1, 0, 0, 0, 1]))
    {2: 1, 4: 1, 5: 0}
    """
    if groups is None:
        return {}
    members: dict[int, list[int]] = {}
    for row, g in enumerate(groups.tolist()):
        members.setdefault(g, []).append(row)
    out: dict[int, int] = {}
    for rows in members.values():
        counts = np.bincount(primary[rows])
        if np.count_nonzero(counts) < 2:
            continue
        tie = np.count_nonzero(counts == counts.max()) > 1
        for r in rows:
            if tie or counts[primary[r]] < counts.max():
                others = counts.copy()
                others[primary[r]] = 0
                out[r] = int(np.argmax(others))
    return out


def _holdout_split(primary: np.ndarray, share: float, seed: int, groups: np.ndarray | None = None,
                   Y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/held-out positions; every class keeps at least 2 training rows (with ``Y``, the 0/1
    tags of multi-label rows, every tag does, not only the first tags the split stratifies by).

    With ``groups`` (see :func:`_repeat_groups`), the copies of a repeated text go to the same side: a copy in
    training would otherwise answer its twin in the held-out set, and the model card would report the
    model's memory, not how it does on new feedback. Without repeats the split is the plain stratified one.
    """
    rng = np.random.default_rng(seed)
    train, test = [], []
    if groups is None:
        for c in np.unique(primary):
            rows = rng.permutation(np.flatnonzero(primary == c))
            n_test = min(int(round(share * len(rows))), len(rows) - 2)
            test += rows[:max(n_test, 0)].tolist()
            train += rows[max(n_test, 0):].tolist()
    else:
        side = np.full(len(primary), -1)  # -1 open, 0 training, 1 held out
        members = {g: np.flatnonzero(groups == g) for g in np.unique(groups)}
        counts = np.bincount(primary)
        held = np.zeros(len(counts), dtype=np.int64)  # rows of each tag held out so far
        for c in np.unique(primary):
            rows = rng.permutation(np.flatnonzero(primary == c))
            n_test = min(int(round(share * len(rows))), len(rows) - 2)
            for r in rows:
                if side[r] != -1:
                    continue
                group = members[groups[r]]
                extra = np.bincount(primary[group], minlength=len(counts))
                # held out only while this tag wants more and every tag of the group keeps 2 training rows
                fits = held[c] < n_test and bool(np.all(counts - held - extra >= np.where(extra > 0, 2, 0)))
                side[group] = 1 if fits else 0
                if fits:
                    held += extra
        test, train = np.flatnonzero(side == 1).tolist(), np.flatnonzero(side == 0).tolist()
    if Y is not None:
        train, test = _keep_two_of_every_tag(test, Y, groups)
    if not test:
        raise InvalidInputError(f"holdout={share} leaves no row to evaluate on: a tag needs 3 or more rows to hold "
                                "one out and keep 2 for training; label more rows or train without a holdout")
    return np.sort(train), np.sort(test)


def _held_out_share(asked: float, held: int, rows: int) -> str:
    """How many rows the held-out figures come from. The share is the one asked for unless the split held out
    far fewer (every tag keeps 2 training rows): holdout=0.99 on 8 rows held out 4 and the card said 99%."""
    if abs(held / rows - asked) <= 0.05:
        return f"held-out stratified {asked:.0%} ({held} rows)"
    return (f"held-out stratified {held / rows:.0%} ({held} of {rows} rows; {asked:.0%} was asked, but every tag "
            "keeps 2 rows for training)")


def _keep_two_of_every_tag(test: list[int], Y: np.ndarray, groups: np.ndarray | None) -> tuple[list[int], list[int]]:
    """Multi-label held-out rows moved back to training (with their copies) until every tag keeps 2 training rows:
    the split stratifies by each row's first tag, and a tag that came second could be held out whole, so the copy
    evaluated never learned it and the card scored every row of it as missed ("not trained on")."""
    held = np.zeros(len(Y), dtype=bool)
    held[test] = True
    for j in range(Y.shape[1]):
        for r in np.flatnonzero(held & (Y[:, j] == 1)):
            if Y[~held, j].sum() >= 2:
                break
            held[r if groups is None else np.flatnonzero(groups == groups[r])] = False
    return np.flatnonzero(~held).tolist(), np.flatnonzero(held).tolist()


def _checked_sample_weight(sample_weight: Any, X: Any, n: int, *, scoring: bool = False) -> np.ndarray:
    """``fit``'s ``sample_weight`` as float64, one per row, as scikit-learn's ``_check_sample_weight`` accepts it
    (a number is every row's weight), with errors that name the problem: a length that is not the rows', a
    value that is not a finite non-negative number (row given), booleans (a mask selects rows, it does not
    weigh them), or weights that are all 0. ``scoring``: the weights of ``score``, averaged in float64, so the
    float32 range of training does not bind them."""
    if isinstance(sample_weight, (numbers.Real, Decimal)) and not isinstance(sample_weight, (bool, np.bool_)):
        w = np.full(n, float(sample_weight))
    else:
        if isinstance(sample_weight, (str, bytes, Mapping)) or not (hasattr(sample_weight, "__len__")
                                                                    or hasattr(sample_weight, "__array__")):
            raise InvalidInputError(f"sample_weight must be one number per row (a list, array or Series), got "
                                    f"{type(sample_weight).__name__}")
        _refuse_shuffled(X, sample_weight, "sample_weight")
        raw = np.asarray(sample_weight.to_numpy() if isinstance(sample_weight, pd.Series) else sample_weight,
                         dtype=None if hasattr(sample_weight, "__array__") else object)
        if raw.dtype.kind == "b" or any(isinstance(v, (bool, np.bool_)) for v in raw.ravel()):
            raise InvalidInputError("sample_weight holds booleans: weights are numbers (to leave rows out, select "
                                    "the rows; to keep them without influence, weigh them 0.0)")
        try:
            w = raw.astype(np.float64)
        except (TypeError, ValueError):
            raise InvalidInputError("sample_weight must hold numbers (one weight per row)") from None
        if w.ndim != 1:
            raise InvalidInputError(f"sample_weight must be 1-D (one weight per row), got shape {w.shape}")
        if len(w) != n:
            raise InvalidInputError(f"sample_weight has {len(w)} values but X has {n} rows")
    bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
    if len(bad):
        raise InvalidInputError(f"sample_weight must be finite and non-negative: row {int(bad[0])} is {float(w[bad[0]])}"
                                + (f" ({len(bad)} such rows)" if len(bad) > 1 else ""))
    if not w.sum() > 0:  # score said "nothing would be learned" too
        raise InvalidInputError("sample_weight is zero for every row: " + ("no row would count in the score" if scoring
                                                                           else "nothing would be learned"))
    if scoring:  # a weight of 1e300 refused as "float32's range (the embeddings' precision)", which scoring never uses
        return w
    # scikit-learn weighs float32 embeddings in float32: 1e-300 became 0 and 1e300 infinity (its ValueError)
    f32 = np.finfo(np.float32)
    out = np.flatnonzero(((w > 0) & (w < f32.tiny)) | (w * len(w) > f32.max))
    if len(out):
        raise InvalidInputError(f"sample_weight must lie within float32's range (the embeddings' precision), "
                                f"about 1e-38 to {f32.max / len(w):.1e} for {len(w)} rows: row {int(out[0])} is "
                                f"{float(w[out[0]])}; rescale the weights (e.g. to a mean of 1)")
    return w


def _refuse_unweighted_tags(targets: _Targets, w: np.ndarray) -> None:
    """Every tag must carry some weight: a tag whose rows all weigh 0 cannot be learned, but would still be
    one of ``classes_``."""
    per_tag = w @ targets.Y if targets.multi_label else np.bincount(targets.primary, weights=w,
                                                                     minlength=len(targets.classes))
    empty = [v.item() if isinstance(v := targets.classes[j], np.generic) else v for j in np.flatnonzero(per_tag <= 0)]
    if empty:
        raise InvalidInputError(f"every row of tag(s) {quoted_list(empty, limit=5)} has sample_weight 0: such a "
                                "class cannot be learned (yet would be one of classes_); drop its rows or give them "
                                "weight")


def _weight_summary(w: np.ndarray) -> dict[str, Any]:
    """What ``config.json`` and the model card say of a weighted fit (the weights themselves are not saved)."""
    return {"rows": len(w), "total": round(float(w.sum()), 6), "min": round(float(w.min()), 6),
            "max": round(float(w.max()), 6), "zero_rows": int((w == 0).sum())}


def _crossfit_halves(targets: _Targets, seed: int) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """Two halves of the rows, stratified by each row's first tag, as (train, test) pairs both ways; None when
    a multi-label tag would miss from a half (each half must see every tag at least twice)."""
    rng = np.random.default_rng(seed)
    first = []
    for c in np.unique(targets.primary):
        rows = rng.permutation(np.flatnonzero(targets.primary == c))
        first += rows[: len(rows) // 2].tolist()
    a = np.sort(np.asarray(first, dtype=int))
    b = np.setdiff1d(np.arange(len(targets.primary)), a)
    if targets.multi_label and min(targets.Y[a].sum(axis=0).min(), targets.Y[b].sum(axis=0).min()) < 2:
        return None
    return [(a, b), (b, a)]


class TagClassifier(ParamsMixin, ClassifierMixin, BaseEstimator):
    """Tags feedback with the team's taxonomy.

    Args:
        embedder: any :class:`~feedback_nlp.embedding.BaseEmbedder`; default: :class:`Embedder` ().
        taxonomy: a :class:`Taxonomy`; labels are checked against it, predictions include ancestors, and
            zero-shot uses its descriptions.
        multi_label: ``None`` infers it from the labels (lists → multi-label), or force True/False.
        head: ``"logreg"`` (fast default), ``"finetune"`` (fine-tunes the embedding model first) or
            ``"contrastive"`` (fine-tunes with class-balanced batches and a supervised contrastive loss added,
            for few labels per tag; multi-label falls back to ``"finetune"``) or ``"auto"`` (measures the
            heads by cross-validation within ``time_budget`` and trains the best; see ``head_selection_``).
        C: inverse regularisation strength of the logistic regression (10 suits normalised embeddings).
        min_confidence: rows whose best probability is below it are flagged ``needs_review`` and get no tag.
        zero_shot: tag by similarity to tag descriptions/examples; needs a taxonomy, no labels.
        self_train: with ``zero_shot``, ``fit(backlog)`` learns from the team's *unlabelled* feedback: the
            rows the description similarity is surest of become pseudo-labels, a head is trained on them
            and the backlog is re-labelled, four rounds (see :func:`~feedback_nlp.training.self_train_head`:
            +6 and +10 points on banking77 and hwu64 over the descriptions alone; it follows the backlog's
            clusters, so tags the embedding does not cluster by, such as bug vs question, can lose). With
            labels, ``fit(X, y, unlabelled=backlog)`` extends them with pseudo-labels the same way
            (multi-class; banking77 with 8 labels per intent: 0.839 → 0.854).
        taxonomy_examples: with a taxonomy and multi-class labels, each tag's own words — its name (and
            description) and the taxonomy's example texts — become extra labelled rows of the head (and of the
            backlog's pseudo-labelling). Most useful with few labels: banking77 with 8 labels per intent and
            label names as tag names, 0.839 → 0.849 (frozen), 0.854 → 0.861 with self-training.
        lexical: also read the words (default True): a word TF-IDF + logistic regression over the whole text
            (the embedding reads a window of 128-256 tokens and blurs rare, exact words), whose logits are
            added to the head's with a weight fitted on out-of-fold predictions of the training rows, kept
            only when it lowers their log-loss (``lexical_fusion_``; ``lexical_`` is ``None`` otherwise).
            nlbse24 GitHub issues, 300 per repository: 0.711 → 0.765 macro-F1 (frozen head). Needs texts in
            ``fit``; a model that kept it needs the texts to predict too (``tag(vectors, texts=texts)``).
            See docs/benchmarks.md ("Lexical channel").
        keep_base: with ``"finetune"`` or ``"contrastive"``, the head reads the fine-tuned encoder's vectors
            *and* the frozen base model's side by side (default False), so it keeps what tuning on few labels
            sharpened and what it may have unlearned; prediction embeds each text twice (twice the time).
            banking77 with 8 labels per intent (+ tag names, self-training): 0.867 → 0.871 (docs/benchmarks.md,
            "Few-shot"). No effect on the frozen heads, whose vectors are the base model's already.
        cv: folds for the out-of-fold calibration and threshold tuning.
        finetune_calibration: how ``"finetune"`` and ``"contrastive"`` calibrate their probabilities (and
            multi-label thresholds, and the lexical channel's weight). ``"crossfit"`` (default): two more
            encoders are fine-tuned, each on half of the rows, and score the other half — held-out scores from
            encoders that never saw the row, as scikit-learn's ``CalibratedClassifierCV(ensemble=False)`` does;
            about 1.5-2x the training time. ``"in_sample"``: out-of-fold scores of the head on the tuned
            encoder's vectors, which that encoder was trained on: fast, but over-confident (nlbse24, 300 issues
            per repository: mean top probability 0.99 at 0.80 accuracy). Falls back to ``"in_sample"`` (and
            says so in ``calibration_``) when a tag has fewer than 4 rows. Ignored by the frozen heads.
        adapter: how ``"finetune"`` and ``"contrastive"`` train the embedding model: ``"lora"`` (default)
            trains low-rank updates of its linear layers and a saved model stores only those (``adapter.npz``,
            about 1.3 MB) plus the SHA-256 of the base model's weights, which loading checks; ``None`` trains
            every weight and a saved model carries the whole encoder (``encoder/``, ~90 MB). See
            docs/benchmarks.md ("Adapters") for accuracy and seconds of both.
        finetune_epochs, finetune_batch_size, finetune_learning_rate, finetune_max_seq_length: the
            ``head="finetune"`` training settings; ``finetune_learning_rate=None`` is 2e-3 with LoRA and 5e-5
            for full fine-tuning; ``finetune_epochs=None`` picks the epochs that stay
            within about 30k row passes and 600k padded tokens, clipped to 1–10 (3 epochs for 10k short
            rows, 10 for a few hundred, fewer for long reviews), which keeps training within minutes on a
            2-core CPU; batches are bucketed by length so padding costs little.
        time_budget: seconds ``head="auto"`` may spend in ``fit`` — measuring the heads *and* training the
            winner (default 600); ``None`` measures every candidate whatever it costs. Ignored by the other heads.
        random_state: seed for folds and fine-tuning; same data and seed → identical model.
        show_progress: progress bars for embedding and fine-tuning.

    ``X`` is texts (a list, a Series, a one-column DataFrame) or precomputed embeddings (a 2-D numeric
    array or DataFrame); outputs that are frames keep a Series/DataFrame input's index.
    """

    _parameter_constraints = {
        "embedder": [BaseEmbedder, HasMethods("encode"), None],
        "taxonomy": [Taxonomy, None],
        "multi_label": ["boolean", None],
        "head": [Options(set(_HEADS))],
        "C": [Interval(float, 0, None, closed="neither")],
        "min_confidence": [Interval(float, 0, 1, closed="both")],
        "zero_shot": ["boolean"],
        "self_train": ["boolean"],
        "taxonomy_examples": ["boolean"],
        "lexical": ["boolean"],
        "keep_base": ["boolean"],
        "cv": [Interval(int, 2, None, closed="left")],
        "finetune_calibration": [Options({"crossfit", "in_sample"})],
        "finetune_epochs": [Interval(int, 1, None, closed="left"), None],
        "finetune_batch_size": [Interval(int, 1, None, closed="left")],
        "finetune_learning_rate": [Interval(float, 0, None, closed="neither"), None],
        "adapter": [Options({"lora"}), None],
        "finetune_max_seq_length": [Interval(int, 8, None, closed="left")],
        "time_budget": [Interval(float, 0, 7 * 24 * 3600, closed="right"), None],  # no NaN, inf or 0
        "random_state": [Interval(int, 0, 2**32 - 1, closed="both")],
        "show_progress": ["boolean"],
    }

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
        self_train: bool = False,
        taxonomy_examples: bool = False,
        lexical: bool = True,
        keep_base: bool = False,
        cv: int = 5,
        finetune_calibration: str = "crossfit",
        finetune_epochs: int | None = None,
        finetune_batch_size: int = 32,
        finetune_learning_rate: float | None = None,
        finetune_max_seq_length: int = 128,
        adapter: str | None = "lora",
        time_budget: float | None = 600.0,
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
        self.self_train = self_train
        self.taxonomy_examples = taxonomy_examples
        self.lexical = lexical
        self.keep_base = keep_base
        self.cv = cv
        self.finetune_calibration = finetune_calibration
        self.finetune_epochs = finetune_epochs
        self.finetune_batch_size = finetune_batch_size
        self.finetune_learning_rate = finetune_learning_rate
        self.finetune_max_seq_length = finetune_max_seq_length
        self.adapter = adapter
        self.time_budget = time_budget
        self.random_state = random_state
        self.show_progress = show_progress

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True  # texts are the primary input
        tags.input_tags.two_d_array = True  # precomputed embeddings
        tags.input_tags.allow_nan = False
        return tags

    def __sklearn_clone__(self) -> TagClassifier:
        # Clones share the embedder (its loaded model and cache) and the taxonomy, which fitting never
        # changes: a deep copy of an Embedder reloads its weights, once per GridSearchCV candidate and fold.
        params = self.get_params(deep=False)
        shared = {k: params.pop(k) for k in ("embedder", "taxonomy")}
        return type(self)(**shared, **{k: clone(v, safe=False) for k, v in params.items()})

    def set_params(self, **params: Any) -> TagClassifier:
        """scikit-learn's ``set_params``, with a :class:`~feedback_nlp.errors.InvalidInputError` (a ValueError,
        as scikit-learn raises) naming the problem: an unknown name (with the closest valid one), or a nested
        ``embedder__…`` key for an embedder that is not a scikit-learn estimator.

        >>> TagClassifier().set_params(min_confidense=0.5)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        feedback_nlp.errors.InvalidInputError: TagClassifier has no parameter 'min_confidense' (did you mean ...
        """
        return super().set_params(**params)

    def __getstate__(self) -> dict[str, Any]:
        # A fine-tuned encoder lives in a scratch folder deleted with the embedder that read it: a copy (pickle,
        # joblib, deepcopy, a result sent back from a worker process) would point at a folder that is gone once
        # the original is collected or its process ends. The copy carries the encoder's files instead.
        state = super().__getstate__()
        embedder = state.get("embedder_")
        if isinstance(embedder, Embedder):
            from .training import scratch_of

            if scratch_of(embedder) is not None:
                location = Path(embedder.location)
                state["_encoder_files"] = {f.relative_to(location).as_posix(): f.read_bytes()
                                           for f in sorted(location.rglob("*")) if f.is_file()}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        files = state.pop("_encoder_files", None)
        super().__setstate__(state)
        if files is not None:  # a copy of a fine-tuned model: its own scratch folder, removed with its embedder
            from .training import remove_with, scratch_dir

            scratch = scratch_dir()
            encoder = scratch / "encoder"
            for name, data in files.items():
                (encoder / name).parent.mkdir(parents=True, exist_ok=True)
                (encoder / name).write_bytes(data)
            embedder = self.embedder_
            assert isinstance(embedder, Embedder)  # only an Embedder's files were packed (see __getstate__)
            embedder.location = encoder
            remove_with(embedder, scratch)

    def __getattr__(self, name: str) -> Any:
        # The learned arrays live on the head; expose them as the classifier's own (coef_, thresholds_, …).
        if name in _HEAD_ATTRS:
            head = self.__dict__.get("head_")
            if head is not None and hasattr(head, name):
                return getattr(head, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # --- helpers ----------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if "head_" not in self.__dict__:
            raise NotFittedError("this TagClassifier is not fitted yet; call fit() or TagClassifier.load()")

    def _validate_prediction_params(self) -> None:
        """Check the parameters prediction and save read as they are now (``_PREDICTION_PARAMS``), which a
        ``set_params`` after ``fit`` changes without a fit to check them: ``min_confidence=5`` sent every row to
        review and NaN none, ``"0.5"`` or None failed with numpy's or Python's TypeError, and save wrote a folder
        that load refused."""
        params = self.get_params(deep=False)
        validate_params({k: self._parameter_constraints[k] for k in _PREDICTION_PARAMS},
                        {k: params[k] for k in _PREDICTION_PARAMS}, type(self).__name__)

    def _settings(self) -> FitSettings:
        return FitSettings(C=float(self.C), cv=int(self.cv), random_state=int(self.random_state))

    def _embed(self, X: Any, embedder: BaseEmbedder, name: str = "X", *, for_fitted: bool = True) -> np.ndarray:
        """Embeddings of X (texts are embedded; numeric arrays are taken as embeddings), checked; errors name the
        argument as ``name``. ``for_fitted``: the vectors feed the fitted head, so their width must be the one it
        was trained on (``find_label_issues`` trains models of its own and passes False)."""
        numeric = _numeric_rows(X)
        expected = self.__dict__.get("n_features_in_") if for_fitted else None
        if numeric is not None:
            if len(numeric) == 0:
                raise InvalidInputError(f"{name} is empty: no rows")
            dim = getattr(embedder, "dim", None)
            if dim is not None and numeric.shape[1] != dim:
                raise ModelMismatchError(f"precomputed embeddings have {numeric.shape[1]} dimensions, the embedder "
                                         f"{embedder.model_id} gives {dim}")
            if expected is not None and numeric.shape[1] != expected:
                raise InvalidInputError(f"X has {numeric.shape[1]} features, but TagClassifier is expecting "
                                        f"{expected} features as input")
            _check_finite(numeric, "precomputed embeddings")
            return numeric.astype(np.float32)
        texts = _texts(X, name)
        if not texts:
            raise InvalidInputError(f"{name} is empty: no texts")
        _refuse_empty(texts)  # whatever the embedder accepts, a blank text carries nothing to tag or learn from
        emb = np.asarray(embedder.encode(texts))
        if emb.ndim != 2 or len(emb) != len(texts):
            raise InvalidInputError(f"the embedder returned shape {emb.shape} for {len(texts)} texts")
        if expected is not None and emb.shape[1] != expected:  # same model id, another size: not a matmul error
            raise ModelMismatchError(f"the embedder {embedder.model_id} gives {emb.shape[1]}-dimensional vectors; "
                                     f"this model was trained on {expected} dimensions")
        _check_finite(emb, "the embedder's vectors")
        return emb.astype(np.float32, copy=False)

    def _default_embedder(self) -> BaseEmbedder:
        return self.embedder if self.embedder is not None else Embedder(show_progress=self.show_progress)

    # --- fitting ----------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, *, sep: str | None = None, holdout: float | None = None,
            unlabelled: Any = None, texts: Any = None, sample_weight: Any = None) -> TagClassifier:
        """Train on texts ``X`` (or precomputed embeddings) and labels ``y``.

        ``y`` holds one tag per row (multi-class: strings, integers or booleans) or a list of tags per row
        (multi-label); with ``sep``, strings such as ``"billing|export"`` are split. With ``zero_shot=True``,
        ``y`` may be omitted (and ``X`` may be ``None``; with ``self_train=True``, ``X`` is the unlabelled
        backlog to learn from). With ``self_train=True`` and labels (multi-class), ``unlabelled`` is the
        backlog the few labels are extended from (:func:`~feedback_nlp.training.pseudo_labels`). With ``holdout`` (e.g. 0.2), a stratified share is held out first: a copy is
        trained on the rest and evaluated there (``holdout_report_``, ``metrics_``, shown on the model card
        by :meth:`save`), then the model is trained on every row. With precomputed embeddings as ``X``,
        ``texts`` (the texts they came from) lets the lexical channel learn their words too.

        ``sample_weight`` (one non-negative number per row, as in scikit-learn) weighs the rows in everything
        ``head="logreg"`` fits: the logistic regression and its out-of-fold calibration (temperature, or each
        tag's Platt scaling and threshold), the lexical channel and its fusion weight, and, with ``holdout``,
        the copy evaluated on the held-out rows (the evaluation itself counts every row once). An integer
        weight counts a row that many times. The fine-tuned heads, ``"auto"``, zero-shot, self-training and
        ``taxonomy_examples`` refuse it (their pair sampling, pseudo-labels or extra rows have no weights).
        The model records that it was weighted (``config.json`` and the model card), not the weights.

        Raises:
            UnknownTagError: a label is not in the taxonomy (message lists labels and rows).
            InvalidInputError: empty input, rows without labels, mismatched lengths, a tag with a single
                example, non-finite embeddings, a bad parameter…
        """
        X, y, texts, unlabelled, sample_weight = _once(X), _once(y), _once(texts), _once(unlabelled), _once(sample_weight)
        # the settings the weights come from: save() writes these, not what a set_params after fit changed
        trained = {k: v for k, v in self.get_params(deep=False).items() if k not in ("embedder", "taxonomy")}
        self._fit(X, y, sep=sep, holdout=holdout, unlabelled=unlabelled, texts=texts, sample_weight=sample_weight)
        indicator = None if y is None or self.zero_shot else _indicator(y)
        if indicator is not None and self.multi_label_:  # predict answers in the same representation
            self.indicator_columns_ = indicator[1]
        self._trained_params_ = trained
        if y is not None and not self.zero_shot:  # fingerprints of the training rows (never saved: see evaluate)
            self._train_keys_ = np.unique(_row_keys(X, texts))
        return self

    def _fit(self, X: Any, y: Any, *, sep: str | None, holdout: float | None, unlabelled: Any,
             texts: Any, sample_weight: Any = None) -> TagClassifier:
        self._validate_params()
        if sample_weight is not None:
            refused = ("zero_shot=True (no labelled rows to weigh)" if self.zero_shot else
                       f"head={self.head!r} (its fine-tuning samples pairs and batches without weights)"
                       if self.head in _FINE_TUNED else
                       "head='auto' (its candidates include heads that cannot weigh rows)" if self.head == "auto" else
                       "self_train=True (pseudo-labelled rows have no weight)" if self.self_train else
                       "taxonomy_examples=True (the taxonomy's rows have no weight)" if self.taxonomy_examples else None)
            if refused is not None:
                raise InvalidInputError(f"sample_weight is not supported with {refused}; use head='logreg', or "
                                        "repeat rows instead of weighing them")
        if unlabelled is not None and (not self.self_train or self.zero_shot):
            raise InvalidInputError("unlabelled rows are used with self_train=True and labels; zero-shot "
                                    "self-training takes the backlog as X" if self.zero_shot else
                                    "unlabelled rows are used only with self_train=True")
        if unlabelled is not None and hasattr(unlabelled, "__len__") and not isinstance(unlabelled, str) \
                and len(unlabelled) == 0:
            raise InvalidInputError("unlabelled is empty: self-training learns from a backlog of unlabelled texts "
                                    "(or pass unlabelled=None and self_train=False)")
        if self.self_train and not self.zero_shot and unlabelled is None:
            raise InvalidInputError("self_train=True learns from unlabelled rows: fit(X, y, unlabelled=backlog), "
                                    "or zero_shot=True with fit(backlog)")
        if holdout is not None and not (isinstance(holdout, numbers.Real) and 0 < holdout < 1):
            raise InvalidInputError(f"holdout must be a share in (0, 1), got {holdout!r}")
        for attr in ("head_", "classes_", "multi_label_", "n_features_in_", "embedder_", "taxonomy_",
                     "metrics_", "holdout_report_", "self_trained_rows_", "head_selection_", "selected_head_",
                     "lexical_", "lexical_fusion_", "base_embedder_", "calibration_", "indicator_columns_",
                     "_trained_params_", "_train_keys_", "_sample_weight_", "_card_text_"):
            # a re-fit starts clean (e.g. zero-shot, then supervised), once its parameters and options passed: a
            # refit refused for C=-1 forgot only the indicator columns and trained parameters, so predict answered
            # tag lists instead of the 0/1 matrix and save wrote C=-1 into a folder that load refused
            self.__dict__.pop(attr, None)
        embedder = self._default_embedder()
        if self.zero_shot:
            if holdout is not None:
                raise InvalidInputError("holdout needs labels; a zero-shot model is evaluated with evaluate(X, y)")
            return self._fit_zero_shot(embedder, X)
        if y is None:
            raise InvalidInputError("TagClassifier requires y to be passed, but the target y is None (labels are "
                                    "needed unless zero_shot=True with a taxonomy)")
        targets = _Targets(y, self.multi_label, sep)
        _refuse_shuffled(X, y)
        numeric = _numeric_rows(X)
        n = len(numeric) if numeric is not None else len(_texts(X))
        if n != len(targets.rows):
            raise InvalidInputError(f"X has {n} rows but y has {len(targets.rows)}")
        weights = None if sample_weight is None else _checked_sample_weight(sample_weight, X, n)
        if unlabelled is not None and targets.multi_label:
            raise InvalidInputError("self-training with labels supports multi-class tags only")
        if self.taxonomy_examples and (self.taxonomy is None or targets.multi_label):
            raise InvalidInputError("taxonomy_examples=True learns from the taxonomy's tag names and examples: it "
                                    "needs a taxonomy and multi-class labels" if self.taxonomy is None else
                                    "taxonomy_examples=True supports multi-class labels only")
        if self.taxonomy is not None:
            if targets.classes.dtype != object or not all(isinstance(t, str) for t in targets.classes):
                raise InvalidInputError("with a taxonomy, labels must be tag ids (strings)")
            self.taxonomy.validate_labels(targets.rows)
        targets.require_two_per_tag()
        if weights is not None:
            _refuse_unweighted_tags(targets, weights)
        repeats = _repeat_groups(X, texts)
        _warn_conflicting_labels(repeats, targets.rows)
        if self.head == "auto":
            return self._fit_auto(X, targets, holdout, unlabelled)
        report = None
        if holdout is not None:
            report = self._holdout_report(X, targets, float(holdout), unlabelled, texts, repeats, weights)
        self.multi_label_ = targets.multi_label
        self.classes_ = targets.classes
        self.taxonomy_ = self.taxonomy
        base = None
        if self.head in _FINE_TUNED:
            if _numeric_rows(X) is not None:
                raise InvalidInputError(f"head={self.head!r} needs texts, not precomputed embeddings")
            base = embedder if self.keep_base else None
            embedder = self._finetune(embedder, X, targets)
        # what the head reads: the (tuned) encoder's vectors, beside the frozen base model's with keep_base
        features = embedder if base is None else _Joined(embedder, base)
        emb = self._embed(X, features)
        split = None if base is None else int(embedder.dim)  # keep_base: the tuned block, then the base's
        self.embedder_ = embedder
        self.base_embedder_ = base
        self.n_features_in_ = emb.shape[1]
        Y = targets.Y
        # the words of every row the head learns from, for the lexical channel (None: it cannot be fitted)
        words = None
        if self.lexical:
            words = self._words_of(X, texts, embedder, len(emb))
        if self.taxonomy_examples:
            texts, extra = self._taxonomy_rows(targets)
            emb, Y = np.vstack([emb, self._embed(texts, features)]), np.r_[Y, extra]
            words = None if words is None else words + self._prepared(embedder, texts)
        head: Head = MultiLabelHead() if targets.multi_label else MultiClassHead()
        if split is not None:  # keep_base: one head per encoder, averaged (see fit_averaged)
            self.head_ = self._fit_averaged(head, emb, Y, split, unlabelled, features)
        else:
            if unlabelled is not None:
                from .training import pseudo_labels

                backlog = self._embed(unlabelled, embedder, "unlabelled")
                rows, pseudo = pseudo_labels(emb, Y, backlog, C=self.C, random_state=self.random_state)
                emb, Y = np.vstack([emb, backlog[rows]]), np.r_[Y, pseudo]
                self.self_trained_rows_ = len(backlog)
                if words is not None and _numeric_rows(unlabelled) is None:
                    backlog_words = self._prepared(embedder, _texts(unlabelled))
                    words += [backlog_words[i] for i in rows]
                else:
                    words = None
            self.head_ = head.fit(emb, Y, self._settings(), weights)
        self.calibration_: str | None = None
        if self.head in _FINE_TUNED:
            self.calibration_ = self._calibrate_held_out(X, targets, self_trained=unlabelled is not None)
        self.lexical_: LexicalModel | None = None
        self.lexical_fusion_: np.ndarray | None = None
        if words is not None:
            self._fit_lexical(words, Y, targets.multi_label, weights)
        if weights is not None:
            self._sample_weight_ = _weight_summary(weights)
        self.holdout_report_ = report
        self.metrics_: dict[str, Any] = {} if report is None else {
            **{k: v for k, v in report.to_dict().items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
            "evaluation": _held_out_share(float(holdout), report.n, len(targets.rows)) + ", trained on the rest"
                          + ("; copies of a repeated text kept on one side" if repeats is not None else "")
                          + "; the saved model was then trained on every row"
                          + _unmeasured_tags(report, self._names(list(range(len(self.classes_))))),
        }
        return self

    def _fit_averaged(self, head: Head, emb: np.ndarray, Y: np.ndarray, split: int, unlabelled: Any,
                      features: BaseEmbedder) -> Head:
        """keep_base: a head on each encoder's block of ``emb``; with a backlog, each block pseudo-labels it on
        its own (two views disagree where one is wrong, which an averaged labeller would hide: banking77 8-shot
        0.8714 vs 0.8697 with one shared set of pseudo-labels). The averaged head is calibrated (and the
        lexical channel fitted) on the labelled rows, the ones both heads share."""
        blocks = [slice(0, split), slice(split, None)]
        parts = [(emb[:, b], Y) for b in blocks]
        if unlabelled is not None:
            from .training import pseudo_labels

            backlog = self._embed(unlabelled, features, "unlabelled")
            parts = []
            for b in blocks:
                rows, pseudo = pseudo_labels(emb[:, b], Y, backlog[:, b], C=self.C, random_state=self.random_state)
                parts.append((np.vstack([emb[:, b], backlog[rows][:, b]]), np.r_[Y, pseudo]))
            self.self_trained_rows_ = len(backlog)
        return fit_averaged(head, parts, self._settings(), shared=len(Y))

    @staticmethod
    def _prepared(embedder: BaseEmbedder, texts: list[str]) -> list[str]:
        """Texts as the embedder reads them (cleaned), so the words match what prediction will see."""
        prepare = getattr(embedder, "prepare", None)
        return list(prepare(texts)) if callable(prepare) else list(texts)

    def _fit_lexical(self, words: list[str], Y: np.ndarray, multi_label: bool,
                     weights: np.ndarray | None = None) -> None:
        """Fit the lexical channel and its fusion with the head on out-of-fold logits; keep it only where
        it helps out of fold."""
        from ._lexical import LexicalModel, fuse_multi_label, fuse_weight

        head_oof = getattr(self.head_, "oof_", None)
        if head_oof is None:  # too few rows per tag for out-of-fold logits: nothing to weigh the words by
            return
        lex = LexicalModel().fit(words, Y, self._settings(), multi_label=multi_label, sample_weight=weights)
        if lex.oof_ is None or not lex.vocabulary_:
            return
        # the head's held-out logits may cover only the labelled rows, which come first (see recalibrate)
        lex_oof, Y = lex.oof_[:len(head_oof)], Y[:len(head_oof)]
        weights = None if weights is None else weights[:len(head_oof)]
        if multi_label:
            platt, thresholds = fuse_multi_label(head_oof, lex_oof, Y, weights)
            if not (platt[:, 1] > 0).any():
                return
            fusion = platt
            assert isinstance(self.head_, MultiLabelHead)
            self.head_.thresholds_ = thresholds  # decisions are taken on the fused probabilities
        else:
            a, b, gain = fuse_weight(head_oof, lex_oof, Y, weights)
            if b <= 0:
                return
            fusion = np.array([a, b], dtype=np.float32)
            log.debug("lexical channel kept: %.3f x head + %.3f x words (out-of-fold log-loss -%.4f)", a, b, gain)
        self.lexical_, self.lexical_fusion_ = lex, fusion.astype(np.float32)

    def _calibrate_held_out(self, X: Any, targets: _Targets, *, self_trained: bool = False) -> str:
        """``finetune_calibration="crossfit"``: refit the fine-tuned head's calibration on held-out scores of
        every labelled row, each from a model fine-tuned on the other half of the rows; returns how the model
        was calibrated (``calibration_``).

        A model self-trained on a backlog keeps the in-sample calibration. Halves trained on the labels alone
        have softer logits than a head that also learned from thousands of pseudo-labels, and their temperature
        left it more over-confident than the in-sample one (banking77 8-shot, draw 0: expected calibration error
        0.079 against 0.063 in sample, at twice the training time); halves self-trained on the same backlog
        calibrated it well (0.020) but took 5x the training time (1,012 s against 211 s under load) and lost
        0.6 points of accuracy through the words' weight fitted on their scores (0.8773 -> 0.8711)."""
        from ._heads import recalibrate

        in_sample = "out-of-fold on the fine-tuned encoder's vectors, which saw every row (it can be over-confident)"
        if self.finetune_calibration != "crossfit":
            return in_sample
        if self_trained:
            return in_sample + "; self-trained, so not cross-fitted (halves without the backlog calibrate it worse)"
        counts = targets.Y.sum(axis=0) if targets.multi_label else np.bincount(targets.primary)
        if counts.min() < 4:  # each half must train every tag on 2 rows and score 2 more
            log.warning("finetune_calibration='crossfit' needs 4 rows of every tag (the smallest has %d): the "
                        "probabilities are calibrated in sample and will be over-confident", counts.min())
            return in_sample + "; too few rows per tag to cross-fit"
        halves = _crossfit_halves(targets, int(self.random_state))
        if halves is None:
            log.warning("finetune_calibration='crossfit': no split into halves keeps every tag in both; the "
                        "probabilities are calibrated in sample and will be over-confident")
            return in_sample + "; no split kept every tag in both halves"
        decisions = np.zeros((len(targets.rows), len(self.classes_)))
        rows = targets.rows
        for train, test in halves:
            # the same recipe on half the rows (no words: only the head's scores are used)
            sub = clone(self).set_params(finetune_calibration="in_sample", lexical=False, self_train=False,
                                         show_progress=False)
            with _labels_checked():
                sub.fit(_take(X, train), [rows[i] if targets.multi_label else rows[i][0] for i in train])
            head = sub.head_
            if not isinstance(head, (MultiClassHead, MultiLabelHead)) or list(sub.classes_) != list(self.classes_):
                return in_sample + "; a half did not learn every tag"
            decisions[test] = head.decision(sub._features(_take(X, test)))
        recalibrate(self.head_, decisions, targets.Y)
        return "cross-fitted: scores of each row from an encoder fine-tuned on the other half of the rows"

    def _fit_auto(self, X: Any, targets: _Targets, holdout: float | None, unlabelled: Any) -> TagClassifier:
        """``head="auto"``: measure the candidate heads within the budget, then train the chosen one on every
        row (a clone does the training; its fitted state becomes this estimator's)."""
        import time

        from ._head_select import select_head

        start = time.monotonic()
        budget = float("inf") if self.time_budget is None else float(self.time_budget)
        with _labels_checked():
            sel = select_head(self, X, targets, unlabelled=unlabelled, holdout=holdout, budget=budget)
        c = sel.chosen
        inner = clone(self).set_params(embedder=sel.embedder, head=c.head, self_train=c.self_train,
                                       zero_shot=c.zero_shot, multi_label=None if c.zero_shot else targets.multi_label)
        y = [r if targets.multi_label else r[0] for r in targets.rows]
        backlog = sel.backlog if sel.backlog is not None else unlabelled
        with _labels_checked():
            if c.zero_shot:
                inner.fit(backlog if c.self_train else None)
            elif c.fine_tuned:  # the encoder is trained on the texts
                inner.fit(X, y, holdout=holdout, unlabelled=unlabelled if c.self_train else None)
            else:  # frozen: the embeddings the selection computed are reused (the texts give the lexical channel)
                inner.fit(sel.embeddings, y, holdout=holdout, unlabelled=backlog if c.self_train else None,
                          texts=X if _numeric_rows(X) is None else None)
        self.__dict__.update({k: v for k, v in inner.__dict__.items() if k.endswith("_") and not k.startswith("_")})
        self.selected_head_ = c.head
        if isinstance(self.metrics_.get("evaluation"), str):  # the card must not claim rows unseen that chose
            self.metrics_["evaluation"] += ("; the head was chosen (head='auto') by cross-validation on every row, "
                                            "the held-out ones included")
        total = time.monotonic() - start
        self.head_selection_ = {**sel.summary(), "total_s": round(total, 1), "within_budget": total <= budget}
        if total > budget:
            log.warning("head='auto' took %.1f s, over its time_budget of %g s", total, budget)
        return self

    def _taxonomy_rows(self, targets: _Targets) -> tuple[list[str], np.ndarray]:
        """Each trained tag's name (with its description) and its taxonomy examples, as labelled texts."""
        assert self.taxonomy is not None
        texts, labels = [], []
        for j, tag_id in enumerate(targets.classes.tolist()):
            tag = self.taxonomy[tag_id]
            for text in dict.fromkeys([tag.prompt(), *tag.examples]):
                texts.append(text)
                labels.append(j)
        return texts, np.asarray(labels, dtype=targets.Y.dtype)

    def _holdout_report(self, X: Any, targets: _Targets, share: float, unlabelled: Any = None,
                        texts: Any = None, repeats: np.ndarray | None = None,
                        weights: np.ndarray | None = None) -> EvaluationReport:
        train, test = _holdout_split(targets.primary, share, int(self.random_state), repeats,
                                     targets.Y if targets.multi_label else None)
        rows = targets.rows
        words = None if texts is None else _given_texts(X, texts)
        with _labels_checked():
            held = clone(self).fit(_take(X, train), [rows[i] if targets.multi_label else rows[i][0] for i in train],
                                   unlabelled=unlabelled, texts=None if words is None else [words[i] for i in train],
                                   sample_weight=None if weights is None else weights[train])
        return held.evaluate(_take(X, test), [rows[i] if targets.multi_label else rows[i][0] for i in test],
                             texts=None if words is None else [words[i] for i in test])

    def _fit_zero_shot(self, embedder: BaseEmbedder, X: Any = None) -> TagClassifier:
        if self.taxonomy is None:
            raise InvalidInputError("zero_shot=True needs a taxonomy with tag names/descriptions")
        facets = self.taxonomy.facets()
        leaves = [t for t in self.taxonomy.leaves() if t not in facets]
        if len(leaves) < 2:
            raise InvalidInputError("zero-shot needs at least 2 leaf tags in the taxonomy")
        _refuse_indistinct_tags(self.taxonomy, leaves, facets)
        _refuse_lone_choices(leaves, facets)
        backlog = None
        if self.self_train:
            n = 0 if X is None else 1 if isinstance(X, str) else len(X)
            if n < 2 * len(leaves):
                raise InvalidInputError(f"self_train=True needs an unlabelled backlog of at least {2 * len(leaves)} "
                                        f"rows (2 per tag) in fit(X); got {n}")
            backlog = self._embed(X, embedder)
        protos = []
        for t in leaves:
            tag = self.taxonomy[t]
            # several phrasings of the tag, averaged: +0.3-0.4 points over "name: description" alone
            phrasings = _tag_phrasings(tag)
            v = self._embed([*phrasings, *tag.examples], embedder)
            p = v[:len(phrasings)].mean(axis=0)
            p = p / max(np.linalg.norm(p), 1e-12)
            if tag.examples:
                p = 0.5 * p + 0.5 * v[len(phrasings):].mean(axis=0)
            protos.append(p / max(np.linalg.norm(p), 1e-12))
        # One choice per facet; tags outside any facet form one group together.
        group_of = {leaf: root for root, ls in facets.items() for leaf in ls}
        groups = np.array([group_of.get(t, "") for t in leaves], dtype=object)
        several = len(set(groups.tolist())) > 1
        if self.multi_label is not None and bool(self.multi_label) != several:
            # was ignored without a word: multi_label=True on a flat taxonomy still gave one tag a row
            shape = "several facets (one tag each: multi-label)" if several else "one group of tags (multi-class)"
            raise InvalidInputError(f"multi_label={self.multi_label} cannot apply to zero-shot, which picks one tag "
                                    f"per facet of the taxonomy; this one has {shape}: leave multi_label=None")
        self.head_ = ZeroShotHead(groups).fit(np.vstack(protos), None, self._settings())
        self.lexical_, self.lexical_fusion_ = None, None  # no labels: no words to learn
        if backlog is not None:
            self.head_.self_train(backlog, self._settings())
            self.self_trained_rows_ = len(backlog)
        self.embedder_ = embedder
        self.taxonomy_ = self.taxonomy
        self.classes_ = np.array(leaves, dtype=object)
        self.multi_label_ = self.head_.multi_label
        self.n_features_in_ = self.head_.prototypes_.shape[1]
        self.metrics_ = {}
        self.holdout_report_ = None
        return self

    def _finetune(self, embedder: BaseEmbedder, X: Any, targets: _Targets) -> BaseEmbedder:
        from .training import finetune_encoder, remove_with, scratch_dir

        if not isinstance(embedder, Embedder):
            raise InvalidInputError(f"head={self.head!r} needs a sentence-transformers Embedder")
        texts = embedder.prepare(_texts(X))
        y = targets.Y.astype(np.float32) if targets.multi_label else targets.Y
        scratch = scratch_dir()
        try:
            path = finetune_encoder(embedder.location, texts, y, out_dir=scratch / "encoder",
                                    multi_label=targets.multi_label, epochs=self.finetune_epochs,
                                    batch_size=self.finetune_batch_size, learning_rate=self.finetune_learning_rate,
                                    max_seq_length=self.finetune_max_seq_length, random_state=self.random_state,
                                    contrastive=self.head == "contrastive", adapter=self.adapter,
                                    show_progress=self.show_progress, device=embedder.device)
            tuned = Embedder(path, cache=embedder.cache, backend=embedder.backend, batch_size=embedder.batch_size,
                             show_progress=self.show_progress, long_text=embedder.long_text, device=embedder.device)
        except BaseException:  # interrupted or failed: nothing stays behind
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        # The encoder lives as long as the embedder that reads it; save() copies it into the model folder.
        remove_with(tuned, scratch)
        return tuned

    # --- prediction -------------------------------------------------------------------------------
    def _logits(self, X: Any, texts: Any = None) -> np.ndarray:
        """The head's calibrated logits, fused with the lexical channel's when the model kept it."""
        return self._fused(self.head_.logits(self._features(X, texts)), X, texts)

    def _fused(self, z: np.ndarray, X: Any, texts: Any) -> np.ndarray:
        """The head's logits ``z`` of X's rows fused with the lexical channel's when the model kept it."""
        lex = self.__dict__.get("lexical_")
        if lex is None:
            if texts is not None and _numeric_rows(X) is None:
                raise InvalidInputError("texts= is for precomputed embeddings as X; X is already texts")
            return z
        fusion = self.lexical_fusion_
        assert fusion is not None  # kept together with lexical_
        zl = lex.logits(self._words(X, texts, len(z)))
        if self.multi_label_:
            return fusion[:, 0] * z + fusion[:, 1] * zl + fusion[:, 2]
        return fusion[0] * z + fusion[1] * zl

    def _features(self, X: Any, texts: Any = None) -> np.ndarray:
        """What the head reads: X's embeddings, beside the base model's for a ``keep_base`` model (whose
        precomputed vectors, the tuned encoder's, need their texts for the base model to read)."""
        base = self.__dict__.get("base_embedder_")
        if base is None:
            return self._embed(X, self.embedder_)
        numeric = _numeric_rows(X)
        if numeric is None:
            return self._embed(X, _Joined(self.embedder_, base))
        if texts is None:
            raise InvalidInputError("this model also reads its base model's embeddings (keep_base=True): pass the "
                                    "texts — tag(texts), or tag(vectors, texts=texts)")
        words = _given_texts(X, texts)
        if len(words) != len(numeric):
            raise InvalidInputError(f"texts has {len(words)} rows but X has {len(numeric)}")
        tuned_dim = int(self.n_features_in_) - int(base.dim)
        if numeric.ndim != 2 or numeric.shape[1] != tuned_dim:
            raise InvalidInputError(f"X has {numeric.shape[1] if numeric.ndim == 2 else numeric.shape} features, "
                                    f"but this model's encoder gives {tuned_dim}")
        if len(numeric) == 0:
            raise InvalidInputError("X is empty: no rows")
        _check_finite(numeric, "precomputed embeddings")
        frozen = np.asarray(base.encode(words), dtype=np.float32)
        _check_finite(frozen, "the base model's vectors")
        return np.hstack([numeric.astype(np.float32), frozen])

    def _words(self, X: Any, texts: Any, n: int) -> list[str]:
        """The texts the lexical channel reads at prediction: X, or ``texts`` with precomputed vectors."""
        words = self._words_of(X, texts, self.embedder_, n)
        if words is None:
            raise InvalidInputError("this model also reads the words of each text (its lexical channel, "
                                    "lexical_fusion_): pass the texts — tag(texts), or tag(vectors, texts=texts)")
        return words

    def _words_of(self, X: Any, texts: Any, embedder: BaseEmbedder, n: int) -> list[str] | None:
        """X's texts as the embedder reads them; ``texts`` when X is precomputed vectors; None if neither."""
        if _numeric_rows(X) is None:
            if texts is not None:
                raise InvalidInputError("texts= is for precomputed embeddings as X; X is already texts")
            return self._prepared(embedder, _texts(X))
        if texts is None:
            return None
        words = _given_texts(X, texts)
        if len(words) != n:
            raise InvalidInputError(f"texts has {len(words)} rows but X has {n}")
        return self._prepared(embedder, words)

    def _proba(self, X: Any, texts: Any = None) -> np.ndarray:
        return self.head_.probabilities(self._logits(X, texts))

    def predict_proba(self, X: Any, *, texts: Any = None) -> ProbaFrame:
        """Calibrated probabilities, one column per tag (``classes_``; a model fitted on a 0/1 indicator: the
        indicator's columns, in its order, 0 for a column no training row had), one row per input (a Series or
        DataFrame input's index is kept); a :class:`ProbaFrame`, so ``P[:, j]`` works as on an array.
        ``texts``: with precomputed embeddings as ``X``, the texts they came from (models with a lexical
        channel read the words too)."""
        X, texts = _once(X), _once(texts)
        self._check_fitted()
        columns = self.__dict__.get("indicator_columns_")
        if columns is not None:  # the indicator's columns, in its order (scorers pair them with y's columns)
            return ProbaFrame(self._as_indicator(self._proba(X, texts), 0.0), columns=columns, index=_index_of(X))
        return ProbaFrame(self._proba(X, texts), columns=list(self.classes_), index=_index_of(X))

    def _as_indicator(self, M: np.ndarray, absent: float) -> np.ndarray:
        """Per-tag scores (columns in ``classes_`` order) laid out as the indicator ``y`` the model was fitted on:
        its columns in its order, ``absent`` for a column no training row had (a fold of a rare tag)."""
        columns = self.__dict__["indicator_columns_"]
        at = {str(c): j for j, c in enumerate(self.classes_)}
        out = np.full((len(M), len(columns)), absent, dtype=M.dtype)
        for j, name in enumerate(columns):
            if name in at:
                out[:, j] = M[:, at[name]]
        return out

    def predict_log_proba(self, X: Any, *, texts: Any = None) -> ProbaFrame:
        """The natural log of :meth:`predict_proba` (``-inf`` where a probability is 0), as scikit-learn's
        classifiers offer it (``cross_val_predict(method="predict_log_proba")``)."""
        P = self.predict_proba(X, texts=texts)
        with np.errstate(divide="ignore"):
            return ProbaFrame(np.log(P.to_numpy()), columns=P.columns, index=P.index)

    def decision_function(self, X: Any, *, texts: Any = None) -> np.ndarray:
        """Calibrated log-scale scores: (n, classes), or (n,) for two classes as scikit-learn expects
        (positive means ``classes_[1]``); a model fitted on a 0/1 indicator lays them out as ``predict_proba``. ``CalibratedClassifierCV`` and ranking metrics use it."""
        X, texts = _once(X), _once(texts)
        self._check_fitted()
        z = self._logits(X, texts)
        if isinstance(self.head_, MultiClassHead) and z.shape[1] == 2:
            return z[:, 1] - z[:, 0]
        if self.__dict__.get("indicator_columns_") is not None:
            return self._as_indicator(z, -50.0)  # sigmoid(-50) is the 0 predict_proba gives such a column
        return z

    def _decide(self, P: np.ndarray, X: Any = None,
                texts: Any = None) -> tuple[list[list[int]], np.ndarray, np.ndarray, np.ndarray]:
        """Each row's tags, top probability, ``needs_review`` flag and abstention.

        A row below ``min_confidence`` abstains (no tag). A text with no letter (given X's texts, or ``texts``
        beside precomputed vectors) is always flagged for review, and abstains only when the model abstains at
        all (``min_confidence`` > 0): at the default 0 ``predict`` keeps scikit-learn's contract of one label a
        row (``None`` made every scorer fail on data holding an emoji-only row)."""
        self._validate_prediction_params()
        chosen, conf = self.head_.decide(P)
        abstain = conf < self.min_confidence
        review = abstain.copy()
        wordless = self._wordless(X, texts)
        if wordless is not None:
            review |= wordless
            if self.min_confidence > 0:
                abstain |= wordless
        return [[] if a else c for c, a in zip(chosen, abstain)], conf, review, abstain

    def _wordless(self, X: Any, texts: Any) -> np.ndarray | None:
        """Rows whose text, as the embedder reads it, holds no letter (emoji, punctuation or digits only, or
        personal data redacted away): the bundled sentiment model said "neutral" (0.458) to every one of them,
        "negative" to "!!!" and "neutral" at 0.88 to "123", with nothing to tell the guess from an answer. They
        are flagged ``needs_review`` whatever the probability; None without texts (precomputed vectors)."""
        if X is None:
            return None
        if _numeric_rows(X) is None:
            raw = _texts(X)
        elif texts is not None:
            raw = _given_texts(X, texts)
        else:
            return None
        maybe = [i for i, t in enumerate(raw) if not _letterless(t)]  # letters in the raw text: clean to be sure
        out = np.ones(len(raw), dtype=bool)
        if maybe:
            out[maybe] = [_letterless(t) for t in self._prepared(self.embedder_, [raw[i] for i in maybe])]
        return out

    def _names(self, picks: list[int]) -> list[Any]:
        return [self.classes_[c].item() if isinstance(self.classes_[c], np.generic) else self.classes_[c]
                for c in picks]

    def predict(self, X: Any, *, texts: Any = None) -> np.ndarray:
        """Predicted tags: one label per row in ``classes_``'s type (multi-class), or a list of tags per row
        (multi-label, with the taxonomy's ancestors); a model fitted on a 0/1 indicator ``y`` (scikit-learn's
        multi-label representation) answers with a 0/1 matrix of the same columns (``indicator_columns_``). Rows that abstain (``needs_review``, with
        ``min_confidence`` > 0) get ``None`` / an empty list; when one does, a multi-class array is of objects.
        When none does, the array keeps ``classes_``'s type (integer or boolean labels in an array of objects
        are an "unknown" target to scikit-learn's metrics: every scorer failed)."""
        X, texts = _once(X), _once(texts)
        self._check_fitted()
        picks, _, _, _ = self._decide(self._proba(X, texts), X, texts)
        columns = self.__dict__.get("indicator_columns_")
        if self.multi_label_ and columns is not None:  # fitted on a 0/1 indicator: answer with one
            at = {name: j for j, name in enumerate(columns)}
            indicator = np.zeros((len(picks), len(columns)), dtype=np.int64)
            for i, p in enumerate(picks):
                indicator[i, [at[str(t)] for t in self._names(p) if str(t) in at]] = 1
            return indicator
        if self.multi_label_:
            out = np.empty(len(picks), dtype=object)
            out[:] = [self._with_ancestors(self._names(p)) for p in picks]
            return out
        if not all(picks):
            return np.array([self._names(p)[0] if p else None for p in picks], dtype=object)
        return self.classes_[[p[0] for p in picks]]

    def _with_ancestors(self, tags: list[Any]) -> list[Any]:
        if self.taxonomy_ is None or not tags:
            return list(tags)
        extra = [a for a in self.taxonomy_.with_ancestors(tags) if a not in tags]
        return list(tags) + extra

    def tag(self, X: Any, ids: Sequence[Any] | None = None, *, texts: Any = None) -> pd.DataFrame:
        """The batch-friendly output: ``tags`` (with ancestors), ``probabilities`` (JSON of the predicted
        tags' probabilities), ``confidence`` and ``needs_review``; with ``ids``, an ``id`` column first.
        A Series or DataFrame input's index is kept."""
        X, texts, ids = _once(X), _once(texts), _once(ids)
        self._check_fitted()
        if ids is not None:
            ids = _checked_ids(X, ids)
        P = self._proba(X, texts)
        picks, conf, review, _ = self._decide(P, X, texts)
        if ids is not None and len(ids) != len(P):
            raise InvalidInputError(f"ids has {len(ids)} values for {len(P)} rows")
        if ids is not None:  # as in Deduper and read_feedback: a repeated id cannot be joined back to one row
            missing = [i for i, v in enumerate(ids) if _is_missing(v)]
            if missing:  # pandas would turn them into NaN and every int id beside them into a float
                raise InvalidInputError(f"ids at positions {missing[:10]} are missing (None or NaN); every row "
                                        "needs an id to be joined back")
            _refuse_surrogate_ids(ids)
            # compared as read_feedback and the Deduper compare them: 1 and "1" (or " 1") were two ids here, one
            # id in the written output and to the Deduper
            first: dict[Any, Any] = {}
            twice: dict[str, None] = {}
            for i in ids:
                k = _id_key(i)
                if k in first:
                    same = first[k] == i and type(first[k]) is type(i)
                    twice[repr(i) if same else f"{first[k]!r} and {i!r}"] = None
                first.setdefault(k, i)
            if twice:
                raise InvalidInputError(f"ids must be unique; repeated: {', '.join(list(twice)[:5])} (ids are compared as text, "
                                        "as read_feedback reads them: 1, 1.0, ' 1' and '1' are one id)")
        out = pd.DataFrame({
            "tags": [self._with_ancestors(self._names(p)) for p in picks],
            "probabilities": [json.dumps({str(t): round(float(P[i, c]), 4) for t, c in zip(self._names(p), p)})
                              for i, p in enumerate(picks)],
            "confidence": conf.astype(np.float64).round(4),  # float32 0.9713 prints as 0.9713000059127808
            "needs_review": review,
        }, index=_index_of(X))
        if ids is not None:
            out.insert(0, "id", list(ids))
        return out

    def fit_predict(self, X: Any, y: Any = None, **kwargs: Any) -> np.ndarray:
        X, y = _once(X), _once(y)
        return self.fit(X, y, **kwargs).predict(X)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy (subset accuracy for multi-label); abstained rows count as wrong. With ``sample_weight``
        (checked as :meth:`fit` checks it), the weighted mean of the rows' being right, as scikit-learn's
        ``accuracy_score`` weighs them."""
        X, y, sample_weight = _once(X), _once(y), _once(sample_weight)
        # no warning about copies of training rows: scikit-learn scores the training rows on purpose
        # (learning_curve, return_train_score)
        report = self._evaluate(X, y, None, None, stacklevel=3)
        if sample_weight is None:
            return report.accuracy
        w = _checked_sample_weight(sample_weight, X, report.n, scoring=True)
        return float(np.average(report.correct, weights=w))

    # --- evaluation and label quality -------------------------------------------------------------
    def evaluate(self, X: Any, y: Any, *, sep: str | None = None, texts: Any = None) -> EvaluationReport:
        """Accuracy, micro/macro F1, per-tag P/R/F1/support, most confused pairs, abstain rate, and how well
        the probabilities are calibrated (``mean_confidence``, ``calibration_error``).

        With a hierarchical taxonomy, ``per_level`` reports accuracy and F1 at each depth, over the ``n`` rows with
        a tag at that depth (true or predicted); a multi-label model's accuracy there is subset accuracy (every
        tag of the row at that depth right), as its headline accuracy is.

        Warns when tags of ``y`` are unknown to the model (scored as missed), and when rows of ``X`` are copies of
        rows this model was fitted on in this session (their figures overstate how it does on new feedback).

        Raises:
            InvalidInputError: a row of ``y`` without a label, several tags in a row for a multi-class model, or
                ``X`` and ``y`` with one pandas index in two orders (rows are paired by position).
        """
        X, y, texts = _once(X), _once(y), _once(texts)
        report = self._evaluate(X, y, sep, texts, stacklevel=3)
        self._warn_copies_of_training_rows(X, texts)
        return report

    def _evaluate(self, X: Any, y: Any, sep: str | None, texts: Any, *, stacklevel: int) -> EvaluationReport:
        self._check_fitted()
        _refuse_shuffled(X, y)
        rows, _ = _label_rows(y, sep)
        if self.multi_label_ and not all(isinstance(t, str) for r in rows for t in r):
            rows = [[str(t) for t in r] for r in rows]
        if not rows:
            raise InvalidInputError("y is empty: nothing to evaluate")
        empty = [i for i, r in enumerate(rows) if not r]
        if empty:  # scored as wrong, such a row lowers the figures by a miss that is no one's error
            raise InvalidInputError(f"y rows {empty[:10]} have no label: every evaluation row needs its true tag "
                                    "(label them or leave them out)")
        rows = self._without_implied_ancestors(rows)
        several = [i for i, r in enumerate(rows) if len(r) > 1]
        if several and not self.multi_label_:
            raise InvalidInputError(f"this model is multi-class (one tag a row) but y rows {several[:10]} have "
                                    "several tags: it can never get them right; evaluate a multi-label model, or "
                                    "give one tag a row")
        if self.taxonomy_ is not None:
            self.taxonomy_.validate_labels(rows)
        P = self._proba(X, texts)
        if len(rows) != len(P):
            raise InvalidInputError(f"X has {len(P)} rows but y has {len(rows)}")
        picks, _, _, abstained = self._decide(P, X, texts)
        pred = [self._names(p) for p in picks]
        levels = {}
        if self.taxonomy_ is not None and any(self.taxonomy_.depth(t) for t in self.classes_):
            depth = max(self.taxonomy_.depth(t) for t in self.classes_)
            for level in range(depth + 1):
                lt = [sorted({a for t in r if (a := self.taxonomy_.at_level(t, level))}) for r in rows]
                lp = [sorted({a for t in r if (a := self.taxonomy_.at_level(t, level))}) for r in pred]
                levels[level] = (lt, lp)
        report = evaluate_predictions(rows, pred, classes=self._names(list(range(len(self.classes_)))),
                                      multi_label=bool(self.multi_label_), abstained=abstained, levels=levels,
                                      probabilities=P)
        if report.unknown_tags:  # e.g. a renamed tag: every such row is an error the model could not avoid
            unknown = set(report.unknown_tags)
            n_rows = sum(1 for r in rows if unknown.intersection(r))
            warnings.warn(f"{n_rows} of {len(rows)} rows have tags this model was not trained on "
                          f"{quoted_list(report.unknown_tags, limit=10)}: they are scored as missed"
                          f"{self._unknown_hint(report.unknown_tags, sep)}", UserWarning, stacklevel=stacklevel)
        return report

    def _without_implied_ancestors(self, rows: list[list[Any]]) -> list[list[Any]]:
        """True tags as the model scores them: an ancestor given beside its descendant (``area`` with
        ``area.ui``, as ``predict`` and ``tag`` write a row's tags) is implied by it, and unless the model was
        trained on it as a tag of its own it is dropped; it was scored as a tag the model does not know, and every
        row of labels copied from the model's own output counted as wrong."""
        if self.taxonomy_ is None:
            return rows
        known = set(self._names(list(range(len(self.classes_)))))
        out = []
        for r in rows:
            implied = {a for t in r if isinstance(t, str) and t in self.taxonomy_ for a in self.taxonomy_.ancestors(t)}
            out.append([t for t in r if t in known or t not in implied])
        return out

    def _unknown_hint(self, unknown: list[Any], sep: str | None) -> str:
        """Why tags look unknown when they are not: another type (``"0"`` for the tag ``0``) or several tags
        joined by a separator that ``sep`` was not given."""
        known = self._names(list(range(len(self.classes_))))
        by_text = {str(c): c for c in known}
        twins = [u for u in unknown if str(u) in by_text]
        if twins:
            u = twins[0]
            return (f" ({quoted(u)} is a {type(u).__name__}; the model's tag is the {type(by_text[str(u)]).__name__} "
                    f"{by_text[str(u)]!r}: pass labels of the type it was trained on)")
        folded = {_fold_tag_id(c): c for c in known if isinstance(c, str)}
        for u in unknown:  # "Billing" for the model's "billing": scored as missed, the user sees a bad model
            if isinstance(u, str) and _fold_tag_id(u) in folded:
                return (f" ({quoted(u)} differs from the model's tag {quoted(folded[_fold_tag_id(u)])} only in case, "
                        "spacing or Unicode form: write the tags as the model was trained on them)")
        if sep is None and self.multi_label_:  # a multi-class model could not take the tags split either
            for u in unknown:
                for mark in "|,;/":
                    parts = [p.strip() for p in str(u).split(mark)]
                    if len(parts) > 1 and all(p in by_text for p in parts):
                        return f" ({quoted(u)} looks like several tags: pass sep={mark!r})"
        return ""

    def _warn_copies_of_training_rows(self, X: Any, texts: Any) -> None:
        """Warn when evaluation rows are copies of training rows (same text, case and spacing aside): the model
        has seen their answers, and the figures overstate how it does on new feedback. Only a model fitted in
        this session knows its training rows: their fingerprints are not saved (they could confirm whether a
        given text was in the training data)."""
        keys = self.__dict__.get("_train_keys_")
        if keys is None or len(keys) == 0:
            return
        rows = _row_keys(X, texts)
        copies = int(np.isin(rows, keys).sum())
        if copies:
            warnings.warn(f"{copies} of {len(rows)} evaluation rows are copies of training rows (the same text, "
                          "case and spacing aside): the model has seen their answers, so the figures overstate how "
                          "it does on new feedback; evaluate on rows it was not trained on", UserWarning, stacklevel=3)

    def suggest_for_labeling(self, X: Any, n: int = 20, *, texts: Any = None) -> pd.DataFrame:
        """The ``n`` items most worth labelling next: uncertain for the model and diverse among themselves.

        Uncertainty is 1 − (top probability − runner-up) for multi-class, and closeness to the tag
        thresholds for multi-label; among the 5n most uncertain, a farthest-point pass picks diverse ones.
        ``index`` is the row's position in ``X``; a Series or DataFrame ``X`` lends its index labels to the frame.
        The probabilities are :meth:`predict_proba`'s (``predicted`` is what :meth:`predict` says first), so
        precomputed vectors need ``texts=`` beside them when the model reads the words too.
        """
        X, texts = _once(X), _once(texts)
        self._check_fitted()
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
            raise InvalidInputError(f"n must be a whole number of items, 0 or more, got {n!r}")
        n = int(n)
        emb = self._features(X, texts)
        shown = _texts(X) if _numeric_rows(X) is None else (
            _given_texts(X, texts) if texts is not None else [None] * len(emb))
        if n == 0:
            return pd.DataFrame({"index": pd.Series(dtype=np.int64), "text": pd.Series(dtype=object),
                                 "uncertainty": pd.Series(dtype=np.float64), "predicted": pd.Series(dtype=object)})
        # the probabilities predict gives, words included: the head's alone named another tag than predict for
        # 14 of 30 suggested rows of the sample, and were measured against thresholds tuned on the fused ones
        P = self.head_.probabilities(self._fused(self.head_.logits(emb), X, texts))
        if isinstance(self.head_, MultiLabelHead):
            uncertainty = 1 - np.abs(P - self.thresholds_).min(axis=1) * 2
        else:
            top2 = np.sort(P, axis=1)[:, -2:]
            uncertainty = 1 - (top2[:, 1] - top2[:, 0])
        pool = np.argsort(-uncertainty, kind="stable")[: max(n * 5, n)]
        V = emb[pool]  # the candidates, unit length once: cosine distances (a keep_base row is two unit blocks)
        V = V / np.linalg.norm(V, axis=1, keepdims=True).clip(1e-12)
        chosen = [int(pool[0])]
        dist = 1 - V @ V[0]
        taken = np.zeros(len(pool), dtype=bool)
        taken[0] = True
        while len(chosen) < min(n, len(pool)):
            # trade off uncertainty and distance to what is already chosen; never the same row twice (when
            # every score is 0 — all certain, or all duplicates — argmax would return a chosen row again)
            pick = int(np.argmax(np.where(taken, -np.inf, dist * uncertainty[pool])))
            taken[pick] = True
            chosen.append(int(pool[pick]))
            dist = np.minimum(dist, 1 - V @ V[pick])
        # predict's first tag: a multi-label row's most probable tag can be below its own threshold while another
        # passes (predict then names the other), so not P's argmax
        first = [p[0] for p in self.head_.decide(P[chosen])[0]]
        return pd.DataFrame({"index": chosen, "text": [shown[i] for i in chosen],
                             "uncertainty": uncertainty[chosen].round(4),
                             "predicted": self._names(first)}, index=_labels_at(X, chosen))

    def find_label_issues(self, X: Any, y: Any, *, sep: str | None = None, cv: int | None = None,
                          method: str = "auto") -> pd.DataFrame:
        """Training rows that cross-validated predictions say are probably mislabelled.

        Out-of-fold probabilities from this classifier's settings feed confident learning: cleanlab's
        ``find_label_issues`` when cleanlab is installed (``method="auto"``, the ``cleanlab`` extra), else a
        built-in implementation of the same rule (``method="builtin"``); see :mod:`feedback_nlp._label_issues`
        and docs/benchmarks.md for the recall of both. Multi-label rows are judged on every tag, one tag at a
        time (cleanlab's multi-label method): a wrong extra tag and a missing tag are found, ``suggested`` is the
        row's tags with the doubted ones removed or added, and ``p_given`` / ``p_suggested`` are the
        out-of-fold probabilities that the most doubted tag is as given / as suggested. Sorted
        by how much more likely the suggestion is; ``method`` says which implementation ran. The copies of a text
        (case and spacing aside) share a fold, so a mislabelled text that repeats is not vouched for by its own
        copies. A text that repeats
        under different tags (multi-class; case and spacing aside) is listed too: each copy that does not carry the
        tag most of its copies carry, and every copy of a tie, with the other copies' tag suggested. A tag with
        fewer than 2 distinct texts (one row, or copies of one text) cannot be judged out of fold — no fold can
        both train on it and test it — so its rows are not listed (save a conflict between copies), and a
        warning names it; at least 2 tags need 2 distinct texts each. The column
        ``index`` is the row's position in ``X``; the frame's own index is ``X``'s index labels when ``X`` is a
        Series or DataFrame (``train.loc[issues.index]`` gives the rows), else the positions 0…n-1.
        """
        X, y = _once(X), _once(y)
        from ._label_issues import label_issue_mask

        self._validate_params()
        if cv is not None and (isinstance(cv, bool) or not isinstance(cv, numbers.Integral) or cv < 2):
            raise InvalidInputError(f"cv must be a whole number of folds, 2 or more (or None for the model's cv), "
                                    f"got {cv!r}")
        targets = _Targets(y, self.multi_label, sep)
        _refuse_shuffled(X, y)
        embedder = self._default_embedder()
        # out-of-fold models of its own, on the current embedder: a fitted model's width does not bind them (a
        # model fitted before set_params(embedder=...) refused with "this model was trained on 64 dimensions")
        emb = self._embed(X, embedder, for_fitted=False)
        if len(emb) != len(targets.rows):
            raise InvalidInputError(f"X has {len(emb)} rows but y has {len(targets.rows)}")
        texts = _texts(X) if _numeric_rows(X) is None else [None] * len(emb)
        groups = _repeat_groups(X)
        if targets.multi_label:
            return _multi_label_issues(self, X, targets, emb, texts, groups, cv or int(self.cv), method)
        primary = targets.primary
        k = len(targets.classes)
        # folds stratified by the rows' first tags: a multi-label tag that is never a row's first tag has no
        # row to stratify (the fewest rows of a tag was 0 folds, scikit-learn's ValueError), one that is first
        # once has one
        counts = np.bincount(primary, minlength=k)
        unjudged = _unjudged_tags(primary, groups, k)
        if np.count_nonzero(counts) - len(unjudged) < 2:
            raise InvalidInputError("find_label_issues cross-validates: it needs at least 2 tags with 2 or more "
                                    "distinct texts each; tags with fewer: "
                                    f"{quoted_list([targets.classes[j] for j in unjudged], limit=10)}")
        if unjudged:
            warnings.warn(f"tags {quoted_list([targets.classes[j] for j in unjudged], limit=10)} have fewer than 2 "
                          "distinct texts (one row, or copies of one text): no fold can train on them and test them, "
                          "so their rows are not judged (fit refuses a tag with a single example)", UserWarning,
                          stacklevel=2)
        splits = _copies_together(primary, groups, cv or int(self.cv), int(self.random_state))
        if not splits:
            judged = np.setdiff1d(np.flatnonzero(counts), unjudged)  # a one-row tag would cut every tag to 2 folds
            folds = StratifiedKFold(n_splits=max(2, min(cv or int(self.cv), int(counts[judged].min()))),
                                    shuffle=True, random_state=self.random_state)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
                splits = list(folds.split(emb, primary))
        oof = np.zeros((len(primary), k))
        for tr, te in splits:
            m = self._settings().logreg().fit(emb[tr], primary[tr])
            oof[np.ix_(te, m.classes_)] = m.predict_proba(emb[te])
        mask, used = label_issue_mask(primary, oof, method=method)
        mask[np.isin(primary, unjudged)] = False  # tested on folds that never saw their tag: no judgement
        given_p = oof[np.arange(len(primary)), primary]
        best = oof.argmax(axis=1)
        # copies of one text under different tags: at least one is wrong, whatever the model leans to
        for row, other in _conflicting_copies(groups, primary).items():
            if not mask[row]:
                mask[row], best[row] = True, other
        names = targets.classes.tolist()
        out = [{"index": int(i), "text": texts[i], "given": targets.rows[i][0], "suggested": names[best[i]],
                "p_given": float(given_p[i]), "p_suggested": float(oof[i, best[i]])} for i in np.flatnonzero(mask)]
        return _issue_frame(X, out, used)

    # --- persistence ------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, *, metrics: dict[str, Any] | None = None,
             description: str | None = None, training_data: str | None = None) -> Path:
        """Save to a folder: ``config.json`` (parameters, classes, embedder id), ``manifest.json`` (SHA-256 of every file),
        ``weights.npz`` (plain arrays), ``README.md`` (the model card) and, for fine-tuned models,
        ``adapter.npz`` (LoRA updates over the base model, whose weights' SHA-256 the config records) or, with
        ``adapter=None``, ``encoder/`` (the whole fine-tuned embedding model). No pickle: loading never
        executes code.

        The card's metrics are ``metrics`` when given, else the model's own ``metrics_`` (from
        ``fit(..., holdout=...)`` or from the folder it was loaded from), else it says none were recorded.
        The card and ``config.json`` give the parameters the model was trained with: a ``set_params`` after
        ``fit`` changes them only for what prediction reads (``min_confidence``, ``show_progress``).
        ``description`` and ``training_data`` (free text for the card) default to what the folder this model was
        loaded from recorded; pass ``""`` to leave them out. A ``fit`` forgets them.
        """
        self._check_fitted()
        self._validate_prediction_params()
        recorded = self.__dict__.get("_card_text_") or {}
        description = recorded.get("description", "") if description is None else description
        training_data = recorded.get("training_data", "") if training_data is None else training_data
        for name, text in (("description", description), ("training_data", training_data)):
            if not isinstance(text, str):  # a list or a number went onto the card as its repr
                raise InvalidInputError(f"{name} must be text for the model card, got {type(text).__name__}")
        if metrics is not None and not isinstance(metrics, Mapping):
            raise InvalidInputError(f"metrics must be a mapping of names to figures, got {type(metrics).__name__}")
        # NumPy figures (what scikit-learn's metrics return) as plain numbers: JSON would write np.float32 as a
        # string, and the card would leave it out
        metrics = None if metrics is None else {str(k): v.item() if isinstance(v, np.generic) else v
                                                for k, v in metrics.items()}
        folder = prepare_folder(path)
        with saving(folder) as staged:
            self._write_folder(staged, metrics, description, training_data)
        return folder

    def _write_folder(self, path: Path, metrics: dict[str, Any] | None, description: str,
                      training_data: str) -> None:
        """Write the files of a saved model into the empty folder ``path`` (see :meth:`save`)."""
        arrays = dict(self.head_.arrays())
        arrays["classes_"] = self.classes_.astype(str)
        lexical = self.__dict__.get("lexical_")
        if lexical is not None:  # the vocabulary as a string array: loads without pickle
            arrays.update(lexical.arrays())
            arrays["lexical_fusion_"] = np.asarray(self.lexical_fusion_, dtype=np.float32)
            # UTF-8 bytes of the terms joined by newlines (a term never holds one): a fixed-width string array
            # would pad every term to the longest, 4 bytes a character (4.8 MB for 20k terms instead of ~0.3)
            arrays["lexical_vocabulary_"] = np.frombuffer("\n".join(lexical.vocabulary_).encode("utf-8"), dtype=np.uint8)
        np.savez(path / "weights.npz", **arrays)  # type: ignore[arg-type]  # numpy's stub reads ** as allow_pickle
        files = ["weights.npz"]
        encoder_dir, adapter = None, None
        if self.__dict__.get("selected_head_", self.head) in _FINE_TUNED and isinstance(self.embedder_, Embedder):
            from ._adapters import read_adapter

            adapter = read_adapter(self.embedder_.location)
            if Path(self.embedder_.location).resolve() != (path / "encoder").resolve():
                shutil.rmtree(path / "encoder", ignore_errors=True)  # a full encoder saved here before
                (path / "adapter.npz").unlink(missing_ok=True)
            if adapter is not None:
                files.append(adapter.save(path))
            else:
                encoder_dir = path / "encoder"
                if Path(self.embedder_.location).resolve() != encoder_dir.resolve():
                    shutil.copytree(self.embedder_.location, encoder_dir)
                files += [str(f.relative_to(path)) for f in sorted(encoder_dir.rglob("*")) if f.is_file()]
        params = {k: v for k, v in self.get_params(deep=False).items() if k not in ("embedder", "taxonomy")}
        trained = self.__dict__.get("_trained_params_")
        if trained is not None:  # how the weights were trained, whatever set_params changed since; the settings
            # prediction reads (abstaining, progress bars) as they are now, since they apply to the saved model
            params = {**trained, **{k: params[k] for k in _PREDICTION_PARAMS}}
        if params.get("finetune_calibration") == "crossfit":
            # a parameter older versions do not take (their loader passes every saved one to the constructor):
            # written only when it is not the default, which a load restores
            del params["finetune_calibration"]
        self_trained = "bias_" in self.head_.__dict__
        # arrays older versions would ignore (a self-trained bias, the lexical channel): they must refuse the folder
        base = self.__dict__.get("base_embedder_")
        version = (5 if "finetune_calibration" in params else 4 if base is not None else 3 if lexical is not None
                   else 2 if self_trained else 1)
        config = write_config(
            path, "feedback_nlp.TagClassifier", files, format_version=version,
            self_trained_rows=self.__dict__.get("self_trained_rows_"),
            library_version=_library_version(), created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            params=params, multi_label=bool(self.multi_label_), zero_shot=isinstance(self.head_, ZeroShotHead),
            temperature=self.head_.temperature(), classes=list(map(str, self.classes_)),
            classes_dtype=self.classes_.dtype.name if self.classes_.dtype != object else "str",
            embedder={"model_id": self.embedder_.model_id, "base_model_id": self.embedder_.base_model_id,
                      "dim": int(self.n_features_in_), "fine_tuned": encoder_dir is not None or adapter is not None,
                      **({"adapter": adapter.meta()} if adapter is not None else {}),
                      **({"keep_base": base.base_model_id} if base is not None else {})},
            taxonomy=self.taxonomy_.to_dict() if self.taxonomy_ is not None else None,
            metrics=metrics if metrics is not None else dict(self.__dict__.get("metrics_") or {}),
            description=description, training_data=training_data,
            selected_head=self.__dict__.get("selected_head_"), head_selection=self.__dict__.get("head_selection_"),
            calibration=self.__dict__.get("calibration_"),
            sample_weight=self.__dict__.get("_sample_weight_"),
            indicator_columns=self.__dict__.get("indicator_columns_"),
            lexical=None if lexical is None else {"terms": len(lexical.vocabulary_),
                                                  "fusion": np.round(np.asarray(self.lexical_fusion_), 4).tolist()},
        )
        from .model_card import render_model_card

        (path / "README.md").write_text(render_model_card(config), encoding="utf-8")
        write_manifest(path)  # the card too: every file of the folder is covered

    @classmethod
    def load(cls, path: str | os.PathLike, *, embedder: BaseEmbedder | None = None,
             backend: str | None = None) -> TagClassifier:
        """Load a saved model folder, or a bundled model by name (see :func:`bundled_models`).

        ``backend`` picks the numeric backend of the embedder built for it (default ``auto``); ignored when
        ``embedder`` is given.

        Raises:
            ModelNotFoundError: no such folder or bundled name.
            IntegrityError: a file was modified after saving (checksum mismatch) or is missing.
            ModelMismatchError: ``embedder`` is not the embedding model the tags were trained with, or (an adapter
                model) the base model found is not the one whose weights' SHA-256 the adapter records.

        An adapter model (``adapter="lora"``, the default of the fine-tuned heads) is merged over ``embedder``'s
        model when one is given, else over the default model, after its weights' hash is checked; the merged
        encoder lives in a temporary folder removed with the classifier. The classifier then embeds texts with
        its own ``embedder_``: pass it texts, not vectors of the base ``embedder``. A ``keep_base`` model keeps
        ``embedder`` (else the default model), checked against the saved base model id, as ``base_embedder_``.
        """
        if not isinstance(path, (str, os.PathLike)):
            raise InvalidInputError(f"path must be a model folder or a bundled model's name, got {type(path).__name__}")
        folder = Path(path).expanduser()
        if not (folder / "config.json").exists():
            named = bundled_models().get(str(path))
            if named is None:
                raise ModelNotFoundError(f"no tag model at {path!s} (no config.json) and no bundled model of that "
                                         f"name; bundled: {sorted(bundled_models())}")
            folder = named

        def read(config: dict[str, Any]) -> TagClassifier:
            version = config.get("format_version", 0)
            if not isinstance(version, int) or isinstance(version, bool):  # "9" or None was a bare TypeError
                raise IntegrityError(f"{folder}/config.json has the format version {quoted(version)}, not a whole "
                                     "number")
            if version > FORMAT_VERSION:
                raise IntegrityError(f"{folder} was saved by a newer feedback_nlp (format {config['format_version']})")
            return cls._from_folder(folder, config, embedder, backend)

        with loading(folder):  # files that pass the manifest but are not what a save writes: one IntegrityError
            # config and weights of one save, also while another process saves the folder (they could mix)
            return read_saved(folder, "feedback_nlp.TagClassifier", read)[1]

    @classmethod
    def _from_folder(cls, folder: Path, config: dict[str, Any], embedder: BaseEmbedder | None,
                     backend: str | None) -> TagClassifier:
        info = config["embedder"]
        base = None
        if info.get("keep_base"):  # the head reads the frozen base model's vectors too: keep that model
            base = embedder if embedder is not None else Embedder(backend=backend)
            check_embedder(info["keep_base"], base, "the tag model's base channel (keep_base)")
            embedder = base if info.get("adapter") else None
        if info.get("adapter"):  # LoRA updates over a base model checked by its weights' SHA-256
            from ._adapters import adapted_embedder

            embedder = adapted_embedder(folder, info["adapter"], embedder, backend)
        elif embedder is None:
            if info.get("fine_tuned"):
                _check_encoder_folder(folder / "encoder")
            embedder = Embedder(folder / "encoder" if info.get("fine_tuned") else None, backend=backend)
        check_embedder(info["base_model_id"], embedder, "the tag model")
        params = dict(config["params"])
        # parameters a folder predates say what its model did, not today's defaults (a save writes every one):
        # no word channel, and a fine-tuned encoder saved whole
        params.setdefault("lexical", False)
        if info.get("fine_tuned") and not info.get("adapter"):
            params.setdefault("adapter", None)
        clf = cls(embedder=embedder, taxonomy=Taxonomy.from_dict(config["taxonomy"]) if config["taxonomy"] else None,
                  **params)
        try:
            clf._validate_params()  # a config edited to min_confidence=7 would send every item to review
        except InvalidInputError as exc:
            raise ValueError(f"config.json: {exc}") from None  # the folder's fault: an IntegrityError
        clf._trained_params_ = {k: v for k, v in clf.get_params(deep=False).items()
                                if k not in ("embedder", "taxonomy")}
        arrays = read_npz(folder / "weights.npz")
        dtype = config.get("classes_dtype", "str")  # models saved before labels kept their type: strings
        clf.classes_ = _saved_classes(arrays["classes_"], dtype)
        clf.head_ = head_from_arrays(arrays, multi_label=bool(config["multi_label"]),
                                     zero_shot=bool(config["zero_shot"]), temperature=float(config["temperature"]))
        clf.lexical_, clf.lexical_fusion_ = None, None
        if "lexical_fusion_" in arrays:
            from ._lexical import LexicalModel

            clf.lexical_ = LexicalModel.from_arrays(arrays, _vocabulary(arrays["lexical_vocabulary_"]),
                                                    multi_label=bool(config["multi_label"]))
            clf.lexical_fusion_ = np.asarray(arrays["lexical_fusion_"], dtype=np.float32)
        clf.embedder_ = embedder
        clf.base_embedder_ = base
        clf.taxonomy_ = clf.taxonomy
        clf.multi_label_ = bool(config["multi_label"])
        clf.n_features_in_ = int(info["dim"])
        clf.metrics_ = config.get("metrics", {})
        # what the card said of the model in words: a re-save (after a set_params) wrote "Not recorded"
        clf._card_text_ = {k: config[k] for k in ("description", "training_data") if isinstance(config.get(k), str)}
        clf.holdout_report_ = None
        clf.calibration_ = config.get("calibration")
        if isinstance(config.get("sample_weight"), dict):  # trained with weights: the card says so again
            clf._sample_weight_ = config["sample_weight"]
        if config.get("self_trained_rows") is not None:
            clf.self_trained_rows_ = int(config["self_trained_rows"])
        columns = config.get("indicator_columns")
        if columns is not None:  # fitted on a 0/1 indicator: predict answers with one
            if (not isinstance(columns, list) or not all(isinstance(c, str) for c in columns)
                    or len(set(columns)) != len(columns) or not set(map(str, clf.classes_)) <= set(columns)):
                raise ValueError("indicator_columns must list the tag of every indicator column once, every "
                                 "class among them")
            clf.indicator_columns_ = columns
        if config.get("head_selection"):  # head="auto": what was measured, and which head it chose
            clf.head_selection_ = config["head_selection"]
            clf.selected_head_ = str(config.get("selected_head") or "logreg")
        _check_loaded(clf)
        return clf


def _check_loaded(clf: TagClassifier) -> None:
    """ValueError (an IntegrityError inside ``loading``) when the loaded arrays cannot be the model's: shapes
    that disagree with the classes and the embedding width, or values that are not finite."""
    k, dim, head = len(clf.classes_), int(clf.n_features_in_), clf.head_
    expected = {"coef_": (k, dim), "intercept_": (k,), "platt_": (k, 2), "thresholds_": (k,), "prototypes_": (k, dim),
                "groups_": (k,), "bias_": (k,)}
    for name, shape in expected.items():
        value = head.__dict__.get(name)
        if value is None:
            continue
        value = np.asarray(value)
        if value.shape != shape:
            raise ValueError(f"{name} has shape {value.shape}, expected {shape} ({k} tags, {dim} features)")
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise ValueError(f"{name} holds values that are not finite")
    if not (np.isfinite(head.temperature()) and head.temperature() > 0):
        raise ValueError(f"the temperature {head.temperature()!r} is not a positive number")
    lexical = clf.__dict__.get("lexical_")
    if lexical is not None:
        fusion = np.asarray(clf.lexical_fusion_)
        if lexical.coef_.shape[0] != k or fusion.shape not in ((2,), (k, 3)) or not np.isfinite(fusion).all():
            raise ValueError(f"the lexical channel has {lexical.coef_.shape[0]} rows of weights and a fusion of shape "
                             f"{fusion.shape} for {k} tags")


# What a saved encoder/ may not hold: weights in pickle formats (loading them runs the pickle's code unless the
# loader refuses it) and Python files. A save writes safetensors, JSON and tokenizer files only.
_UNSAFE_ENCODER_FILES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".py", ".pyc", ".so")


def _check_encoder_folder(encoder: Path) -> None:
    """IntegrityError when a saved fine-tuned encoder holds what a save never writes and what would run code on
    load: pickle-format weights or Python files, a module of ``modules.json`` outside sentence-transformers, or
    custom model code named by ``auto_map``. The manifest proves only that the folder is unchanged since its
    manifest was written, not who wrote it; these checks do not lean on the loaders' own defaults."""
    for f in sorted(encoder.rglob("*")):
        if f.suffix.lower() in _UNSAFE_ENCODER_FILES:
            raise IntegrityError(f"{f} is not a file a saved model holds (pickle weights or code run on load); "
                                 "refusing to load it")
    try:
        modules = json.loads((encoder / "modules.json").read_text(encoding="utf-8"))
        config = json.loads((encoder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IntegrityError(f"{encoder} is not a sentence-transformers folder: {exc}") from None
    types = [m.get("type") if isinstance(m, dict) else m for m in modules] if isinstance(modules, list) else [modules]
    foreign = [t for t in types if not (isinstance(t, str) and t.startswith("sentence_transformers."))]
    if foreign:
        raise IntegrityError(f"{encoder / 'modules.json'} names the module {quoted(foreign[0])}, which is not part of "
                             "sentence-transformers (importing it would run its code); refusing to load it")
    outside = [m.get("path") for m in modules if isinstance(m, dict) and not _inside(m.get("path", ""))] \
        if isinstance(modules, list) else []
    if outside:  # "../../other-model" or "/abs": a module (its weights, its config) read from outside the folder
        raise IntegrityError(f"{encoder / 'modules.json'} names the module folder {quoted(outside[0])}, which is not a "
                             "plain relative path inside the encoder; refusing to load it")
    if not isinstance(config, dict) or "auto_map" in config:
        raise IntegrityError(f"{encoder / 'config.json'} names custom model code (auto_map); refusing to load it")


def _inside(path: object) -> bool:
    """Whether a module folder of ``modules.json`` is ``""`` (the encoder itself) or a plain relative path under it."""
    if not isinstance(path, str) or "\\" in path or ":" in path or "\x00" in path:
        return False
    parts = PurePosixPath(path).parts
    return not PurePosixPath(path).is_absolute() and ".." not in parts


def _vocabulary(stored: np.ndarray) -> list[str]:
    """The lexical channel's terms from ``weights.npz``: UTF-8 bytes joined by newlines (or, as first saved, a
    string array)."""
    if stored.dtype.kind == "U":
        return [str(t) for t in stored.tolist()]
    try:
        text = stored.astype(np.uint8).tobytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IntegrityError(f"the lexical vocabulary is not UTF-8: {exc}") from None
    return text.split("\n") if text else []


def _refuse_indistinct_tags(taxonomy: Taxonomy, leaves: list[str], facets: dict[str, list[str]]) -> None:
    """Zero-shot tells tags apart by their words only: two tags of one facet with the same name, description
    and examples (case and spacing aside) get the same prototype, and the second could never be chosen."""
    facet_of = {leaf: root for root, ls in facets.items() for leaf in ls}
    seen: dict[tuple[Any, ...], str] = {}
    for t in leaves:
        tag = taxonomy[t]
        words = tuple(_copy_key(w) for w in (tag.name, tag.description, *tag.examples))
        key = (facet_of.get(t, ""), *words)
        if key in seen:
            raise InvalidInputError(f"tags {quoted(seen[key])} and {quoted(t)} have the same name, description and "
                                    "examples (case and spacing aside): zero-shot could never tell them apart and "
                                    "would always pick the first; give each its own description or examples")
        seen[key] = t


def _refuse_lone_choices(leaves: list[str], facets: dict[str, list[str]]) -> None:
    """Zero-shot picks one tag per facet (tags outside any facet form one group): a group of one tag has
    nothing to choose from, and every row got that tag with probability 1.0."""
    facet_of = {leaf: root for root, ls in facets.items() for leaf in ls}
    groups: dict[str, list[str]] = {}
    for t in leaves:
        groups.setdefault(facet_of.get(t, ""), []).append(t)
    for root, tags in groups.items():
        if len(tags) == 1:
            where = (f"facet {quoted(root)} has one tag only ({quoted(tags[0])})" if root else
                     f"{quoted(tags[0])} is the only top-level tag outside the facets {quoted_list(sorted(facets))}")
            raise InvalidInputError(f"{where}: zero-shot picks one tag per facet, so every row would get it with "
                                    "probability 1.0; give it a sibling tag, or move it under a facet")


def _tag_phrasings(tag: Any) -> list[str]:
    """Ways of saying a tag that zero-shot averages: its name, name + description, the description alone
    and a sentence template (duplicates dropped)."""
    texts = [tag.name, tag.prompt(), tag.description, f"This message is about {tag.name}."]
    return [t for t in dict.fromkeys(texts) if t]


def _library_version() -> str:
    from . import __version__

    return __version__
