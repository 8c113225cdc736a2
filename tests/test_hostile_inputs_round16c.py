"""Hostile and careless inputs, round 16c: the values a developer passes to the public Python API (types and ids)
of cleaning, scoring and dedupe. Each test failed before its fix. Everything runs in process (the tests'
HashEmbedder, no model)."""

from __future__ import annotations

import ast
import math
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import feedback_nlp as fb
from conftest import HashEmbedder
from feedback_nlp import (
    Deduper,
    InputTypeError,
    InvalidInputError,
    TagClassifier,
    clean_text,
    redact_pii,
    theme_scores,
)
from feedback_nlp.cleaning import text_problem
from feedback_nlp.errors import quoted_list
from feedback_nlp.scoring import non_ask_themes

TEXTS = ["export to csv fails", "csv export broken", "dark mode please", "add a dark theme"] * 2
LABELS = ["bug", "bug", "feature", "feature"] * 2


# --- 1. a text that is no str: the library's error, and still a TypeError ---------------------------------------


@pytest.mark.parametrize("func", [clean_text, redact_pii])
@pytest.mark.parametrize("value, hint", [
    (None, "missing text"), (math.nan, "missing text"), (pd.NA, "missing text"), (np.float64("nan"), "missing text"),
    (b"export fails", "decode it first"), (bytearray(b"x"), "decode it first"), (42, "str()"), (["a"], "list"),
])
def test_non_text_is_an_input_type_error(func, value, hint):
    # was a plain TypeError: `except fb.FeedbackNLPError` (every error of the library, says the README) missed it
    with pytest.raises(InputTypeError, match=f"{func.__name__} expects str, got {type(value).__name__}") as info:
        func(value)
    assert hint in str(info.value)
    assert isinstance(info.value, fb.FeedbackNLPError) and isinstance(info.value, InvalidInputError)
    assert isinstance(info.value, TypeError)  # code written for the TypeError it was still catches it


def test_bytes_are_refused_not_decoded():
    # the encoding is the caller's to know: cp1252 bytes read as UTF-8 would fail or change letters
    with pytest.raises(TypeError, match="decode it first"):
        clean_text("Café crème".encode("cp1252"))


@pytest.mark.parametrize("flag", [None, "no", 0, 1])
def test_redact_flag_must_be_a_boolean(flag):
    # redact=None (a setting left unset) skipped the redaction: the e-mail address went on to the embedder
    with pytest.raises(InputTypeError, match="redact must be True or False"):
        clean_text("mail jane@acme.io", redact=flag)
    assert clean_text("mail jane@acme.io", redact=np.bool_(True)) == "mail <EMAIL>"
    assert clean_text("mail jane@acme.io", redact=np.bool_(False)) == "mail jane@acme.io"


def test_errors_module_imports_no_other_module_of_the_package():
    # errors is the lowest layer (cleaning raises its InputTypeError); with errors importing cleaning at its top as
    # it did, cleaning could not import errors: the cycle that kept clean_text's TypeError out of the hierarchy
    tree = ast.parse(Path(fb.errors.__file__).read_text(encoding="utf-8"))
    relative = [node.module for node in tree.body if isinstance(node, ast.ImportFrom) and node.level > 0]
    assert relative == []
    assert fb.errors.quoted_cell("paid by jane@acme.io") == "'paid by <EMAIL>'"  # still redacts, imported late


# --- 2. and 3. one rule for ids and accounts: as read_feedback reads them ------------------------------------------


def test_theme_scores_counts_account_1_and_text_1_once():
    # was 2 unique accounts, and the account's revenue counted twice
    df = pd.DataFrame({"theme": ["sso"] * 4, "account_id": [1, "1", " 1 ", np.int64(1)],
                       "account_revenue": [100.0, 100.0, 100.0, 100.0]})
    out = theme_scores(df, time_col=None)
    assert out[["unique_accounts", "revenue"]].values.tolist() == [[1, 100.0]]


def test_theme_scores_float_account_of_a_column_with_a_gap_is_the_integer_account():
    # pandas makes an integer column float when one value is missing: 7.0 of that frame and "7" of a CSV read as
    # text, concatenated, were two accounts
    accounts = pd.concat([pd.Series([7.0, math.nan]), pd.Series(["7"])], ignore_index=True)
    df = pd.DataFrame({"theme": ["sso", "sso", "sso"], "account_id": accounts, "account_revenue": [50.0, 0.0, 50.0]})
    out = theme_scores(df, time_col=None)
    assert out[["volume", "unique_accounts", "revenue"]].values.tolist() == [[3, 1, 50.0]]


