"""Round 9b: privacy. Redaction measured on a span corpus (with a floor), formats it used to miss, look-alikes it
used to eat, regex run time on adversarial input, and PII that reached storage past the redactor (service
metadata)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from _hostile_support import slow_redaction
from feedback_nlp.cleaning import clean_text, redact_pii

ROOT = Path(__file__).resolve().parent.parent


def _benchmark():
    spec = importlib.util.spec_from_file_location("pii_redaction", ROOT / "benchmarks" / "pii_redaction.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the measured floor ---------------------------------------------------------------------------

def test_pii_span_corpus_holds_its_floor():
    """docs/benchmarks.md reports these figures; a change that loses recall or eats look-alikes fails here.
    Before this round: dev recall 0.603 / false positives 0.043, held-out 0.608 / 0.093, held-out 2 0.667 / 0.038."""
    bench = _benchmark()
    result = bench.evaluate_splits(bench.load_corpus())
    dev, all_ = result["dev"]["overall"], result["all"]
    assert dev["recall"] >= 0.98 and dev["false_positive_rate"] <= 0.02, dev
    for split in ("heldout", "heldout2"):
        heldout = result[split]["overall"]
        assert heldout["recall"] >= 0.9 and heldout["false_positive_rate"] <= 0.1, (split, heldout)
    weak = {k: r["recall"] for k, r in all_["recall"].items() if r["recall"] < 0.9}
    assert not weak, f"kinds under 0.9 recall: {weak}"


def test_corpus_labels_are_checked(tmp_path):
    """A label that is not in its text, or a card number that fails Luhn, is the corpus's error: refused."""
    import json

    bench = _benchmark()
    path = tmp_path / "cases.jsonl"
    for case, message in ((dict(text="card 4111 1111 1111 1112", pii=[["CARD", "4111 1111 1111 1112"]]), "Luhn"),
                          (dict(text="mail a@b.io", pii=[["EMAIL", "c@d.io"]]), "not in its text")):
        path.write_text(json.dumps({"id": 0, "keep": [], **case}), encoding="utf-8")
        with pytest.raises(ValueError, match=message):
            bench.load_corpus(path)


# --- formats that were missed --------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "secret"), [
    ("write to mark [at] example [dot] com", "mark [at] example [dot] com"),
    ("my email is priya(at)startup(dot)io", "priya(at)startup(dot)io"),
    ("email me at sam AT example DOT org", "sam AT example DOT org"),
    ("my gmail: john . smith @ gmail . com", "john . smith @ gmail . com"),
    ("Мой адрес иван.петров@почта.рф", "иван.петров@почта.рф"),  # a Unicode top-level domain
    ("https://news.acme.io/unsub?email=olga%40example.net&list=7", "olga%40example.net"),  # URL-encoded @
])
def test_obfuscated_encoded_and_unicode_emails(raw, secret):
    out = redact_pii(raw)
    assert secret not in out and "<EMAIL>" in out, out


@pytest.mark.parametrize("phone", [
    "(020) 7946 0958", "0044 7700 900123", "0049 89 1234567", "089 12 34 56 78", "098765 43210",
    "(11) 91234-5678", "(21) 3456-7890", "03-1234-5678", "090-1234-5678", "0120-123-456", "1-800-555-0199",
    "1 415 555 2671", "06-12345678", "1 (800) 555-0100",
])
def test_national_phone_formats(phone):
    assert redact_pii(f"call me on {phone} today") == "call me on <PHONE> today"


def test_phone_extension_goes_with_its_number_and_is_not_counted():
    # 12 digits + a 5-digit extension: counting the extension made it 17 digits, "not a phone"
    assert redact_pii("ring +44 20 7946 0958 ext 12345 now") == "ring <PHONE> now"
    assert redact_pii("direct line 415-555-2671 x12") == "direct line <PHONE>"


def test_dashes_that_are_not_hyphens():
    # word processors and phones type en dashes; NFKC leaves them
    assert clean_text("card 4111–1111–1111–1111 and 415—555—2671") == "card <CARD> and <PHONE>"


