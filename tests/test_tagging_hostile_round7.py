"""Odd inputs to the tag model's Python API (seventh round): one-shot iterators, unordered containers, bad
``n`` / ``cv`` / ``sep`` values and missing ids. Each case failed (or silently misbehaved) before its fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from feedback_nlp import Embedder
from feedback_nlp.errors import InvalidInputError
from feedback_nlp.tagging import TagClassifier

TEXTS = ["crash now", "crash again", "it crashes", "app crashed", "add dark mode", "add export", "add a button",
         "add sso", "how do i log in", "where is settings", "how to export", "what is sso"]
LABELS = ["bug"] * 4 + ["feature"] * 4 + ["question"] * 4


@pytest.fixture
def fitted(hash_embedder):
    return TagClassifier(hash_embedder, cv=2).fit(TEXTS, LABELS)


def test_generators_are_read_once_not_seen_as_empty(hash_embedder, fitted):
    # was: "X is empty: no texts" — the row count consumed the generator before the embedder saw it
    model = TagClassifier(hash_embedder, cv=2).fit((t for t in TEXTS), (label for label in LABELS))
    assert list(model.predict(TEXTS)) == list(fitted.predict(TEXTS))
    assert list(fitted.predict(iter(TEXTS))) == list(fitted.predict(TEXTS))
    assert fitted.tag(t for t in TEXTS[:3])["tags"].tolist() == fitted.tag(TEXTS[:3])["tags"].tolist()
    assert fitted.evaluate(iter(TEXTS), iter(LABELS)).accuracy == fitted.evaluate(TEXTS, LABELS).accuracy
    vectors = hash_embedder.encode(TEXTS)
    assert np.allclose(fitted.predict_proba(iter(vectors), texts=iter(TEXTS)).to_numpy(),
                       fitted.predict_proba(vectors, texts=TEXTS).to_numpy())
    assert len(fitted.suggest_for_labeling(map(str.upper, TEXTS), n=3)) == 3


@pytest.mark.parametrize("container", [set, frozenset, dict.fromkeys])
def test_unordered_texts_are_refused(hash_embedder, fitted, container):
    # was: a set of texts trained against a list of labels, rows paired at random
    with pytest.raises(InvalidInputError, match="X is a"):
        TagClassifier(hash_embedder, cv=2).fit(container(TEXTS), LABELS)
    with pytest.raises(InvalidInputError, match="X is a"):
        fitted.predict(container(TEXTS))


def test_unordered_labels_are_refused(hash_embedder):
    with pytest.raises(InvalidInputError, match="y is a set, which has no order"):
        TagClassifier(hash_embedder, cv=2).fit(TEXTS, set(LABELS))
    with pytest.raises(InvalidInputError, match="y is a dict"):
        TagClassifier(hash_embedder, cv=2).fit(TEXTS, dict(enumerate(LABELS)))


@pytest.mark.parametrize("texts", [{"a", "b"}, frozenset({"a"})])
def test_embedder_refuses_unordered_texts(texts):
    with pytest.raises(InvalidInputError, match="ordered sequence"):
        Embedder().encode(texts)  # refused before the model loads


@pytest.mark.parametrize("n", [-1, 1.5, True, "3", None])
def test_suggest_for_labeling_checks_n(fitted, n):
    # was: IndexError for 0, TypeError for 1.5, one row for -1 and for True
    with pytest.raises(InvalidInputError, match="n must be a whole number"):
        fitted.suggest_for_labeling(TEXTS, n=n)


def test_suggest_for_labeling_zero_is_an_empty_table(fitted):
    out = fitted.suggest_for_labeling(TEXTS, n=0)
    assert out.empty and list(out.columns) == ["index", "text", "uncertainty", "predicted"]
    assert len(fitted.suggest_for_labeling(TEXTS, n=np.int64(2))) == 2


@pytest.mark.parametrize("cv", [0, 1, -3, 2.5, True])
def test_find_label_issues_checks_cv(fitted, cv):
    # was: scikit-learn's ValueError for 1, and 0 silently meant "the model's cv"
    with pytest.raises(InvalidInputError, match="cv must be a whole number of folds"):
        fitted.find_label_issues(TEXTS, LABELS, cv=cv)


@pytest.mark.parametrize("sep", ["", 5])
def test_empty_separator_is_refused(hash_embedder, sep):
    # was: "tags ['bug|question', ...] have a single example" — an empty sep split nothing
    labels = ["bug|question" if i % 4 == 0 else label for i, label in enumerate(LABELS)]
    with pytest.raises(InvalidInputError, match="sep must be a non-empty string"):
        TagClassifier(hash_embedder, cv=2).fit(TEXTS, labels, sep=sep)


@pytest.mark.parametrize("missing", [None, float("nan"), pd.NA])
def test_missing_ids_are_refused_not_turned_into_nan(fitted, missing):
    # was: ids [None, 2] came back as [nan, 2.0] — every integer id beside a missing one became a float
    with pytest.raises(InvalidInputError, match=r"ids at positions \[0\] are missing"):
        fitted.tag(TEXTS[:2], ids=[missing, 2])
    assert fitted.tag(TEXTS[:2], ids=[1, 2])["id"].tolist() == [1, 2]


def test_save_and_load_expand_the_home_folder(fitted, hash_embedder, tmp_path, monkeypatch):
    # was: save("~/models/x") made a folder literally named "~" in the working directory
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    saved = fitted.save("~/models/tags")
    assert saved == tmp_path / "home" / "models" / "tags" and not (tmp_path / "~").exists()
    assert list(TagClassifier.load("~/models/tags", embedder=hash_embedder).predict(TEXTS)) == list(fitted.predict(TEXTS))


def test_deduper_save_and_load_expand_the_home_folder(hash_embedder, tmp_path, monkeypatch):
    from feedback_nlp import Deduper

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    d = Deduper(hash_embedder).fit(TEXTS, ids=list(range(len(TEXTS))))
    d.save("~/idx")
    assert (tmp_path / "home" / "idx").is_dir() and not (tmp_path / "~").exists()
    assert Deduper.load("~/idx", embedder=hash_embedder).ids_ == d.ids_


@pytest.mark.parametrize(("y_true", "y_pred", "accuracy", "macro_f1"), [
    (["bug", "feature"], ["bug", "bug"], 0.5, 1 / 3),        # was: scored letter by letter ({'b', 'u', 'g'})
    (["bug", "feature"], ["bug", None], 0.5, 0.5),           # an abstention (predict's None): was a TypeError
    ([["bug"], ["feature"]], [["bug"], ["bug"]], 0.5, 1 / 3),  # lists of tags: as before
    ([1, 2], [1, 1], 0.5, 1 / 3),
])
def test_evaluate_predictions_reads_plain_labels_as_one_tag(y_true, y_pred, accuracy, macro_f1):
    from feedback_nlp.evaluation import evaluate_predictions

    classes = sorted({t for row in y_true for t in (row if isinstance(row, list) else [row])})
    r = evaluate_predictions(y_true, y_pred, classes=classes)
    assert r.accuracy == pytest.approx(accuracy) and r.macro_f1 == pytest.approx(macro_f1)
    assert sorted(r.per_tag["tag"]) == classes


def test_an_empty_backlog_is_named_as_such(hash_embedder):
    # was: "X is empty: no texts", though X held twelve
    with pytest.raises(InvalidInputError, match="unlabelled is empty"):
        TagClassifier(hash_embedder, cv=2, self_train=True).fit(TEXTS, LABELS, unlabelled=[])


def test_confidence_is_written_as_rounded(fitted, tmp_path):
    # was: float32 confidences, which a CSV output printed as 0.9713000059127808 beside "0.9713" in probabilities
    out = fitted.tag(TEXTS)
    assert out["confidence"].dtype == np.float64
    path = tmp_path / "t.csv"
    out.to_csv(path, index=False)
    written = pd.read_csv(path, dtype=str)["confidence"]
    assert all(len(v.split(".")[-1]) <= 4 for v in written), written.tolist()


# --- honest held-out figures when texts repeat --------------------------------------------------------------

def test_holdout_split_keeps_the_copies_of_a_text_on_one_side():
    from feedback_nlp.tagging import _holdout_split

    rng = np.random.default_rng(0)
    primary = np.repeat([0, 1, 2], 40)
    groups = rng.integers(0, 30, size=len(primary)) + 100 * primary  # many repeats within each tag
    groups[5] = groups[50]  # and one text labelled with two tags
    train, test = _holdout_split(primary, 0.25, 0, groups)
    assert not set(groups[train]) & set(groups[test])
    assert sorted([*train, *test]) == list(range(len(primary)))
    assert all(np.sum(primary[train] == c) >= 2 for c in range(3)) and len(test) > 0


def test_holdout_split_without_repeats_is_the_plain_stratified_split():
    from feedback_nlp.tagging import _holdout_split

    primary = np.repeat([0, 1, 2, 3], [5, 9, 13, 30])
    plain = _holdout_split(primary, 0.2, 7)
    grouped = _holdout_split(primary, 0.2, 7, np.arange(len(primary)))
    assert all(np.array_equal(a, b) for a, b in zip(plain, grouped))


def test_repeated_texts_do_not_leak_into_the_held_out_figures(hash_embedder):
    # was: every row twice gave a perfect held-out score (each held-out text had its copy in training)
    texts = [f"{w} {i}" for w in ("crash", "add", "how") for i in range(6)] * 2
    labels = [t.split()[0] for t in texts]
    model = TagClassifier(hash_embedder, cv=2).fit(texts, labels, holdout=0.25)
    assert "copies of a repeated text kept on one side" in model.metrics_["evaluation"]
    from feedback_nlp.tagging import _holdout_split, _repeat_groups

    groups = _repeat_groups(texts)
    primary = np.unique(labels, return_inverse=True)[1]
    train, test = _holdout_split(primary, 0.25, 0, groups)
    assert not {texts[i] for i in train} & {texts[i] for i in test}
    assert "copies" not in TagClassifier(hash_embedder, cv=2).fit(TEXTS, LABELS, holdout=0.25).metrics_["evaluation"]


def test_repeat_groups_read_case_spacing_and_vectors():
    from feedback_nlp.tagging import _repeat_groups

    g = _repeat_groups(["Crash  now", "crash now", "other"])
    assert g is not None and g[0] == g[1] != g[2]
    assert _repeat_groups(["a", "b"]) is None
    v = np.eye(3)[[0, 1, 0]]
    g = _repeat_groups(v)
    assert g is not None and g[0] == g[2] != g[1]


def test_one_text_with_two_tags_warns_once(hash_embedder):
    texts, labels = [*TEXTS, TEXTS[0]], [*LABELS, "feature"]
    with pytest.warns(UserWarning, match="1 text") as caught:
        TagClassifier(hash_embedder, cv=2).fit(texts, labels, holdout=0.25)
    assert sum("different tags" in str(w.message) for w in caught) == 1  # not again by the held-out copy


def test_repeats_with_the_same_tag_do_not_warn(hash_embedder):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TagClassifier(hash_embedder, cv=2).fit([*TEXTS, *TEXTS], [*LABELS, *LABELS])


# --- the embedder's settings --------------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "message"), [
    ({"batch_size": 1.5}, "batch_size must be a whole number"),       # was: accepted
    ({"batch_size": True}, "batch_size must be a whole number"),
    ({"max_batch_tokens": 2.5}, "max_batch_tokens must be a whole number"),
    ({"normalize": "no"}, "normalize must be True or False"),         # was: "no" read as True
    ({"clean": "false"}, "clean must be True or False"),
    ({"show_progress": 1}, "show_progress must be True or False"),
    ({"device": "cuda"}, "not available on this machine"),            # was: torch's bare AssertionError
    ({"device": "tpu-ish"}, "not a device name"),
    ({"device": ""}, "device must be a name"),
])
def test_embedder_settings_are_checked(kwargs, message):
    import torch

    if kwargs.get("device") == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(InvalidInputError, match=message):
        Embedder(**kwargs)


def test_an_empty_model_name_is_not_the_working_directory(monkeypatch):
    from feedback_nlp.errors import ModelNotFoundError

    # was: "no weight file ... in /current/dir": Path("") is the working directory
    with pytest.raises(ModelNotFoundError, match="empty name"):
        Embedder(model="")
    with pytest.raises(ModelNotFoundError, match="empty name"):
        Embedder(model="   ")
    monkeypatch.setenv("FEEDBACK_NLP_MODEL", "  ")  # a blank variable is unset: the bundled model
    assert Embedder().name == "all-MiniLM-L6-v2"


def test_cli_train_reads_a_trailing_tab_in_a_label_as_the_model_does(tmp_path, hashed_cli, hash_embedder):
    # was: refused as "a control character", while the model strips white space around every tag
    from feedback_nlp.cli import main

    data = tmp_path / "l.csv"
    pd.DataFrame({"text": TEXTS * 2, "label": [f"{t}\t" if i % 3 == 0 else t for i, t in enumerate(LABELS * 2)]}
                 ).to_csv(data, index=False)
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "m"), "-q"]) == 0
    assert sorted(TagClassifier.load(tmp_path / "m", embedder=hash_embedder).classes_) == ["bug", "feature", "question"]
    inner = tmp_path / "inner.csv"
    pd.DataFrame({"text": TEXTS * 2, "label": ["ques\ttion" if t == "question" else t for t in LABELS * 2]}
                 ).to_csv(inner, index=False)
    assert main(["train", "--data", str(inner), "--out", str(tmp_path / "m2"), "-q"]) != 0  # inside: still refused


@pytest.mark.parametrize("as_sparse", [False, True])
def test_out_of_fold_scores_do_not_see_a_copy_of_the_row(as_sparse):
    # random labels: an honest out-of-fold score cannot beat chance; with each row twice it used to be ~perfect,
    # because the copy sat in the training folds (and the temperature fitted on it trusted the model too much)
    from scipy import sparse

    from feedback_nlp._heads import FitSettings, out_of_fold_logits

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 300))  # more dimensions than rows: a linear model memorises what it trains on
    y = rng.integers(0, 2, size=60)
    X2, y2 = np.vstack([X, X]), np.r_[y, y]
    oof = out_of_fold_logits(sparse.csr_matrix(X2) if as_sparse else X2, y2, FitSettings(C=10.0, cv=5))
    assert oof is not None
    assert (oof.argmax(axis=1) == y2).mean() < 0.7  # was 0.90


def test_out_of_fold_splits_without_repeats_are_unchanged():
    from sklearn.model_selection import StratifiedKFold

    from feedback_nlp._heads import FitSettings

    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(60, 5)), np.repeat([0, 1, 2], 20)
    got = list(FitSettings(cv=4, random_state=3).folds(y, X))
    want = list(StratifiedKFold(n_splits=4, shuffle=True, random_state=3).split(X, y))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(got, want))


def test_cli_eval_takes_the_multi_label_flag_train_took(tmp_path, hashed_cli, hash_embedder, capsys, monkeypatch):
    # was: "unrecognized arguments: --multi-label" for the flag the same user had just given to train
    from feedback_nlp.cli import main

    load = TagClassifier.load.__func__  # eval loads with the default embedder; these models were hashed
    monkeypatch.setattr(TagClassifier, "load", classmethod(lambda cls, path, **kw: load(cls, path,
                                                                                         embedder=hash_embedder)))

    data = tmp_path / "ml.csv"
    pd.DataFrame({"text": TEXTS * 2, "label": [f"{t}|{t}x" if t == "bug" else t for t in LABELS * 2]}
                 ).to_csv(data, index=False)
    assert main(["train", "--data", str(data), "--multi-label", "--out", str(tmp_path / "ml"), "-q"]) == 0
    assert main(["eval", "--model", str(tmp_path / "ml"), "--data", str(data), "--multi-label", "-q"]) == 0
    single = tmp_path / "one.csv"
    pd.DataFrame({"text": TEXTS * 2, "label": LABELS * 2}).to_csv(single, index=False)
    assert main(["train", "--data", str(single), "--out", str(tmp_path / "mc"), "-q"]) == 0
    assert main(["eval", "--model", str(tmp_path / "mc"), "--data", str(single), "--multi-label"]) == 2
    assert "is multi-class" in capsys.readouterr().err
