"""The data scientist's workflow under odd and hostile use (ninth round, helper a): scikit-learn's machinery
around TagClassifier, honest evaluation, labels of odd types, zero-shot taxonomies, the model card and saving.
Each test failed (or showed the silent misbehaviour it names) before its fix."""

from __future__ import annotations

import copy
import gc
import json
import math
import os
import pickle
import shutil
import warnings
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import BaggingClassifier
from sklearn.model_selection import KFold, cross_val_predict, learning_curve

from feedback_nlp.errors import IntegrityError, InvalidInputError, TaxonomyError
from feedback_nlp.tagging import TagClassifier
from feedback_nlp.taxonomy import Taxonomy

TEXTS = ["crash now", "crash again", "it crashes", "app crashed", "crash on save", "crash at login",
         "add dark mode", "add export", "add a button", "add sso", "add a theme", "add more filters",
         "how do i log in", "where is settings", "how to export", "what is sso", "how to reset", "where is help"]
LABELS = ["bug"] * 6 + ["feature"] * 6 + ["question"] * 6
NEW = ["the app crashed twice", "please add a calendar", "how can i pay"]  # rows no model here trained on


@pytest.fixture
def fitted(hash_embedder):
    return TagClassifier(hash_embedder, cv=2).fit(TEXTS, LABELS)


# --- scikit-learn's machinery -----------------------------------------------------------------------

@pytest.mark.parametrize("method", ["predict_proba", "predict_log_proba"])
def test_cross_val_predict_pads_the_class_a_fold_did_not_train_on(hash_embedder, method):
    # was: AttributeError 'ProbaFrame' object has no attribute 'dtype' (predict_proba), and no predict_log_proba
    folds = KFold(3)  # the rows are sorted by tag: each training fold lacks one tag
    with pytest.warns(RuntimeWarning, match="Number of classes in training fold"):
        out = cross_val_predict(TagClassifier(hash_embedder, cv=2), np.array(TEXTS, dtype=object), LABELS, cv=folds,
                                method=method)
    assert out.shape == (18, 3)
    unseen = {0: 0, 6: 1, 12: 2}  # the first row of each test fold, and the tag its training fold lacked
    for row, col in unseen.items():
        assert out[row, col] == (0 if method == "predict_proba" else np.finfo(out.dtype).min)


def test_predict_log_proba_is_the_log_of_predict_proba(fitted):
    P = fitted.predict_proba(NEW)
    logP = fitted.predict_log_proba(pd.Series(NEW, index=[7, 8, 9]))
    assert list(logP.columns) == list(fitted.classes_) and list(logP.index) == [7, 8, 9]
    assert np.allclose(np.exp(logP.to_numpy()), P.to_numpy())


def test_a_proba_frame_with_a_column_of_text_still_has_a_dtype(fitted):
    assert fitted.predict_proba(NEW).dtype == np.float32
    assert fitted.predict_proba(NEW).assign(note="x").dtype == object  # was: TypeError from np.result_type


@pytest.mark.parametrize("dtype", [object, str])
def test_a_column_of_texts_as_a_2d_array_reads_like_a_one_column_frame(hash_embedder, fitted, dtype):
    # was: "X must be texts (1-D) or embeddings (2-D numbers), got a 2-D object array" while a one-column
    # DataFrame of the same texts was read; BaggingClassifier and ColumnTransformer hand on such 2-D arrays
    column = np.array(TEXTS, dtype=dtype).reshape(-1, 1)
    model = TagClassifier(hash_embedder, cv=2).fit(column, LABELS)
    assert np.allclose(model.predict_proba(column[:5]).to_numpy(), fitted.predict_proba(TEXTS[:5]).to_numpy())
    bagged = BaggingClassifier(TagClassifier(hash_embedder, cv=2), n_estimators=2, random_state=0).fit(column, LABELS)
    assert set(bagged.predict(column)) <= set(LABELS)


def test_a_2d_array_of_several_text_columns_is_still_refused(fitted):
    with pytest.raises(InvalidInputError, match="2-D object array"):
        fitted.predict(np.array([NEW, NEW], dtype=object).T)