def test_iban_lower_case_and_followed_by_a_word():
    assert redact_pii("iban de89370400440532013000 ok") == "iban <IBAN> ok"
    # the optional last group swallowed " is", the check failed and the IBAN was kept
    assert redact_pii("BE68539007547034 is my account") == "<IBAN> is my account"


@pytest.mark.parametrize(("raw", "secret"), [
    ("key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMx\nVTLw7onLRnrq0\n-----END RSA PRIVATE "
     "KEY-----\nfails", "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMx"),
    ("-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjEAAAAABG5vbmU (cut here", "b3BlbnNzaC1rZXktdjEAAAAABG5vbmU"),
    ("Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l", "YWxhZGRpbjpvcGVuc2VzYW1l"),
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("my password is Summer2024! and it fails", "Summer2024"),
    ("pwd: hunter2 doesn't work", "hunter2"),
    ("my PIN is 4921", "4921"),
    ("npm_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789 revoked", "npm_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"),
    ("hf_aBcDeFgHiJkLmNoPqRsTuVwXyZ01234567 token", "hf_aBcDeFgHiJkLmNoPqRsTuVwXyZ01234567"),
    ("whsec_aBcDeFgHiJkLmNoPqRsTuVwXyZ012345", "whsec_aBcDeFgHiJkLmNoPqRsTuVwXyZ012345"),
    ("SG.aBcDeFgHiJkLmNoPqRsTuV.wXyZ0123456789aBcDeFgHiJkLmN", "wXyZ0123456789aBcDeFgHiJkLmN"),
])
def test_secrets_that_were_missed(raw, secret):
    out = redact_pii(raw)
    assert secret not in out and "<SECRET>" in out, out


@pytest.mark.parametrize(("raw", "secret"), [
    ("DATABASE_URL=postgres://app:s3cr3tP4ss@db:5432/prod", "s3cr3tP4ss"),  # any scheme, not only http/ftp
    ("amqp://guest:Gu3stPw@rabbit:5672/", "Gu3stPw"),
    ("redis://:Zx9kLm2q@cache:6379/0", "Zx9kLm2q"),  # an empty user name
    ("https://hooks.slack.com/services/T024BE7LD/B01ABCDEF12/aBcDeFgHiJkLmNoPqRsTuVwX", "aBcDeFgHiJkLmNoPqRsTuVwX"),
    ("https://b.s3.amazonaws.com/r.pdf?X-Amz-Signature=fe5f80f77d5fa3beca038a248ff027d0", "fe5f80f77d5fa3beca038a248ff027d0"),
    ("https://app.acme.io/auth/magic?t=Q2hhbmdlTWVQbGVhc2UxMjM0NTY3ODkw", "Q2hhbmdlTWVQbGVhc2UxMjM0NTY3ODkw"),
    ("https://acme.io/reset-password/9f86d081884c7d659a2feaa0c55ad015", "9f86d081884c7d659a2feaa0c55ad015"),
])
def test_urls_carrying_credentials(raw, secret):
    assert secret not in redact_pii(raw)


@pytest.mark.parametrize("address", [
    "221B Baker Street", "1600 Amphitheatre Parkway", "42 Wallaby Way", "7 Elm St.", "Musterstraße 12",
    "12 rue de la Paix",
])
def test_street_addresses(address):
    assert redact_pii(f"ship to {address}, please") == "ship to <ADDRESS>, please"


