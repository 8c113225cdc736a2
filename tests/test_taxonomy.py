import json

import pytest

from feedback_nlp import TaxonomyError, UnknownTagError
from feedback_nlp.datasets import sample_taxonomy_path
from feedback_nlp.taxonomy import Tag, Taxonomy


def test_sample_taxonomy_loads():
    tax = Taxonomy.load(sample_taxonomy_path())
    assert "billing" in tax and tax["billing"].parent == "product_area"
    assert tax.ancestors("bug") == ["request_type"]
    assert set(tax.facets()) == {"product_area", "request_type"}
    assert tax.with_ancestors(["bug", "export"]) == ["product_area", "export", "request_type", "bug"]
    assert tax.at_level("bug", 0) == "request_type" and tax.at_level("bug", 1) == "bug"
    assert tax["bug"].examples


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ([{"id": "a", "name": "A"}, {"id": "a", "name": "A again"}], "duplicate tag id 'a'"),
        ([{"id": "a", "name": "A", "parent": "zzz"}], "tag 'a' has unknown parent 'zzz'"),
        ([{"id": "a", "name": "A", "parent": "b"}, {"id": "b", "name": "B", "parent": "a"}], "tag 'a' is in a parent cycle"),
        ([{"id": "a", "name": ""}], "tag 'a' has an empty name"),
        ([{"id": "feature_request"}], "has an empty name: give it a 'name'.*'Feature request'"),
        ([{"id": "", "name": "A"}], "tag #0 has an empty id"),
        ([{"id": "a", "name": "A", "colour": "red"}], r"unknown field\(s\) \['colour'\]"),
        ([], "no tags"),
    ],
)
def test_validation_names_the_offender(tags, message):
    with pytest.raises(TaxonomyError, match=message):
        Taxonomy(tags)


def test_round_trip_yaml_and_json(tmp_path):
    tax = Taxonomy([Tag("area", "Area"), Tag("sso", "SSO", "Single sign-on", parent="area", examples=("okta please",))])
    for name in ("t.yaml", "t.json"):
        assert Taxonomy.load(tax.save(tmp_path / name)) == tax
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(TaxonomyError, match="not valid JSON"):
        Taxonomy.load(bad)
    (tmp_path / "nolist.json").write_text(json.dumps({"name": "x"}))
    with pytest.raises(TaxonomyError, match="'tags' list"):
        Taxonomy.load(tmp_path / "nolist.json")


def test_unknown_labels_are_listed_with_rows():
    tax = Taxonomy([{"id": "a", "name": "A"}, {"id": "b", "name": "B"}])
    with pytest.raises(UnknownTagError, match=r"'c' in rows \[1, 2\]"):
        tax.validate_labels([["a"], ["c"], ["b", "c"]])
    with pytest.raises(UnknownTagError, match="unknown tag 'zz'"):
        tax["zz"]