def test_x_and_y_with_one_index_in_two_orders_are_refused_not_paired_by_position(hash_embedder, fitted):
    # was: fitted (and scored) texts against the labels of other rows, without a word
    X = pd.Series(TEXTS, index=range(100, 118))
    shuffled = pd.Series(LABELS, index=range(100, 118)).sample(frac=1, random_state=0)
    for call in (lambda: TagClassifier(hash_embedder, cv=2).fit(X, shuffled),
                 lambda: fitted.evaluate(X, shuffled), lambda: fitted.score(X, shuffled),
                 lambda: TagClassifier(hash_embedder, cv=2).find_label_issues(X, shuffled)):
        with pytest.raises(InvalidInputError, match=r"same index labels in another order.*y\.loc\[X\.index\]"):
            call()
    aligned = shuffled.loc[X.index]
    assert TagClassifier(hash_embedder, cv=2).fit(X, aligned).predict(NEW).tolist() == fitted.predict(NEW).tolist()
    # another index altogether (X reset, y not): position is the only reading, as in scikit-learn
    other = pd.Series(LABELS, index=range(500, 518))
    assert TagClassifier(hash_embedder, cv=2).fit(X.reset_index(drop=True), other).classes_.tolist() == [
        "bug", "feature", "question"]


def test_score_in_learning_curves_does_not_warn_about_training_rows(hash_embedder):
    # scikit-learn scores the training rows on purpose; the warning about copies is evaluate()'s
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        learning_curve(TagClassifier(hash_embedder, cv=2), np.array(TEXTS, dtype=object), LABELS,
                       cv=3, train_sizes=[1.0])


# --- a fine-tuned model copied (pickle, joblib, deepcopy) ---------------------------------------------

@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A 1-layer, 16-dimensional BERT with the bundled model's tokenizer: fine-tunes in about a second."""
    import torch
    from transformers import BertConfig, BertModel

    from feedback_nlp._model import resolve_model

    source, folder = Path(resolve_model()[1]), tmp_path_factory.mktemp("tiny") / "model"
    folder.mkdir()
    for name in ("modules.json", "sentence_bert_config.json", "special_tokens_map.json", "tokenizer.json",
                 "tokenizer_config.json", "vocab.txt"):
        shutil.copy(source / name, folder / name)
    (folder / "1_Pooling").mkdir()
    pooling = json.loads((source / "1_Pooling" / "config.json").read_text())
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({**pooling, "word_embedding_dimension": 16}))
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32, max_position_embeddings=64)).save_pretrained(folder)
    return folder


def test_a_copy_of_a_fine_tuned_model_carries_its_encoder(tiny_model, tmp_path):
    # was: the copy pointed at the original's scratch folder, deleted with the original (or its process):
    # ModelNotFoundError on predict, a raw FileNotFoundError on save, a joblib file that never loads elsewhere
    from feedback_nlp import Embedder

    clf = TagClassifier(Embedder(tiny_model, backend="torch", cache=None), head="finetune", finetune_epochs=1,
                        finetune_batch_size=4, finetune_max_seq_length=16, cv=2, lexical=False,
                        finetune_calibration="in_sample").fit(TEXTS, LABELS)
    expected = clf.predict_proba(NEW).to_numpy()
    pickled, deep = pickle.dumps(clf), copy.deepcopy(clf)
    scratch = Path(clf.embedder_.location)
    del clf
    gc.collect()
    assert not scratch.exists()  # the original's folder went with it
    unpickled = pickle.loads(pickled)
    for copied in (unpickled, deep):
        assert Path(copied.embedder_.location).is_dir()
        assert np.allclose(copied.predict_proba(NEW).to_numpy(), expected, atol=1e-6)
    folder = unpickled.save(tmp_path / "m")
    assert np.allclose(TagClassifier.load(folder, embedder=Embedder(tiny_model, backend="torch", cache=None))
                       .predict_proba(NEW).to_numpy(), expected, atol=1e-6)
    own = Path(unpickled.embedder_.location).parent
    del unpickled
    gc.collect()
    assert not own.exists()  # each copy's folder goes with that copy


def test_a_copy_of_a_frozen_model_carries_no_files(fitted):
    assert "_encoder_files" not in fitted.__getstate__()
    assert pickle.loads(pickle.dumps(fitted)).predict(NEW).tolist() == fitted.predict(NEW).tolist()


# --- honest evaluation --------------------------------------------------------------------------------

@pytest.mark.parametrize("missing", [None, np.nan, "", " ", pd.NA, np.float32("nan")])
def test_evaluate_refuses_rows_without_a_true_label(fitted, missing):
    # was: scored as a wrong prediction (accuracy 0.5 on two rows), while the CLI's eval refused such rows
    with pytest.raises(InvalidInputError, match=r"y rows \[1\] have no label"):
        fitted.evaluate(NEW[:2], ["bug", missing])


def test_evaluate_refuses_several_tags_for_a_multi_class_model(fitted):
    # was: accuracy 0.5 and micro F1 0.8 on rows the model could never get right
    for y, sep in (([["bug", "feature"], ["feature"]], None), (["bug|feature", "feature"], "|")):
        with pytest.raises(InvalidInputError, match=r"multi-class \(one tag a row\) but y rows \[0\] have several"):
            fitted.evaluate(NEW[:2], y, sep=sep)


