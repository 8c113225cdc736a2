"""Round 14f: hand-written taxonomy files (YAML/JSON) and the zero-shot cold start from tag descriptions.

A product-ops user edits the taxonomy by hand: keys written twice, NaN or binary values, absurd nesting and a
description of ``0`` must be refused or kept as written, never silently changed. No model is loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from feedback_nlp import InvalidInputError, TagClassifier, Taxonomy, TaxonomyError


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_yaml_second_tags_block_is_refused_not_dropping_the_first(tmp_path: Path) -> None:
    # was: PyYAML kept the last "tags:", so the first block's tags vanished without a word
    path = _write(tmp_path, "t.yaml", "tags:\n- {id: billing, name: Billing}\n- {id: export, name: Export}\n"
                                      "tags:\n- {id: login, name: Login}\n")
    with pytest.raises(TaxonomyError, match=r"(?s)'tags' is written twice.*line 4"):
        Taxonomy.load(path)


def test_yaml_tag_with_id_written_twice_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "t.yaml", "tags:\n- id: billing\n  name: Billing\n  id: invoices\n")
    with pytest.raises(TaxonomyError, match="'id' is written twice"):
        Taxonomy.load(path)


def test_json_key_written_twice_is_refused(tmp_path: Path) -> None:
    # was: {"id": "a", "id": "b"} loaded as tag "b"
    path = _write(tmp_path, "t.json", '{"tags": [{"id": "a", "id": "b", "name": "A"}]}')
    with pytest.raises(TaxonomyError, match="'id' is named twice"):
        Taxonomy.load(path)


def test_same_key_in_different_tags_is_fine(tmp_path: Path) -> None:
    path = _write(tmp_path, "t.yaml", "name: t\ntags:\n- {id: a, name: A}\n- {id: b, name: B}\n")
    assert Taxonomy.load(path).ids == ["a", "b"]


def test_huge_json_number_is_a_taxonomy_error(tmp_path: Path) -> None:
    # was: a bare ValueError (Python's int-digits limit) escaped load()
    path = _write(tmp_path, "t.json", '{"tags": [{"id": ' + "9" * 5000 + ', "name": "A"}]}')
    with pytest.raises(TaxonomyError, match="not valid JSON"):
        Taxonomy.load(path)


def test_absurdly_nested_yaml_is_a_taxonomy_error(tmp_path: Path) -> None:
    # was: a bare RecursionError from PyYAML's constructor
    path = _write(tmp_path, "t.yaml", "tags: " + "[" * 10_000 + "]" * 10_000)
    with pytest.raises(TaxonomyError, match="nested too deeply"):
        Taxonomy.load(path)


@pytest.mark.parametrize(("doc", "field"), [
    ('{"tags": [{"id": NaN, "name": "A"}, {"id": "b", "name": "B"}]}', "id"),
    ('{"tags": [{"id": "a", "name": Infinity}]}', "name"),
    ('{"tags": [{"id": "a", "name": "A", "description": -Infinity}]}', "description"),
])
def test_non_finite_numbers_are_not_turned_into_text(tmp_path: Path, doc: str, field: str) -> None:
    # was: the tag ids/names "nan" and "inf"
    with pytest.raises(TaxonomyError, match=f"as its {field}"):
        Taxonomy.load(_write(tmp_path, "t.json", doc))


def test_yaml_binary_id_is_refused(tmp_path: Path) -> None:
    # was: the tag id "b'hello'"
    path = _write(tmp_path, "t.yaml", "tags:\n- {id: !!binary aGVsbG8=, name: A}\n")
    with pytest.raises(TaxonomyError, match="as its id"):
        Taxonomy.load(path)


def test_description_zero_is_kept(tmp_path: Path) -> None:
    # was: description 0 (falsy) dropped to "", name 0 reported as "an empty name"
    tax = Taxonomy.load(_write(tmp_path, "t.json", '{"tags": [{"id": "a", "name": 0, "description": 0}]}'))
    assert (tax["a"].name, tax["a"].description) == ("0", "0")


def test_taxonomy_name_blank_or_not_text(tmp_path: Path) -> None:
    # was: a blank "name:" made the taxonomy "None"; a mapping became its repr
    assert Taxonomy.load(_write(tmp_path, "a.yaml", "name:\ntags:\n- {id: a, name: A}\n")).name == "taxonomy"
    with pytest.raises(TaxonomyError, match="name must be a text"):
        Taxonomy.load(_write(tmp_path, "b.yaml", "name: {x: 1}\ntags:\n- {id: a, name: A}\n"))


def test_yaml_written_in_a_txt_file_says_it_was_read_as_json(tmp_path: Path) -> None:
    path = _write(tmp_path, "taxonomy.txt", "tags:\n- {id: a, name: A}\n")
    with pytest.raises(TaxonomyError, match=r"read as JSON: name a YAML file \.yaml or \.yml"):
        Taxonomy.load(path)


@pytest.mark.parametrize(("extra", "message"), [
    ([{"id": "type", "name": "Type"}, {"id": "bug", "name": "Bug", "parent": "type"}], "facet 'type' has one tag only"),
    ([{"id": "other", "name": "Other"}], "'other' is the only top-level tag outside the facets"),
])
def test_zero_shot_refuses_a_facet_of_one_tag(hash_embedder: Any, extra: list[dict[str, str]], message: str) -> None:
    # was: every row got "bug" (or "other") with probability 1.0, whatever it said
    tags = [{"id": "area", "name": "Area"}, {"id": "billing", "name": "Billing", "parent": "area"},
            {"id": "export", "name": "Export", "parent": "area"}, *extra]
    with pytest.raises(InvalidInputError, match=message):
        TagClassifier(hash_embedder, Taxonomy.from_dict(tags), zero_shot=True).fit(None)


def test_yaml_null_id_says_to_quote_it(tmp_path: Path) -> None:
    # was: "tag #1 has an empty id" for a tag the user named null
    path = _write(tmp_path, "t.yaml", "tags:\n- {id: a, name: A}\n- {id: null, name: Null}\n")
    with pytest.raises(TaxonomyError, match=r"tag #1 has an empty id \(YAML reads null"):
        Taxonomy.load(path)