@pytest.mark.parametrize(("raw", "kind", "value"), [
    ("my DOB is 12/03/1985 and the form rejects it", "DOB", "12/03/1985"),
    ("born on 3 March 1979, can't verify age", "DOB", "3 March 1979"),
    ("Geburtsdatum 01.02.1988", "DOB", "01.02.1988"),
    ("NINO AB123456D on the payslip", "NATIONAL_ID", "AB123456D"),
    ("CPF 529.982.247-25 não confere", "NATIONAL_ID", "529.982.247-25"),
    ("meu cpf é 52998224725", "NATIONAL_ID", "52998224725"),
    ("DNI 12345678Z rechazado", "NATIONAL_ID", "12345678Z"),
    ("Aadhaar 2345 6789 0124 linked", "NATIONAL_ID", "2345 6789 0124"),
    ("passport number 533401372 expired", "NATIONAL_ID", "533401372"),
    ("driver's license D1234-56789-01234 scanned", "NATIONAL_ID", "D1234-56789-01234"),
    ("https://colab.research.google.com/drive/1ecuUD2sxfuM6IOhjZEW3ls-jvbpJEei4?usp=sharing", "URL", "1ecuUD2sx"),
])
def test_dates_of_birth_national_ids_and_share_links(raw, kind, value):
    out = redact_pii(raw)
    assert value not in out and f"<{kind}>" in out, out


@pytest.mark.parametrize("text", [
    "released on 12/03/1985 per the changelog", "birthday feature request: show birthdays on 2024-05-01",
    "order 529.982.247 shipped", "request 1234 5678 9012 pending", "passport photos upload fails",
    "CPF 111.111.111-11 is the example",
    "see https://docs.aws.amazon.com/sdk/latest/javadoc/com/amazonaws/auth/WebIdentityTokenCredentialsProvider.html",
    "src/fs/s3a/commit/magic/MagicCommitTracker.java at https://github.com/apache/hadoop/blob/trunk/magic/MagicCommitTracker.java",
    "env: PWD=/home/ci/build TF2_BEHAVIOR=1",
    "https://shop.acme.io/checkout?country_code=US&zip_code=94043&sort_key=price",  # codes and keys, not secrets
])
def test_id_and_url_rules_leave_look_alikes(text):
    assert redact_pii(text) == text


def test_a_card_is_not_read_as_an_aadhaar():  # a guard of the new Aadhaar rule
    # 5105 1051 0510 (a card's first twelve digits) passes Verhoeff by chance
    assert redact_pii("charged on 5105 1051 0510 5100 again") == "charged on <CARD> again"


# --- look-alikes that were eaten, and those the new rules must leave ---------------------------------

@pytest.mark.parametrize("text", [
    "asset icon@2x.png is blurry",  # a retina asset, not an address
    "git clone git@github.com:acme/app.git fails",  # an SSH remote
    "see section 4.2.1.3 of the manual",
    "upgraded from 10.4.2.1 to 10.5.0.0 and lost data",
    "ISBN 978-1-4028-9462-6 and 9781402894626",  # Luhn-valid by chance: no card network issues from 9
    # found on the shared data sets' GitHub issues (benchmarks/pii_redaction.py --real): CARD 75 -> 4, IP 234 -> 86
    "black-formatter|ms-|2023.15.12301919 python",  # an extension's version: Luhn-valid by chance, not in fours
    "std::unique_ptr<Handler> >::~unique_ptr (this=0x0)",  # C++'s "::" parsed as the IPv6 "any" address
    "pip install nvidia-cudnn-cu11==8.6.0.163", "Node.js: 18.15.0 V8: 11.4.183.29-electron.0",
    "rpcallowip=127.0.0.1 and bind ::1",  # loopback names no one
])
def test_look_alikes_that_were_redacted_survive(text):
    assert redact_pii(text) == text


@pytest.mark.parametrize("text", [
    "https://github.com/acme/app/commit/9fceb02d0ae598e95dc970b74767f19372d61af8",  # lower-case hex: no token
    "see https://docs.acme.io/guide/auth?page=2#tokens",
    "the password reset email never arrives", "my password is wrong apparently", "api key: not shown",
    "postcode SW1A 1AA and zip 94043", "I have 3 Apple Watch straps", "version 2 Road map review",
    "broken since 01.05.2026 10:30 and 05/01/2026", "Amazon order 112-3456789-1234567", "sold 0412 units",
    "https://stackoverflow.com/questions/12345/How-To-Parse-JSON-in-Python3",  # a slug, not a token
    "https://blog.acme.io/2024/05/Release-Notes-For-Version-3-Of-The-App",
    "Step 3 Click Place Order fails", "I have 2 Google Drive accounts", "2 Hard Drive failures", "press step 4 Close",
])
def test_new_rules_leave_look_alikes_alone(text):
    """Guards of this round's wider rules (URL tokens, passwords, addresses, trunk-0 phones)."""
    assert redact_pii(text) == text