@pytest.fixture(scope="module")
def tagger():
    return TagClassifier(HashEmbedder(), cv=2).fit(TEXTS, LABELS)


@pytest.mark.parametrize("ids", [[1, "1"], ["a", " a"], [7, 7.0], [np.int64(3), "3"]])
def test_tag_refuses_ids_that_are_one_id(tagger, ids):
    # tag() kept 1 and "1" as two ids, which read_feedback, the Deduper and a written CSV take for one
    with pytest.raises(InvalidInputError, match="ids must be unique; repeated: .* are one id"):
        tagger.tag(TEXTS[:2], ids=ids)


def test_tag_keeps_the_ids_as_given(tagger):
    out = tagger.tag(TEXTS[:3], ids=[1, "2", np.int64(3)])
    assert out["id"].tolist() == [1, "2", 3]


@pytest.mark.parametrize("ids", [[1, "1"], [7, 7.0], ["a", " a"]])
def test_deduper_and_tag_agree_on_one_id(tagger, ids):
    # the Deduper compared str(id): 1 and "1" were one id, but 7 and 7.0 ("7" and "7.0") two, " a" and "a" two
    with pytest.raises(InvalidInputError, match="ids must be unique"):
        Deduper(HashEmbedder()).fit(TEXTS[:2], ids=ids)
    with pytest.raises(InvalidInputError, match="ids must be unique"):
        tagger.tag(TEXTS[:2], ids=ids)


def test_deduper_add_and_exclude_ids_use_the_same_rule():
    dd = Deduper(HashEmbedder()).fit(TEXTS[:4], ids=[1, 2, 3, 4])
    with pytest.raises(InvalidInputError, match="ids already in the index"):
        dd.add(TEXTS[4:5], ids=[4.0])
    found = dd.find(TEXTS[:1], k=1, exclude_ids=[" 1"])  # the query's own item, named as text
    assert found["id"].tolist() != [1]


# --- scoring: numbers of every kind a developer has at hand -------------------------------------------------------


@pytest.mark.parametrize("amount", [Decimal("sNaN"), 10**400])
def test_theme_scores_revenue_beyond_a_float(amount):
    # Decimal("sNaN") was pandas' "Cannot hash a signaling NaN value", 10**400 "int too large to convert to float"
    df = pd.DataFrame({"theme": ["sso", "sso"], "account_id": ["a", "b"], "account_revenue": [amount, 2.0]})
    if isinstance(amount, Decimal):  # a NaN Decimal is a missing amount, as Decimal("NaN") already was
        out = theme_scores(df, time_col=None)
        assert out[["revenue", "accounts_without_revenue"]].values.tolist() == [[2.0, 1]]
    else:
        with pytest.raises(fb.ColumnError, match="revenue column 'account_revenue' has non-numeric, infinite"):
            theme_scores(df, time_col=None)


@pytest.mark.parametrize("weight, ok", [(Fraction(1, 2), True), (Decimal("0.5"), True), (10**400, False)])
def test_theme_scores_weights_of_other_number_types(weight, ok):
    # a Fraction or a huge int was numpy's "ufunc 'isfinite' not supported"; a Decimal was refused as no number
    df = pd.DataFrame({"theme": ["sso", "sso", "csv"], "account_id": ["a", "b", "a"]})
    if ok:
        out = theme_scores(df, time_col=None, revenue_col=None, weights={"volume": weight, "unique_accounts": 0})
        assert out["priority"].tolist() == [100.0, 50.0]
    else:
        with pytest.raises(InvalidInputError, match="weight 'volume' must be a finite number"):
            theme_scores(df, time_col=None, revenue_col=None, weights={"volume": weight})


@pytest.mark.parametrize("must", [10**400, Decimal("sNaN")])
def test_moscow_cutoff_beyond_a_float(must):
    # was OverflowError / ValueError from float()
    with pytest.raises(InvalidInputError, match="cutoffs must be finite numbers"):
        fb.moscow([1, 2, 3], cutoffs={"must": must, "should": 1, "could": 0})


@pytest.mark.parametrize("value", [None, pd.NA, pd.NaT])
def test_scores_with_a_missing_value_say_missing(value):
    # was "non-numeric values", as if the cell held text
    with pytest.raises(InvalidInputError, match="reach has missing values .* at positions 1"):
        fb.rice([100, value], 1, 0.5, 1)


