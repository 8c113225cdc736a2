"""Round 14d: near-duplicate search as developers and product-ops call it (a new post arrives: which backlog
items are the same request?) — tiny backlogs, copies, redacted personal data, groups, the CLI and the service."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import HashEmbedder
from feedback_nlp import Deduper, InvalidInputError, read_feedback
from feedback_nlp.cleaning import text_problem

# --- redaction must not make unrelated items identical ---------------------------------------------------


@pytest.mark.parametrize("raw", ["jane@example.com", "bob@other.org, +1 415 555 0100", "https://user:pw@git.acme.io/x",
                                 "jane@example.com!!!"])
def test_a_text_of_personal_data_alone_is_rejected_not_matched(raw):
    """"jane@example.com" and "bob@other.org" both became "<EMAIL>": identical texts, so each was the other's
    duplicate at 1.0 (the service flagged them ``duplicate: true``, the CLI grouped them)."""
    assert text_problem(raw) == "nothing but personal data (redacted)"
    records, rejected = read_feedback(pd.DataFrame({"id": ["a", "b"], "text": [raw, "Contact: jane@example.com"]}))
    assert records["text"].tolist() == ["Contact: <EMAIL>"]  # words beside the address: kept
    assert rejected["reason"].tolist() == ["nothing but personal data (redacted)"]
    assert "@" not in rejected["text"].iloc[0]  # the errors output shows the redacted text


def test_the_cli_does_not_group_texts_that_were_only_an_email(tmp_path, hashed_cli):
    from feedback_nlp.cli import main

    src = tmp_path / "b.csv"
    pd.DataFrame({"id": ["1", "2", "3", "4"],
                  "text": ["jane@example.com", "bob@other.org", "export fails", "export fails again"]}).to_csv(src, index=False)
    out = tmp_path / "groups.csv"
    assert main(["dedupe", "--in", str(src), "--out", str(out), "--threshold", "0.5", "--quiet"]) == 0
    groups = pd.read_csv(out, dtype={"id": str})
    assert sorted(groups["id"]) == ["3", "4"]
    errors = pd.read_csv(tmp_path / "groups.errors.csv", dtype={"id": str})
    assert sorted(errors["id"]) == ["1", "2"] and set(errors["reason"]) == {"nothing but personal data (redacted)"}


def test_the_service_refuses_a_text_of_personal_data_alone(tmp_path):
    pytest.importorskip("fastapi")
    from _hostile_support import service_client

    with service_client(tmp_path, ["export fails", "csv broken", "add dark mode", "please add sso"],
                        ["bug", "bug", "request", "request"]) as api:
        r = api.post("/v1/backlog", json={"items": [{"id": "E1", "text": "jane@example.com"}]})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_text"
        assert api.post("/v1/backlog", json={"items": [{"id": "E2", "text": "mail bob@other.org: export fails"}]}).status_code == 200
        r = api.post("/v1/duplicates", json={"items": [{"text": "export fails"}]})
        assert [m["id"] for m in r.json()["results"][0]["matches"]] == ["E2"]


# --- groups ----------------------------------------------------------------------------------------------


def test_groups_min_size_one_puts_every_item_in_exactly_one_group():
    """min_size=1 was accepted, yet an item without duplicates was in no group: the output equalled min_size=2."""
    d = Deduper(HashEmbedder(), threshold=0.8).fit(["export fails", "export fails", "dark mode please", "sso login"],
                                                    ids=["A", "B", "C", "D"])
    g = d.groups(min_size=1)
    assert sorted(g["id"]) == ["A", "B", "C", "D"] and g["id"].is_unique
    assert g.groupby("group")["is_representative"].sum().eq(1).all()
    assert g[g["id"].isin(["C", "D"])]["group"].tolist() == [1, 2]  # after the real groups, in index order
    assert d.groups(min_size=2)["id"].tolist() == ["A", "B"]


# --- parameters set after fit ----------------------------------------------------------------------------


@pytest.mark.parametrize(("param", "value"), [("threshold", 85), ("threshold", -1.0), ("threshold", float("nan")),
                                              ("lexical_scale", 0.0), ("lexical_weight", -0.3)])
def test_a_parameter_set_after_fit_is_checked_when_it_is_used(param, value):
    """pairs() and groups() read self.threshold at the call: set_params(threshold=85) (a percentage) after fit
    kept exact copies alone, -1 listed every pair; lexical_scale=0 made find()'s order NaN-sorted."""
    d = Deduper(HashEmbedder()).fit(["export fails", "export fails", "dark mode"], ids=["A", "B", "C"])
    d.set_params(**{param: value})
    for call in (d.pairs, d.groups, lambda: d.find("export fails")):
        with pytest.raises(InvalidInputError, match=param):
            call()
    d.set_params(threshold=0.9, lexical_scale=20.0, lexical_weight=0.3)  # a valid change needs no refit
    assert d.pairs()[["id_a", "id_b"]].values.tolist() == [["A", "B"]]


def test_add_without_ids_says_why_its_numbers_clash():
    d = Deduper(HashEmbedder()).fit(["export fails", "dark mode"], ids=[2, 7])
    with pytest.raises(InvalidInputError, match="pass ids="):
        d.add(["sso login"])
    assert d.add(["sso login"], ids=[8]).ids_ == [2, 7, 8]


# --- the service's duplicate search ----------------------------------------------------------------------


def test_the_service_finds_every_exact_copy_at_min_score_one(tmp_path):
    """A float32 vector times its copy is 1 ± 6e-7: min_score=1.0 kept 36 of 60 exact copies."""
    pytest.importorskip("fastapi")
    from _hostile_support import service_client

    words = [f"word{i}" for i in range(300)]
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words, int(rng.integers(3, 15)))) for _ in range(60)]
    with service_client(tmp_path, ["export fails", "csv broken", "add dark mode", "please add sso"],
                        ["bug", "bug", "request", "request"]) as api:
        assert api.post("/v1/backlog", json={"items": [{"id": f"B{i}", "text": t} for i, t in enumerate(texts)]}).status_code == 200
        r = api.post("/v1/duplicates", json={"items": [{"text": t} for t in texts], "k": 1, "min_score": 1.0}).json()
        assert [[m["id"] for m in x["matches"]] for x in r["results"]] == [[f"B{i}"] for i in range(60)]


@pytest.mark.parametrize("value", [float("nan"), -1.0, 0.0, 85, True, "0.9"])
def test_the_service_refuses_a_duplicate_threshold_that_is_no_similarity(tmp_path, value):
    """NaN flagged no match as a duplicate, -1 every match, 85 (a percentage) none."""
    from feedback_nlp.service import ServiceConfig

    with pytest.raises(InvalidInputError, match="duplicate_threshold"):
        ServiceConfig(data_dir=tmp_path, duplicate_threshold=value)
    assert ServiceConfig(data_dir=tmp_path, duplicate_threshold=1.0).duplicate_threshold == 1.0
