"""Hostile and careless inputs, round 16c: the values a developer passes to the public Python API (types and ids)
of cleaning, scoring and dedupe. Each test failed before its fix. Everything runs in process (the tests'
HashEmbedder, no model)."""

from __future__ import annotations

import ast
import math
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