def test_decimal_beyond_a_float_is_named_so():
    # Decimal("1e400") is finite: it was "has NaN or infinite values"
    with pytest.raises(InvalidInputError, match="reach has numbers a float cannot hold"):
        fb.rice(Decimal("1e400"), 1, 0.5, 1)


@pytest.mark.parametrize("value", [memoryview(b"ab"), bytearray(b"ab")])
def test_scores_refuse_byte_buffers(value):
    # a memoryview was read as its bytes' values: a reach of 97 and 98
    with pytest.raises(InvalidInputError, match="reach must be numeric"):
        fb.rice(value, 1, 0.5, 1)


@pytest.mark.parametrize("column", ["theme", "account_id"])
def test_theme_scores_refuses_lone_surrogates(column):
    # was pyarrow's UnicodeEncodeError from the grouping
    df = pd.DataFrame({"theme": ["sso", "csv"], "account_id": ["a", "b"], "account_revenue": [1.0, 2.0]}, dtype=object)
    df.loc[0, column] = "bad \udcff"
    with pytest.raises(fb.ColumnError, match=f"column '{column}' holds lone surrogates .* in rows \\[0\\]"):
        theme_scores(df, time_col=None)


def test_non_ask_themes_refuses_one_tag_as_text():
    # non_ask_tags="praise" was the tags p, r, a, i, s and e: a theme tagged "p" came out as praise
    items = pd.DataFrame({"theme": [0, 1], "tags": [["praise"], ["p"]]})
    with pytest.raises(InvalidInputError, match="non_ask_tags must be a list of tags"):
        non_ask_themes(items, non_ask_tags="praise")


def test_non_ask_themes_leaves_out_a_float_outlier_written_as_text():
    # "-1.0" (a float theme column written to CSV and read as text) was returned as a praise theme
    items = pd.DataFrame({"theme": ["-1.0", "2"], "tags": [["praise"], ["praise"]]})
    assert non_ask_themes(items) == ["2"]


# --- dedupe and tag: ids no output can hold, calibration on nothing ------------------------------------------------


def test_deduper_refuses_ids_with_lone_surrogates(tmp_path):
    # fit took them and save failed writing items.json (UnicodeEncodeError), after the embedding
    with pytest.raises(InvalidInputError, match="ids at positions \\[0\\] hold lone surrogates"):
        Deduper(HashEmbedder()).fit(TEXTS[:2], ids=["bad\udcff", "ok"])


def test_tag_refuses_ids_with_lone_surrogates(tagger):
    # was pyarrow's UnicodeEncodeError building the output frame
    with pytest.raises(InvalidInputError, match="ids at positions \\[1\\] hold lone surrogates"):
        tagger.tag(TEXTS[:2], ids=["ok", "bad\udcff"])


def test_calibrate_threshold_on_no_pairs_says_so():
    # was "scores and labels must be 1-D of equal length, got (0,) and (0,)": they were both
    with pytest.raises(InvalidInputError, match="no labelled pairs"):
        fb.calibrate_threshold([], [])


@pytest.mark.parametrize("value", [pd.NA, pd.NaT, np.float32("nan")])
def test_text_problem_calls_every_missing_value_missing(value):
    # pd.NA was "text is NAType, not str", np.float32("nan") "text is float32, not str"
    assert text_problem(value) == "missing text"


def test_text_problem_byte_buffers_are_binary():
    assert text_problem(bytearray(b"export fails")) == "binary or non-text content"  # was "text is bytearray"


def test_quoted_list_of_one_value():
    # None was "'NoneType' object is not iterable", raised from the message meant to explain an error
    assert quoted_list(None) == "['None']" and quoted_list(7) == "['7']"


def test_theme_scores_text_accounts_of_a_string_column():
    # the vectorised path of a text column (pandas' str dtype): spaces and Unicode form, as for an object column
    accounts = pd.Series([" acme", "acme", "caf\u00e9", "cafe\u0301"], dtype="string")
    df = pd.DataFrame({"theme": ["sso"] * 4, "account_id": accounts, "account_revenue": [5.0, 5.0, 1.0, 1.0]})
    assert theme_scores(df, time_col=None)[["unique_accounts", "revenue"]].values.tolist() == [[2, 6.0]]