# --- run time on adversarial input -------------------------------------------------------------

_UNITS = ["a", "1", "1 ", "1.", "1-", "a@", "a.", "@a.", ":", "1:", "+1 ", "0 ", "(1) ", "a@a.", "-", "x ",
          "http://a", "?token=", "Bearer ", "eyJ", "a [at] b [dot] ", "a (at) ", " . a", " @ ", "a AT b DOT ",
          "a at b dot ", "/Aa1", "=Aa1", "/reset/", "a_secret_", "password: ", "1 Aa ", "Aastraße ", "1 rue de ",
          "00 1-", "0 1 ", "01.", "(0) ", "1 (", "ext ", "%40", "a%40", "%40a.", "-----BEGIN PRIVATE KEY-----",
          "AA00", "aa00 ", "a+b://", "upgraded from 1.1.1.1 to ", "1–", "section 1.1.1.1 ", "dob 1", "born on 1 ", "Jan 1 ",
          "AB 12 ", "12345678", "X1234567 ", "cpf ", "123.456.789-", "2345 ", "passport ", "driver's license 1-",
          "pin is 1", "aws_secret_key=", "Authorization: Basic a", "a at b dot c ", "http://a/reset/Aa1", "Aa-"]


def test_redaction_stays_linear_on_adversarial_input():
    """50,000 characters of each repeated unit; a pattern that backtracks quadratically took 7-30 s here (the
    URL-encoded e-mail rule did before its start was anchored), the linear ones take well under 0.1 s."""
    slow = slow_redaction(_UNITS)
    assert not slow, f"super-linear redaction on: {slow}"


# --- service: metadata is redacted like the text -------------------------------------------------

def test_service_redacts_metadata_values_unless_kept(api):
    state = api.app.state.service
    body = {"items": [{"id": "m-1", "text": "Export fails, mail ann@example.com",
                       "metadata": {"reporter": "ann@example.com", "phone": "+44 20 7946 0958", "owner": "bo@acme.io",
                                    "votes": 3, "plan": "enterprise"}}]}
    state.config.keep_metadata = ("owner",)
    try:
        assert api.post("/v1/backlog", json=body).status_code == 200
        got = api.get("/v1/backlog/m-1").json()
    finally:
        state.config.keep_metadata = ()
    assert got["text"] == "Export fails, mail <EMAIL>"
    assert got["metadata"] == {"reporter": "<EMAIL>", "phone": "<PHONE>", "owner": "bo@acme.io", "votes": 3,
                               "plan": "enterprise"}


def test_service_config_keep_metadata_takes_one_name_as_a_string():
    from feedback_nlp.service import ServiceConfig

    assert ServiceConfig(keep_metadata="email").keep_metadata == ("email",)


# --- error messages quote cells: redacted -----------------------------------------------------------

def test_score_errors_do_not_quote_pii(tmp_path, capsys):
    from feedback_nlp.cli import main

    rice = tmp_path / "rice.csv"
    rice.write_text("id,reach,impact,confidence,effort\n1,jane.doe@acme.io,2,0.8,3\n", encoding="utf-8")
    demand = tmp_path / "demand.csv"
    demand.write_text("id,theme,account,revenue\n1,a,x,10\n2,a,y,paid by 4111 1111 1111 1111\n", encoding="utf-8")
    assert main(["score", "--framework", "rice", "--in", str(rice), "--out", str(tmp_path / "r.csv")]) == 1
    assert main(["score", "--framework", "demand", "--group-col", "theme", "--account-col", "account",
                 "--revenue-col", "revenue", "--time-col", "", "--in", str(demand), "--out", str(tmp_path / "d.csv")]) == 1
    err = capsys.readouterr().err
    assert "(e.g. '<EMAIL>')" in err and "(e.g. 'paid by <CARD>')" in err, err
    assert "jane.doe" not in err and "4111" not in err


