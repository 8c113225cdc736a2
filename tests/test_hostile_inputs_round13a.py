"""Round 13a: privacy. Person names where a name is nearly certain (greetings, sign-offs, self-introductions, form
labels, the agent a ticket speaks of), national phone forms, passwords in other languages, share links, card and
one-time codes, cookies and more vendor tokens; their look-alikes; the span corpus's new floor; run time."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from _hostile_support import slow_redaction
from feedback_nlp.cleaning import clean_text, redact_pii

ROOT = Path(__file__).resolve().parent.parent


# --- person names ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "redacted"), [
    ("Hi John, the app crashes", "Hi <NAME>, the app crashes"),
    ("Hello Sarah Connor\nthe invoice is wrong", "Hello <NAME>\nthe invoice is wrong"),
    ("Hi Anne-Marie and Tom, thanks for the call", "Hi <NAME> and <NAME>, thanks for the call"),
    ("Dear Mr. John Smith,", "Dear Mr. <NAME>,"),  # the title stays
    ("Hallo Frau Müller, die App stürzt ab", "Hallo Frau <NAME>, die App stürzt ab"),
    ("Export broken. Thanks, Maria", "Export broken. Thanks, <NAME>"),
    ("Export broken.\nBest regards,\nJohn Smith", "Export broken.\nBest regards,\n<NAME>"),
    ("Love it! — Priya", "Love it! — <NAME>"),
    ("my name is Łukasz Nowak and I cannot log in", "my name is <NAME> and I cannot log in"),
    ("I'm Tom from Acme, we need 40 seats", "I'm <NAME> from Acme, we need 40 seats"),
    ("this is Anna from support", "this is <NAME> from support"),
    ("Agent Mike said he would call back", "Agent <NAME> said he would call back"),
    ("I spoke to Sarah who promised a refund", "I spoke to <NAME> who promised a refund"),
    ("your representative Mohammed was very helpful", "your representative <NAME> was very helpful"),
    ("a guy named Steve told me to reinstall", "a guy named <NAME> told me to reinstall"),
    ("Attendees: John Miller, Sarah Lee and Priya", "Attendees: <NAME>, <NAME> and <NAME>"),
    ("From: Helen Carter <helen@example.org>", "From: <NAME> <EMAIL>"),
    ("Me llamo Carlos Ruiz y no puedo entrar", "Me llamo <NAME> y no puedo entrar"),
])
def test_person_names_where_a_name_is_nearly_certain(raw, redacted):
    assert redact_pii(raw) == redacted


@pytest.mark.parametrize("text", [
    "Hi team, the app crashes", "Hello World example fails", "Hey Siri doesn't open the app", "Thanks, great app",
    "Thanks, Great App!", "I'm unable to log in", "I'm Android user", "Hi, I have a problem", "Hello, My card is blocked",
    "Hi there!", "Hi Res audio please", "Hello Kitty theme", "This is Spotify at its worst", "Dear developers, fix it",
    "The user agent string is wrong", "Travel Agent App crashes", "My name is not showing", "File name: Report.pdf",
    "From: Settings page", "- Login\n- Settings", "I spoke to support and they said wait", "Hi Support Team,",
    "Great app - Samsung Galaxy", "call me Monday please", "I'm Happy with it", "Thank you, LimbRetrieval-Bot!",
    "Hi Mom, look at this", "Keep the hat! -Rockstar", "I go by Ms., but my kids call me Miss, fine",
])
def test_name_look_alikes_stay(text):
    assert redact_pii(text) == text


def test_a_sign_off_name_is_redacted_by_clean_text_too():
    # strip_signature cuts a sign-off on its own line; one on the message's last line was kept with its name
    assert clean_text("The export fails since Monday. Thanks, Maria") == "The export fails since Monday. Thanks, <NAME>"


# --- phones, passwords, share links, codes, tokens -------------------------------------------------

@pytest.mark.parametrize("phone", [
    "(0)20 7946 0958", "(0)30 12345678", "11 98765-4321", "912 345-67-89", "8 (912) 345-67-89", "210 1234567",
    "694 1234567",
])
def test_national_phone_forms_that_were_missed(phone):
    assert redact_pii(f"call me on {phone} today") == "call me on <PHONE> today"


def test_bangla_digits_phone():
    assert redact_pii("ফোন (০১৭১১) ১২৩৪৫৬ এ") == "ফোন <PHONE> এ"


@pytest.mark.parametrize("text", [
    "season 12 2019-2020 results", "ticket 09 87 65 43 21 in the old system", "model number 0345-67890-12",
])
def test_phone_look_alikes_stay(text):
    assert redact_pii(text) == text


@pytest.mark.parametrize(("raw", "secret"), [
    ("Passwort ist Hallo123", "Hallo123"), ("mon mot de passe est Soleil2024!", "Soleil2024!"),
    ("mi contraseña es Gato_1234", "Gato_1234"), ("minha senha é Casa1234", "Casa1234"),
    ("mijn wachtwoord is Fiets123", "Fiets123"), ("moje hasło to Kot12345", "Kot12345"),
    ("my password was reset to Temp1234!", "Temp1234!"), ("login jsmith pw: hunter22", "hunter22"),
    ("CVV 123, exp 12/27", "123"), ("my OTP is 483921", "483921"), ("verification code: 552901", "552901"),
    ("Cookie: sessionid=abc123def456ghi789; csrftoken=xyz", "abc123def456ghi789"),
    ("AccountName=acme;AccountKey=AbCdEf1234567890abcdefGHIJ==;", "AbCdEf1234567890abcdefGHIJ=="),
    ("bot 123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1 stopped", "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"),
    ("notion secret_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefg", "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefg"),
])
def test_secrets_that_were_missed(raw, secret):
    out = redact_pii(raw)
    assert secret not in out and "<SECRET>" in out, out


@pytest.mark.parametrize("text", [
    "Passwort ist falsch", "la contraseña es incorrecta", "the password is case-sensitive",
    "> PASS: minisketch/test", "-datadir=$PWD -daemon=1", "vtable for ngraph::pass::SmartReshape",
    "error code 500123", "zip code: 94043", "Cookie consent banner", "changed my password on 12/03/2024",
])
def test_secret_look_alikes_stay(text):
    assert redact_pii(text) == text


@pytest.mark.parametrize("url", [
    "https://www.dropbox.com/s/x7k2m9q4w8e1r5t/report.pdf?dl=0",
    "https://www.dropbox.com/scl/fi/abc123def/report.pdf?rlkey=abcd1234efgh&dl=0",
    "https://we.tl/t-AbCdEf1234", "https://1drv.ms/u/s!AbCdEf12", "https://mega.nz/file/AbCd1234#KeyKeyKey123",
    "https://www.loom.com/share/e356cf5d261e49f4b9f724a123349db9",
])
def test_share_links_are_redacted(url):
    assert redact_pii(f"see {url} please") == "see <URL> please"


def test_plain_links_of_the_same_hosts_stay():
    text = "see https://www.dropbox.com/help and https://box.com/pricing"
    assert redact_pii(text) == text


# --- the measured floor ----------------------------------------------------------------------------

def test_round13_span_cases_hold_their_floor():
    """docs/benchmarks.md reports these: the round-13 cases (names, phones, passwords, links, codes; before: recall
    0.015, 3/46 look-alikes altered) and the 40 held-out ones written after the rules (before: recall 0.0)."""
    spec = importlib.util.spec_from_file_location("pii_redaction", ROOT / "benchmarks" / "pii_redaction.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.evaluate_splits(bench.load_corpus())
    r13, h3 = result["round13"]["overall"], result["heldout3"]["overall"]
    assert r13["recall"] >= 0.98 and r13["false_positive_rate"] <= 0.03, r13
    assert h3["recall"] >= 0.9 and h3["false_positive_rate"] <= 0.15, h3
    assert result["all"]["recall"]["NAME"]["recall"] >= 0.95
    assert result["round13"]["false_positives"]["name-like"]["altered"] == 0


# --- run time --------------------------------------------------------------------------------------

_UNITS = ["Hi ", "Hi Aa, ", "Hi Aa\n", "Thanks,\n", "Thanks, Aa ", "Aa ", "Aa", "Aa Aa Aa ", "Name: Aa, ", "\n— Aa",
          ". — Aa ", "(0)1 ", "11 9", "912 345-67-", "I'm Aa ", "agent Aa ", "spoke to Aa ", "Passwort ist ", "pw: ",
          "cookie: a=", "CVV ", "my name is Aa ", "Dear Mr ", "Hi Aa and ", "From: Aa ", ".  ", "\n ", "Aa-", "O'",
          "Hi Aa de ", "https://db.tt/a", "Attendees: Aa, Aa and ", "\nHi Aa Aa Aa", "1" * 32 + "-us"]


def test_new_rules_stay_linear_on_adversarial_input():
    slow = slow_redaction(_UNITS)
    assert not slow, f"super-linear redaction on: {slow}"
