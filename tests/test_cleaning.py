import pytest

from feedback_nlp.cleaning import (
    clean_text,
    html_to_text,
    redact_pii,
    strip_quoted_reply,
    strip_signature,
    text_problem,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<p>Export <b>fails</b></p><p>again</p>", "Export fails again"),
        ("<div>Hi<br>there</div><script>var x = 1;</script><style>p{}</style>", "Hi there"),
        ("Tom &amp; Jerry &lt;3", "Tom & Jerry <3"),
        ("<div>new</div><blockquote>old quoted thread</blockquote>", "new"),
        ("a < b and c > d is not HTML", "a < b and c > d is not HTML"),
    ],
)
def test_html(raw, expected):
    assert clean_text(raw, redact=False) == expected


def test_html_keeps_angle_bracket_addresses():
    assert "bob" not in html_to_text("<p>From Bob <bob@x.io></p>") or "<bob@x.io>" in html_to_text("<p>From Bob <bob@x.io></p>")
    assert clean_text("<p>From Bob <bob@x.io></p>") == "From Bob <EMAIL>"


@pytest.mark.parametrize(
    "raw",
    [
        "The export is broken.\n\nOn Mon, Apr 6, 2026 at 9:14 AM Support <help@x.io> wrote:\n> Could you tell us more?",
        "The export is broken.\n-----Original Message-----\nFrom: help@x.io\nolder text",
        "The export is broken.\n> quoted line\n> another",
        "The export is broken.\nAm 06.04.2026 um 09:14 schrieb Support <help@x.io>:\n> alt",
    ],
)
def test_quoted_replies_removed(raw):
    assert clean_text(raw) == "The export is broken."


@pytest.mark.parametrize("raw", ["> sign replaced $ at the cursor in the terminal", ">:( the app closes every time"])
def test_leading_angle_bracket_is_not_a_quote_when_nothing_else_remains(raw):
    assert clean_text(raw) == raw


def test_reply_header_on_first_line_is_kept():
    # A forwarded message that starts with a header is all content; do not delete it.
    assert "invoice" in strip_quoted_reply("From: finance@acme.io\nThe invoice is wrong")


@pytest.mark.parametrize(
    "raw",
    [
        "Dark mode please.\n\nThanks,\nJane Doe\nHead of Ops, Acme",
        "Dark mode please.\n-- \nJane Doe | Acme | +1 555 0100",
        "Dark mode please.\nSent from my iPhone",
        "Dark mode please.\n\nBest regards,\nJane",
        "Dark mode please.\n\nCheers",
    ],
)
def test_signatures_removed(raw):
    assert clean_text(raw) == "Dark mode please."


def test_signoff_inside_long_text_is_kept():
    text = "Thanks\nfor the quick fix yesterday, the sync works again and the whole team noticed the difference"
    assert "sync works" in strip_signature(text)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("write to jane.doe+ops@acme-corp.co.uk today", "write to <EMAIL> today"),
        ("chloé.müller@exämple.de", "<EMAIL>"),
        ("call +44 20 7946 0958 or +1 (415) 555-2671", "call <PHONE> or <PHONE>"),
        ("US office (415) 555-2671", "US office <PHONE>"),
        ("card 4111 1111 1111 1111 was charged", "card <CARD> was charged"),
        ("card 4111-1111-1111-1111", "card <CARD>"),
        ("IBAN DE89 3704 0044 0532 0130 00 please", "IBAN <IBAN> please"),
        ("GB82WEST12345698765432", "<IBAN>"),
        ("open https://app.acme.io/x?access_token=abc.def.ghi now", "open <URL> now"),
        ("https://user:hunter2@git.acme.io/repo", "<URL>"),
    ],
)
def test_pii_positive(raw, expected):
    assert redact_pii(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "order 4111 1111 1111 1112 shipped",  # fails Luhn: an order number, not a card
        "released version 3.10.2 on 2024-05-01",
        "ticket #123456 and build 20240501",
        "DE89 3704 0044 0532 0130 01",  # fails the IBAN mod-97 check
        "see https://docs.acme.io/guide?page=2 for details",
        "we have 12 seats and 400 tasks",
        "user @jane mentioned it",
    ],
)
def test_pii_negative(raw):
    assert redact_pii(raw) == raw


def test_unicode_and_whitespace():
    assert clean_text("caf\u0065\u0301\u200b  is\t\n open\u00a0now") == "café is open now"
    assert clean_text("ｆｕｌｌｗｉｄｔｈ") == "fullwidth"


def test_clean_text_type_error():
    with pytest.raises(TypeError, match="expects str"):
        clean_text(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty text"),
        ("   \n ", "empty text"),
        (None, "missing text"),
        (b"\x00\x01", "binary"),
        ("abc\x00\x01\x02\x03def", "binary"),
        ("!!! ???", "no letters or digits"),
        ("x" * 30_000, "too long"),
        ("<p></p>", "empty text"),
    ],
)
def test_text_problem(raw, reason):
    assert reason in text_problem(raw)


def test_text_problem_ok():
    assert text_problem("Export fails") is None


# --- widened PII redaction, on the labelled set shared with benchmarks/pii.py ----------------------

def _pii_cases(split):
    import json
    from pathlib import Path

    path = Path(__file__).parent / "fixtures" / "ingest" / "pii_labelled.jsonl"
    return [c for c in map(json.loads, path.read_text(encoding="utf-8").splitlines()) if c["split"] == split]


@pytest.mark.parametrize("case", _pii_cases("dev"), ids=lambda c: (c["kind"] or "neg") + ":" + c["text"][:30])
def test_pii_labelled_dev_cases(case):
    out = redact_pii(case["text"])
    if case["kind"] is None:
        assert out == case["text"]  # a look-alike (version, order id, date, time, hash) stays intact
    else:
        assert f"<{case['kind']}>" in out and case["secret"] not in out


def test_pii_heldout_cases_stay_above_the_documented_figures():
    # held-out cases were written after the rules were frozen; docs/benchmarks.md reports them
    cases = _pii_cases("heldout")
    found = [f"<{c['kind']}>" in (o := redact_pii(c["text"])) and c["secret"] not in o for c in cases if c["kind"]]
    untouched = [redact_pii(c["text"]) == c["text"] for c in cases if c["kind"] is None]
    assert sum(found) / len(found) >= 0.9 and sum(untouched) / len(untouched) >= 0.9


@pytest.mark.parametrize(("raw", "expected"), [
    ("key sk-proj-4f9XbQ2mT7LpZs81aK3vWcY0, ip 10.1.2.3", "key <SECRET>, ip <IP>"),
    ("ssn 123-45-6789 / ticket 123-45-6789", "ssn <SSN> / ticket 123-45-6789"),
    ("call me on 4155552671 about order 4155552671", "call me on <PHONE> about order 4155552671"),
])
def test_pii_context_rules(raw, expected):
    assert redact_pii(raw) == expected