def test_theme_scores_errors_do_not_quote_pii():
    import pandas as pd

    from feedback_nlp.errors import ColumnError
    from feedback_nlp.scoring import theme_scores

    df = pd.DataFrame({"theme": ["a", "b"], "account_id": [["jane@acme.io"], "x"], "revenue": [1, "jane@acme.io"]})
    for kwargs in (dict(account_col="account_id", revenue_col=None), dict(account_col=None, revenue_col="revenue")):
        with pytest.raises(ColumnError, match="<EMAIL>") as info:
            theme_scores(df, theme_col="theme", time_col=None, **kwargs)
        assert "jane@" not in str(info.value)
    with pytest.raises(ColumnError, match="<EMAIL>"):
        theme_scores(df.assign(theme=[{"k": "jane@acme.io"}, "b"]), theme_col="theme", time_col=None,
                     account_col=None, revenue_col=None)


def test_quoted_cell_cuts_at_a_space_before_redacting():
    from feedback_nlp.errors import quoted_cell

    # six long addresses shrink to placeholders, so the 320-character cut lands inside the display: cut there, it
    # left "jane.doe@acme", which no rule finds, in the message
    text = "alexander.hamilton.the.first@example-company.com " * 6 + "abcdefghijkl jane.doe@acme.io tail"
    assert text.index("jane") < 320 < text.index("jane") + len("jane.doe@acme.io")
    shown = quoted_cell(text)
    assert "jane" not in shown and shown.startswith("'<EMAIL> <EMAIL>"), shown
    assert quoted_cell(4111111111111111) == "'<CARD>'"


# --- ingest: the url and author columns are redacted like the text ------------------------------

def test_url_and_author_columns_are_redacted_at_ingest(tmp_path):
    from feedback_nlp import read_feedback

    path = tmp_path / "in.csv"
    path.write_text("id,text,author,url\n"
                    "1,Export fails,jane.doe@acme.io,https://app.acme.io/reset?token=9a8b7c6d5e4f\n"
                    "2,Dark mode,Ana Souza,https://app.acme.io/reports\n", encoding="utf-8")
    records = read_feedback(path).records
    assert records["author"].tolist() == ["<EMAIL>", "Ana Souza"]  # a name stays: it is provenance
    assert records["url"].tolist() == ["<URL>", "https://app.acme.io/reports"]
    raw = read_feedback(path, clean=False).records  # asked for raw: raw
    assert raw.loc[0, "author"] == "jane.doe@acme.io"


def test_intercom_page_url_is_redacted(tmp_path):
    import json

    from feedback_nlp import read_feedback

    conv = {"id": "1", "created_at": 1700000000, "state": "open",
            "source": {"type": "conversation", "id": "9", "body": "<p>Export fails</p>",
                       "author": {"type": "user", "id": "u1", "name": "Jane"},
                       "url": "https://app.acme.io/unsubscribe?email=jane.doe%40acme.io"},
            "conversation_parts": {"conversation_parts": []}}
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps({"conversations": [conv]}), encoding="utf-8")
    records = read_feedback(path, format="intercom").records
    assert "jane" not in str(records["page_url"].tolist()) and records["text"].tolist() == ["Export fails"]


def test_serve_keep_metadata_option_is_parsed():
    from feedback_nlp.cli import build_parser

    args = build_parser().parse_args(["serve", "--keep-metadata", "owner", "--keep-metadata", "link"])
    assert args.keep_metadata == ["owner", "link"]
    assert build_parser().parse_args(["serve"]).keep_metadata is None  # none kept: every string value redacted