def test_the_unknown_tag_warning_says_when_the_tag_is_known_as_another_type(hash_embedder):
    # was: "tags this model was not trained on ['0']" for a model whose tags are 0, 1, 2
    ints = TagClassifier(hash_embedder, cv=2).fit(TEXTS, [0] * 6 + [1] * 6 + [2] * 6)
    with pytest.warns(UserWarning, match=r"'0' is a str; the model's tag is the int 0"):
        ints.evaluate(NEW, ["0", "1", "2"])
    flags = TagClassifier(hash_embedder, cv=2).fit(TEXTS[:12], [True] * 6 + [False] * 6)
    with pytest.warns(UserWarning, match=r"'False' is a str; the model's tag is the bool False"):
        flags.evaluate(NEW[:2], ["True", "False"])


def test_the_unknown_tag_warning_suggests_the_separator(hash_embedder):
    multi = TagClassifier(hash_embedder, cv=2).fit(TEXTS, [[lab] for lab in LABELS[:-2]] + [["question", "bug"]] * 2)
    with pytest.warns(UserWarning, match=r"'bug\|feature' looks like several tags: pass sep='\|'"):
        multi.evaluate(NEW[:2], ["bug|feature", "feature"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        multi.evaluate(NEW[:2], ["bug|feature", "feature"], sep="|")  # with sep: known tags, no warning


def test_evaluate_warns_when_test_rows_are_copies_of_training_rows(hash_embedder, fitted, tmp_path):
    # was: a perfect score on the training rows, with nothing to say the model had seen their answers
    with pytest.warns(UserWarning, match=r"2 of 3 evaluation rows are copies of training rows"):
        fitted.evaluate(["Crash   NOW", "add export", NEW[2]], ["bug", "feature", "question"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted.evaluate(NEW, ["bug", "feature", "question"])  # new rows: no warning
        fitted.score(TEXTS, LABELS)  # score is what scikit-learn's train scores call: no warning
    vectors = hash_embedder.encode(TEXTS)
    on_vectors = TagClassifier(hash_embedder, cv=2, lexical=False).fit(vectors, LABELS)
    with pytest.warns(UserWarning, match=r"3 of 3 evaluation rows are copies"):
        on_vectors.evaluate(vectors[:3], LABELS[:3])
    # the fingerprints are never saved: they could confirm whether a text was in the training data
    loaded = TagClassifier.load(fitted.save(tmp_path / "m"), embedder=hash_embedder)
    with np.load(tmp_path / "m" / "weights.npz") as saved:
        assert not any("key" in name for name in saved.files)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded.evaluate(TEXTS[:3], LABELS[:3])


# --- labels of odd types ------------------------------------------------------------------------------

@pytest.mark.parametrize("missing", [np.float32("nan"), np.float64("nan"), Decimal("NaN")])
def test_a_nan_label_of_any_float_type_is_no_label(hash_embedder, missing):
    # was: "labels look continuous" (np.float32 NaN) and a raw decimal.InvalidOperation (Decimal NaN)
    with pytest.raises(InvalidInputError, match=r"rows \[17\] have no label"):
        TagClassifier(hash_embedder, cv=2).fit(TEXTS, [1.0] * 6 + [2.0] * 6 + [3.0] * 5 + [missing])


@pytest.mark.parametrize("kind", [Decimal, lambda v: Fraction(v, 1)])
def test_decimal_and_fraction_labels_are_the_integers_they_stand_for(hash_embedder, tmp_path, kind):
    # was: kept as Decimal/Fraction objects, saved as strings and loaded back as the strings '1', '2', '3'
    clf = TagClassifier(hash_embedder, cv=2).fit(TEXTS, [kind(v) for v in [1] * 6 + [2] * 6 + [3] * 6])
    assert clf.classes_.dtype.kind == "i" and clf.classes_.tolist() == [1, 2, 3]
    loaded = TagClassifier.load(clf.save(tmp_path / "m"), embedder=hash_embedder)
    assert loaded.classes_.tolist() == [1, 2, 3] and loaded.predict(NEW).tolist() == clf.predict(NEW).tolist()


def test_non_integer_decimal_labels_are_continuous_and_huge_integers_are_refused(hash_embedder):
    with pytest.raises(InvalidInputError, match="labels look continuous"):
        TagClassifier(hash_embedder, cv=2).fit(TEXTS, [Decimal("1.5")] * 9 + [Decimal(2)] * 9)
    # was: accepted, saved as text and loaded as the strings '1', '2', '1000…'
    with pytest.raises(InvalidInputError, match="integer labels beyond 64 bits"):
        TagClassifier(hash_embedder, cv=2).fit(TEXTS, [10**30] * 6 + [1] * 6 + [2] * 6)


# --- zero-shot taxonomies -----------------------------------------------------------------------------

@pytest.mark.parametrize("second", ["Crash", "  crash  ", "CRASH"])
def test_zero_shot_refuses_tags_it_could_never_tell_apart(hash_embedder, second):
    # was: both tags got one prototype and the second was never predicted, without a word
    tax = Taxonomy.from_dict({"tags": [{"id": "a", "name": "Crash"}, {"id": "b", "name": second},
                                       {"id": "c", "name": "Add"}]})
    with pytest.raises(InvalidInputError, match="tags 'a' and 'b' have the same name, description and examples"):
        TagClassifier(hash_embedder, tax, zero_shot=True).fit(None)


def test_zero_shot_takes_same_named_tags_in_different_facets_or_with_own_examples(hash_embedder):
    facets = Taxonomy.from_dict({"tags": [
        {"id": "area", "name": "Area"}, {"id": "kind", "name": "Kind"},
        {"id": "a1", "name": "Other", "parent": "area"}, {"id": "a2", "name": "Billing", "parent": "area"},
        {"id": "k1", "name": "Other", "parent": "kind"}, {"id": "k2", "name": "Bug", "parent": "kind"}]})
    assert len(TagClassifier(hash_embedder, facets, zero_shot=True).fit(None).classes_) == 4
    examples = Taxonomy.from_dict({"tags": [{"id": "a", "name": "Crash", "examples": ["it crashes"]},
                                            {"id": "b", "name": "Crash", "examples": ["it freezes"]}]})
    assert TagClassifier(hash_embedder, examples, zero_shot=True).fit(None).classes_.tolist() == ["a", "b"]


def test_a_blank_description_is_no_description(hash_embedder):
    # was: "empty text at positions [2]; remove or fill these rows" from zero-shot, naming no tag
    tax = Taxonomy.from_dict({"tags": [{"id": "a", "name": "Crash", "description": "   "}, {"id": "b", "name": "Add"}]})
    assert tax["a"].description == "" and "description" not in tax.to_dict()["tags"][0]
    assert TagClassifier(hash_embedder, tax, zero_shot=True).fit(None).predict(["crash"]).tolist() == ["a"]


@pytest.mark.parametrize(("examples", "message"), [
    ([""], "has a blank example"), (["ok", "  "], "has a blank example"),
    ([True], "examples must be a list of texts"), ([float("nan")], "examples must be a list of texts"),
    ([math.inf], "examples must be a list of texts"),
])
def test_taxonomy_examples_that_are_no_text_are_refused_by_tag(examples, message):
    # was: "" broke zero-shot with a message about row positions; true and NaN became the texts "True", "nan"
    with pytest.raises(TaxonomyError, match=rf"tag #0 \('a'\).*{message}"):
        Taxonomy.from_dict({"tags": [{"id": "a", "name": "A", "examples": examples}]})


@pytest.mark.parametrize("char", ["\u200b", "\u202e", "\ufeff", "\u00ad", "\u2060"])
def test_a_tag_id_with_an_invisible_character_is_refused(char):
    # was: "bug\u200b" and "bug" were two tags that print the same
    with pytest.raises(TaxonomyError, match=f"invisible character U\\+{ord(char):04X}"):
        Taxonomy.from_dict({"tags": [{"id": f"bug{char}", "name": "x"}, {"id": "bug", "name": "y"}]})


def test_a_blank_parent_is_no_parent():
    # was: "tag 'a' has unknown parent ''"
    tax = Taxonomy.from_dict({"tags": [{"id": "a", "name": "A", "parent": "  "}]})
    assert tax["a"].parent is None


# --- saving and the model card ------------------------------------------------------------------------

def test_save_inside_a_saved_folder_is_refused(fitted, tmp_path):
    # was: saved; the outer model then failed to load ("inner/README.md is not covered by manifest.json")
    outer = fitted.save(tmp_path / "outer")
    with pytest.raises(InvalidInputError, match="is inside the saved folder"):
        fitted.save(outer / "inner")
    with pytest.raises(InvalidInputError, match="is inside the saved folder"):
        fitted.save(outer / "deeper" / "still")
    assert not (outer / "inner").exists() and not (outer / "deeper").exists()
    assert TagClassifier.load(outer, embedder=fitted.embedder_).classes_.tolist() == ["bug", "feature", "question"]
    assert fitted.save(outer).samefile(outer)  # the folder itself is replaced, as before


def test_save_to_a_dangling_link_or_no_path_is_an_input_error(fitted, tmp_path):
    os.symlink(tmp_path / "nowhere", tmp_path / "link")
    with pytest.raises(InvalidInputError, match="symbolic link to .*nowhere, which does not exist"):
        fitted.save(tmp_path / "link")  # was: a raw FileExistsError
    for path in (None, b"/tmp/x", 3, ""):
        with pytest.raises(InvalidInputError, match="the folder to save into must be a path"):
            fitted.save(path)  # was: a raw TypeError (and "" the working directory)


def test_the_card_shows_numpy_metrics_and_keeps_its_tables_whole(hash_embedder, tmp_path):
    labels = LABELS[:-2] + ["a|b", "a|b"]
    labels[:2] = ["x`y", "x`y"]
    clf = TagClassifier(hash_embedder, cv=2).fit(TEXTS, labels)
    folder = clf.save(tmp_path / "m", metrics={"macro_f1": np.float32(0.875), "rows": np.int64(40),
                                                "note|odd": "two\nlines | here"})
    card = (folder / "README.md").read_text()
    # was: the NumPy figures left out of the card (and written to config.json as the strings "0.875", "40")
    assert "| macro_f1 | 0.8750 |" in card and "| rows | 40 |" in card
    assert json.loads((folder / "config.json").read_text())["metrics"]["rows"] == 40
    assert r"| note\|odd | two lines \| here |" in card  # was: a row broken over two lines and extra cells
    assert r"`a\|b`" in card and "`` x`y ``" in card  # tags in code spans that survive a | or a `
    with pytest.raises(InvalidInputError, match="metrics must be a mapping"):
        clf.save(tmp_path / "n", metrics=[("f1", 0.5)])


def test_the_card_shows_the_settings_the_model_was_trained_with(hash_embedder, tmp_path):
    # was: set_params after fit rewrote the card and config: a logistic-regression model "fine-tuned", C and
    # the seed it was never trained with — and a load of that folder came back as head="finetune"
    clf = TagClassifier(hash_embedder, cv=2).fit(TEXTS, LABELS)
    clf.set_params(C=0.01, head="finetune", random_state=7, min_confidence=0.5)
    folder = clf.save(tmp_path / "m")
    params = json.loads((folder / "config.json").read_text())["params"]
    assert (params["C"], params["head"], params["random_state"]) == (10.0, "logreg", 0)
    assert params["min_confidence"] == 0.5  # read at prediction: the saved model abstains as this one does
    card = (folder / "README.md").read_text()
    assert "| head | logistic regression on frozen embeddings" in card and "| random_state | 0 |" in card
    loaded = TagClassifier.load(folder, embedder=hash_embedder)
    assert loaded.get_params()["head"] == "logreg" and loaded.min_confidence == 0.5
    loaded.set_params(C=1.0)  # a loaded model saved again keeps what it was trained with
    assert json.loads((loaded.save(tmp_path / "again") / "config.json").read_text())["params"]["C"] == 10.0


def test_head_auto_with_repeated_texts_does_not_warn_about_its_own_folds(hash_embedder):
    # the selection's folds are scored by the library, not the user: no warning about copies from inside fit
    texts = [*TEXTS, "crash now", "add export", "how to reset"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        clf = TagClassifier(hash_embedder, cv=3, head="auto", time_budget=None).fit(texts, [*LABELS, "bug", "feature",
                                                                                            "question"])
    assert clf.selected_head_ == "logreg"


def test_label_issues_and_suggestions_keep_the_inputs_index_labels(hash_embedder, fitted):
    # was: a frame indexed 0…n-1 and an "index" column of positions: train.loc[issues["index"]] took other rows
    X = pd.Series(TEXTS, index=range(100, 118))
    labels = LABELS[:-1] + ["bug"]  # "where is help" labelled bug
    issues = TagClassifier(hash_embedder, cv=2).find_label_issues(X, labels)
    assert len(issues) and (X.loc[issues.index] == issues["text"]).all()
    assert (X.iloc[issues["index"]].to_numpy() == issues["text"].to_numpy()).all()  # "index" stays the position
    assert 117 in issues.index
    suggested = fitted.suggest_for_labeling(pd.Series(TEXTS, index=list("abcdefghijklmnopqr")), n=3)
    assert (pd.Series(TEXTS, index=list("abcdefghijklmnopqr")).loc[suggested.index] == suggested["text"]).all()
    # a list keeps the positions 0…n-1 as the frame's index, as before
    plain = TagClassifier(hash_embedder, cv=2).find_label_issues(TEXTS, labels)
    assert plain.index.tolist() == list(range(len(plain)))


def test_set_params_names_an_unknown_or_unsettable_parameter(fitted):
    # was: scikit-learn's "Invalid parameter" ValueError, and a raw AttributeError for embedder__dim
    with pytest.raises(InvalidInputError, match=r"no parameter 'min_confidense' \(did you mean 'min_confidence'\?\)"):
        fitted.set_params(min_confidense=0.5)
    with pytest.raises(InvalidInputError, match=r"embedder__dim: the embedder \(HashEmbedder\) has no parameters"):
        fitted.set_params(embedder__dim=3)
    assert fitted.set_params(C=1.0).C == 1.0  # a valid one still sets


@pytest.fixture(scope="module")
def full_model(tiny_model, tmp_path_factory) -> Path:
    """A tag model whose whole fine-tuned encoder is saved in ``encoder/`` (``adapter=None``)."""
    from feedback_nlp import Embedder

    clf = TagClassifier(Embedder(tiny_model, backend="torch", cache=None), head="finetune", adapter=None,
                        finetune_epochs=1, finetune_batch_size=4, finetune_max_seq_length=16, cv=2, lexical=False,
                        finetune_calibration="in_sample").fit(TEXTS, LABELS)
    return clf.save(tmp_path_factory.mktemp("full") / "model")


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


def _plant_pickle(encoder: Path) -> None:
    (encoder / "model.safetensors").unlink()
    (encoder / "pytorch_model.bin").write_bytes(pickle.dumps(_RunsCode()))


def _plant_module(encoder: Path) -> None:
    modules = json.loads((encoder / "modules.json").read_text())
    modules[0]["type"] = "subprocess.Popen"
    (encoder / "modules.json").write_text(json.dumps(modules))


def _plant_auto_map(encoder: Path) -> None:
    config = json.loads((encoder / "config.json").read_text())
    (encoder / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModel": "evil.Model"}}))
    (encoder / "evil.json").write_text("{}")  # the code itself would be evil.py, refused as a file too


@pytest.mark.parametrize(("plant", "message"), [
    (_plant_pickle, r"pytorch_model\.bin is not a file a saved model holds"),
    (lambda enc: (enc / "evil.py").write_text("import os\n"), r"evil\.py is not a file a saved model holds"),
    (_plant_module, r"names the module 'subprocess\.Popen', which is not part of sentence-transformers"),
    (_plant_auto_map, r"names custom model code \(auto_map\)"),
])
def test_a_saved_encoder_that_would_run_code_is_refused_at_load(full_model, tmp_path, monkeypatch, plant, message):
    # was: loaded; the predict then reached torch's or sentence-transformers' own refusal (a raw UnpicklingError or
    # ValueError) — or, for auto_map, ran with whatever the config named; the manifest was recomputed, as an
    # attacker would
    from feedback_nlp._persist import write_manifest

    monkeypatch.chdir(tmp_path)
    folder = shutil.copytree(full_model, tmp_path / "model")
    plant(folder / "encoder")
    write_manifest(folder)
    with pytest.raises(IntegrityError, match=message):
        TagClassifier.load(folder)
    assert not (tmp_path / "pwned.txt").exists()
    assert TagClassifier.load(full_model).predict(NEW).tolist()  # the untouched folder still loads


def test_label_issues_list_copies_of_a_text_under_different_tags(hash_embedder):
    # was: none listed when the copies were split evenly (out-of-fold 0.5 / 0.5 is no "confident" error), while
    # fit's warning about such copies points the user to find_label_issues
    texts = TEXTS + ["same words here"] * 4
    labels = LABELS + ["bug", "bug", "feature", "feature"]
    issues = TagClassifier(hash_embedder, cv=2).find_label_issues(texts, labels)
    tied = issues[issues["text"] == "same words here"]
    assert sorted(tied["index"]) == [18, 19, 20, 21]
    assert (tied["suggested"] != tied["given"]).all() and set(tied["suggested"]) == {"bug", "feature"}
    # three to one: the lone copy is the suspect, suggested the tag of the three
    labels = LABELS + ["bug", "bug", "bug", "question"]
    issues = TagClassifier(hash_embedder, cv=2).find_label_issues(texts, labels)
    copies = issues[issues["text"] == "same words here"]
    assert copies["index"].tolist() == [21] and copies["suggested"].tolist() == ["bug"]


def test_accuracy_on_covered_rows_is_no_figure_when_every_row_abstained(hash_embedder):
    # was: 0.0, a score for rows the model never answered (and printed as "0.0000" in the report)
    clf = TagClassifier(hash_embedder, cv=2, min_confidence=1.0).fit(TEXTS, LABELS)
    report = clf.evaluate(["zzz", "qqq www", "lorem ipsum"], ["bug", "feature", "question"])  # words it never saw
    assert report.coverage == 0.0 and report.accuracy == 0.0 and math.isnan(report.accuracy_covered)
    assert report.to_dict()["accuracy_covered"] is None and json.dumps(report.to_dict(), allow_nan=False)
    assert "| accuracy on covered rows | – (every row abstained) |" in report.to_markdown()


def test_a_folder_saved_before_the_word_channel_existed_is_not_carded_with_one(hash_embedder, tmp_path):
    # was: loaded with today's default lexical=True, so a save of it said "the word TF-IDF channel was fitted and
    # dropped" of a model that never had one (and a refit would have trained one)
    from feedback_nlp._persist import write_manifest

    original = TagClassifier(hash_embedder, cv=2, lexical=False).fit(TEXTS, LABELS)
    folder = original.save(tmp_path / "old")
    config = json.loads((folder / "config.json").read_text())
    for name in ("lexical", "keep_base", "taxonomy_examples", "adapter", "time_budget", "self_train"):
        del config["params"][name]  # parameters format 1 did not have
    for name in ("classes_dtype", "calibration", "lexical"):
        config.pop(name, None)
    (folder / "config.json").write_text(json.dumps({**config, "format_version": 1}))
    write_manifest(folder)
    old = TagClassifier.load(folder, embedder=hash_embedder)
    assert old.lexical is False and old.predict(NEW).tolist() == original.predict(NEW).tolist()
    card = (old.save(tmp_path / "again") / "README.md").read_text()
    assert "fitted and dropped" not in card and "| head | logistic regression on frozen embeddings |" in card


def test_embedding_rows_of_different_lengths_are_named(hash_embedder):
    # was: numpy's "setting an array element with a sequence… inhomogeneous shape"
    clf = TagClassifier(hash_embedder, cv=2, lexical=False).fit(hash_embedder.encode(TEXTS), LABELS)
    with pytest.raises(InvalidInputError, match=r"embedding rows have different lengths \(63, 64\)"):
        clf.predict([[0.1] * 64, [0.2] * 63])


@pytest.mark.parametrize(("ids", "message"), [
    ({"a", "b", "c"}, "ids is a set, which has no order"),  # was: ids given to rows in the set's own order
    ({0: "a", 1: "b", 2: "c"}, "ids is a dict"),  # was: the keys taken as ids
    ("abc", "ids must be a sequence of one id per row"),  # was: the letters taken as ids
    (7, "ids must be a sequence of one id per row"),  # was: a raw TypeError
    ((i for i in [1, 2]), "ids has 2 values for 3 rows"),  # a generator is read once; was a raw TypeError
    ([[1], [2], [3]], r"ids at positions \[0, 1, 2\] are lists"),  # was: a raw "unhashable type" TypeError
    (pd.Series(["a", "b", "c"], index=[12, 11, 10]), r"X and ids have the same index labels in another order"),
])
def test_tag_ids_that_cannot_be_matched_to_rows_are_refused(fitted, ids, message):
    with pytest.raises(InvalidInputError, match=message):
        fitted.tag(pd.Series(NEW, index=[10, 11, 12]), ids=ids)


def test_tag_ids_from_a_generator_or_series_are_kept_in_order(fitted):
    out = fitted.tag(pd.Series(NEW, index=[10, 11, 12]), ids=(f"id{i}" for i in range(3)))
    assert out["id"].tolist() == ["id0", "id1", "id2"] and out.index.tolist() == [10, 11, 12]
    out = fitted.tag(NEW, ids=pd.Series([5, 6, 7], index=["x", "y", "z"]))  # X has no index: by position
    assert out["id"].tolist() == [5, 6, 7]


def test_per_tag_counts_match_their_definition_on_random_multi_label_rows():
    # evaluate_predictions counts in one pass over the rows (a pass per tag took 1.9 s for 1,000 tags x 20,000
    # rows, 0.1 s now): the figures must stay those of the per-tag definition
    from feedback_nlp.evaluation import evaluate_predictions

    rng = np.random.default_rng(3)
    tags = ["a", "b", "c", "d", 1, True]  # 1 and True are one tag, as in a set
    y_true = [list(rng.choice(5, size=rng.integers(0, 3), replace=False)) for _ in range(300)]
    y_pred = [list(rng.choice(6, size=rng.integers(0, 3), replace=False)) for _ in range(300)]
    y_true = [[tags[i] for i in r] for r in y_true]
    y_pred = [[tags[i] for i in r] for r in y_pred]
    report = evaluate_predictions(y_true, y_pred, classes=["a", "b", "c"], multi_label=True)
    for row in report.per_tag.to_dict("records"):
        c = row["tag"]
        tp = sum(1 for t, p in zip(y_true, y_pred) if c in t and c in p)
        fp = sum(1 for t, p in zip(y_true, y_pred) if c not in t and c in p)
        fn = sum(1 for t, p in zip(y_true, y_pred) if c in t and c not in p)
        assert row["support"] == tp + fn
        assert row["precision"] == pytest.approx(tp / (tp + fp) if tp + fp else 0.0)
        assert row["recall"] == pytest.approx(tp / (tp + fn) if tp + fn else 0.0)


def test_ancestors_of_a_tag_come_in_taxonomy_order_in_a_large_taxonomy():
    # with_ancestors sorts a row's few tags by their position (it walked every tag for every row: 0.35 ms a row
    # at 20,000 tags, 2 µs now)
    tax = Taxonomy.from_dict({"tags": [{"id": "z", "name": "Z"}] + [{"id": f"t{i}", "name": f"t{i}", "parent": "z"}
                                                                  for i in range(2000)]
                             + [{"id": "leaf", "name": "Leaf", "parent": "t1999"}, {"id": "a", "name": "A"}]})
    assert tax.with_ancestors(["a", "leaf", "t5"]) == ["z", "t5", "t1999", "leaf", "a"]


def test_a_fine_tuning_window_longer_than_the_model_reads_is_cut_to_it(tiny_model):
    # was: torch's "The size of tensor a (128) must match the size of tensor b (64)" on the first long text
    from feedback_nlp import Embedder

    clf = TagClassifier(Embedder(tiny_model, backend="torch", cache=None), head="finetune", finetune_epochs=1,
                        finetune_batch_size=4, finetune_max_seq_length=100, cv=2, lexical=False,
                        finetune_calibration="in_sample")
    long_texts = [f"{t} {'and more words' * 40}" for t in TEXTS]
    with pytest.warns(UserWarning, match=r"finetune_max_seq_length=100 is longer than the model can read; "
                                         r"fine-tuning reads 64 tokens"):
        clf.fit(long_texts, LABELS)
    assert set(clf.predict(NEW)) <= set(LABELS)


def test_fine_tuning_that_diverges_says_so(tiny_model):
    # was: "the embedder's vectors contain NaN or infinity in rows [0, 1, …]", which blamed the embedder
    from feedback_nlp import Embedder

    clf = TagClassifier(Embedder(tiny_model, backend="torch", cache=None), head="finetune", finetune_epochs=1,
                        finetune_batch_size=4, finetune_max_seq_length=16, finetune_learning_rate=1e6, cv=2,
                        lexical=False, finetune_calibration="in_sample")
    with pytest.raises(InvalidInputError, match=r"fine-tuning diverged .*lower finetune_learning_rate \(it was 1e\+06\)"):
        clf.fit(TEXTS, LABELS)


@pytest.mark.parametrize(("labels", "P"), [
    ([0, 0, 1, 5], None),  # was: numpy's "operands could not be broadcast together"
    ([0, 0, 1, -1], None),  # was: "'list' argument must have no negative elements"
    ([0.5, 0, 1, 1], None),  # was: 0.5 read as class 0
    (["a", "b", "a", "b"], None),  # was: int()'s "invalid literal"
    ([0, 0, 1, 1], "negative"),  # was: flags computed from negative "probabilities"
])
def test_label_issue_mask_refuses_labels_and_probabilities_it_cannot_read(labels, P):
    from feedback_nlp._label_issues import label_issue_mask

    probs = np.array([[.9, .1], [.8, .2], [.1, .9], [.2, .8]])
    with pytest.raises(InvalidInputError, match="labels must be class indices|values in \\[0, 1\\]"):
        label_issue_mask(np.array(labels), -probs if P == "negative" else probs, method="builtin")
    assert label_issue_mask(np.array([0, 0, 1, 1]), probs.tolist(), method="builtin")[0].tolist() == [False] * 4


def test_evaluate_predictions_refuses_what_it_would_misread():
    from feedback_nlp.evaluation import calibration, evaluate_predictions

    # was: the strings read as True (every row abstained), a NaN calibration error, a raw TypeError
    with pytest.raises(InvalidInputError, match="abstained must hold True or False"):
        evaluate_predictions([["a"], ["a"]], [["a"], ["a"]], classes=["a"], abstained=["no", "no"])
    with pytest.raises(InvalidInputError, match="probabilities hold NaN"):
        evaluate_predictions([["a"]], [["a"]], classes=["a", "b"], probabilities=np.array([[np.nan, 0.5]]))
    assert evaluate_predictions((r for r in [["a"], ["b"]]), iter([["a"], ["a"]]), classes=["a", "b"]).accuracy == 0.5
    # was: an ECE of 0.0 for no bins, and (nan, 0.0) with numpy's warnings for no rows
    with pytest.raises(InvalidInputError, match="bins must be a whole number >= 1"):
        calibration(np.array([[0.9, 0.1]]), np.array([0]), multi_label=False, bins=0)
    with pytest.raises(InvalidInputError, match="at least one row"):
        calibration(np.zeros((0, 2)), np.array([], dtype=int), multi_label=False)
