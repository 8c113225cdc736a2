"""Text cleaning applied before anything is embedded, cached or saved.

Order matters: HTML is flattened first (so tags never hide PII), quoted replies and signatures are cut
while line structure still exists, PII is redacted into typed placeholders, and whitespace is collapsed
last. PII therefore never reaches the embedding cache or a model file.

Example:
    >>> clean_text("<p>Hi, card 4111 1111 1111 1111 fails</p>")
    'Hi, card <CARD> fails'
"""

from __future__ import annotations

import html
import re
import unicodedata
from html.parser import HTMLParser

__all__ = [
    "MAX_TEXT_CHARS",
    "clean_text",
    "html_to_text",
    "redact_pii",
    "strip_quoted_reply",
    "strip_signature",
    "text_problem",
]

#: Texts longer than this (after cleaning) are rejected by batch jobs rather than silently truncated.
MAX_TEXT_CHARS = 20_000

# --- HTML -----------------------------------------------------------------------------------------

_HTML_HINT = re.compile(
    r"<(?:/?(?:p|div|br|span|a|b|i|u|s|strong|em|ul|ol|li|table|tbody|thead|tr|td|th|h[1-6]|blockquote|pre"
    r"|code|img|html|body|head|script|style|font|hr|section|article|header|footer|meta|link|title)\b[^<>]*"
    r"|!--.*?--)>",
    re.S | re.I,
)
_ANGLE_EMAIL = re.compile(r"<([^<>\s]+@[^<>\s]+)>")
_BLOCK_TAGS = {"p", "div", "br", "li", "ul", "ol", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
               "pre", "table", "section", "article", "header", "footer", "hr"}
_SKIP_TAGS = {"script", "style", "head", "title", "noscript", "template"}


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._quote = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        # Gmail/Outlook wrap the quoted thread in <blockquote> or div.gmail_quote: drop it like "> " lines.
        classes = dict(attrs).get("class") or ""
        if tag == "blockquote" or "gmail_quote" in classes:
            self._quote += 1
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS and self._skip:
            self._skip -= 1
        if tag == "blockquote" and self._quote:
            self._quote -= 1
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip and not self._quote:
            self.parts.append(data)


def html_to_text(text: str) -> str:
    """Flatten HTML to plain text, keeping block boundaries as newlines and dropping scripts/quotes."""
    if "<" not in text and "&" not in text:  # fast path: most feedback is plain text
        return text
    if not _HTML_HINT.search(text):
        return html.unescape(text) if "&" in text else text
    parser = _TextExtractor()
    parser.feed(_ANGLE_EMAIL.sub(r"&lt;\1&gt;", text))  # "Bob <bob@x.io>" is an address, not a tag
    parser.close()
    return "".join(parser.parts)


# --- quoted replies and signatures ----------------------------------------------------------------

# Line-anchored patterns pad with [^\S\n]* (whitespace but newlines), never \s*: \s crosses newlines, so from every
# line start of a text of blank lines it ran to the end and back (20,000 newlines took minutes: a denial of service).
_REPLY_HEADER = re.compile(
    r"^[^\S\n]*(?:On\s.{0,200}?\bwrote:|Am\s.{0,200}?\bschrieb.{0,40}:|Le\s.{0,200}?\ba écrit\s?:"
    r"|-{2,}\s*Original Message\s*-{2,}|_{5,}|From:\s.+|-{2,}\s*Forwarded message\s*-{2,})[^\S\n]*$",
    re.I | re.M,
)
_QUOTE_LINE = re.compile(r"^\s*>(?:[ >\t]|$)")  # "> text" or ">> text"; not ">:(" emoticons
_SIG_DELIM = re.compile(r"^(?:--|—|__)[^\S\n]*$", re.M)
_MOBILE_SIG = re.compile(r"^[^\S\n]*(?:Sent from my \w[\w ]{0,30}|Get Outlook for \w+)[^\S\n]*$", re.I | re.M)
_SIGNOFF = re.compile(
    r"^\s*(?:best(?: regards| wishes)?|kind regards|regards|warm regards|many thanks|thanks(?: again)?"
    r"|thank you|cheers|sincerely|yours(?: truly)?|br)\s*[,!.]?\s*$",
    re.I,
)


def strip_quoted_reply(text: str) -> str:
    """Remove the quoted thread of an e-mail reply: ``>`` lines and everything after a reply header."""
    if "\n" not in text:  # one line: a header there starts the text and a lone ">" line is kept anyway
        return text
    m = _REPLY_HEADER.search(text)
    if m and text[: m.start()].strip():  # a header on the first (non-blank) line: the message is a forward, keep it
        text = text[: m.start()]
    kept = [line for line in text.split("\n") if not _QUOTE_LINE.match(line)]
    # A text made only of ">" lines is not a reply (e.g. "> sign missing in terminal"): keep it whole.
    return "\n".join(kept) if any(line.strip() for line in kept) else text


def strip_signature(text: str) -> str:
    """Remove an e-mail signature: the ``-- `` block, mobile footers, and a trailing sign-off + name."""
    if "\n" not in text:
        return _MOBILE_SIG.sub("", text) if ("Sent from" in text or "Get Outlook" in text) else text
    m = _SIG_DELIM.search(text)
    if m and m.start() > 0:
        text = text[: m.start()]
    text = _MOBILE_SIG.sub("", text)
    lines = text.rstrip().split("\n")
    # A sign-off ("Thanks,") in the last 4 lines, followed only by short name/title lines.
    for i in range(max(1, len(lines) - 4), len(lines)):
        if _SIGNOFF.match(lines[i]) and all(len(rest.strip()) <= 40 for rest in lines[i + 1:]):
            return "\n".join(lines[:i])
    return "\n".join(lines)


# --- PII ------------------------------------------------------------------------------------------

_SECRET_PARAM = (r"(?:access_?token|api_?key|apikey|auth|token|secret|password|passwd|pwd|sig|signature"
                 r"|session(?:_?id)?|sid|key|code|jwt|credential)")
_URL = re.compile(r"\b(?:https?|ftp)://[^\s<>\"']+", re.I)
_URL_SECRET = re.compile(rf"[?&#;]{_SECRET_PARAM}=[^&\s]+|//[^/\s:@]+:[^/\s@]+@", re.I)
_EMAIL = re.compile(r"(?<![\w.+-])[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b")  # \w: Unicode names too
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?\b")
_CARD = re.compile(r"(?<![\d.-])(?:\d[ .-]?){12,18}\d(?![\d-]|\.\d)")
# Phones: an international +CC number, or a grouped national number like (555) 123-4567 / 020 7946 0958 /
# 01 23 45 67 89 (FR) / 030 12345678 (DE) / 07700 900123 (UK mobile).
_PHONE = re.compile(
    r"(?<![\w+])(?<!\d[ .-])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){2,4}"
    r"|\(\d{3}\)[ .-]?\d{3}[ .-]?\d{4}"
    r"|\b\d{3}[.-]\d{3}[.-]\d{4}"
    r"|\b0\d{2,4}[ ]\d{3,4}[ ]\d{3,4}"
    r"|\b0\d(?:[ .]\d{2}){4}"
    r"|\b0\d{2,4}[ /-]\d{5,8}"
    r"|\b0\d{4}[ ]\d{6})(?![\w])(?![ .-]\d)"
)
# A bare run of 10-11 digits is a phone only when it starts with a national trunk 0 (07700900123) or a
# phone word comes just before it ("call me on 4155552671"); never after order/invoice/ticket words, so
# order and tracking numbers stay.
_BARE_DIGITS = re.compile(r"(?<![\w.+/-])(?:\d{10,11}|\d{3} \d{3} \d{4})(?![\w.-]|\.\d| \d)")
_PHONE_CUE = re.compile(r"\b(?:call|phone|tel|telephone|mobile|cell|cellphone|whats?app|sms|text me|ring|reach me"
                        r"|contact me|number|handy|portable|téléphone|telefon|móvil)\b[^\d\n]{0,20}$", re.I)
_ID_CUE = re.compile(r"(?:\b(?:order|invoice|ticket|case|ref|reference|tracking|account|acct|id|sku|build|po"
                     r"|transaction|txn|confirmation|booking|serial|version)\b|#)[^\d\n]{0,12}$", re.I)
# US Social Security numbers: dashed, with the SSA's impossible areas/groups/serials excluded; spaced or
# bare only after an SSN cue.
_SSN = re.compile(r"(?<![\w-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])")
_SSN_CUE = re.compile(r"\b(?:ssn|social security(?: number| no\.?)?|ss#)[^\d\n]{0,15}$", re.I)
_SSN_CUED = re.compile(r"(\b(?:ssn|social security(?: number| no\.?)?|ss#)[^\d\n]{0,15})((?!000|666|9\d\d)\d{3}[ ]?(?!00)\d{2}[ ]?(?!0000)\d{4})\b",
                       re.I)
# API keys and tokens: vendor prefixes with their documented shapes, JWTs, and bearer credentials.
_SECRET = re.compile(
    r"\b(?:sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}"
    r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}"
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"
    r"|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"
    r"|AIza[0-9A-Za-z_-]{35}"
    r"|glpat-[A-Za-z0-9_-]{20,}"
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})"
    r"|(?<=Bearer )[A-Za-z0-9._~+/-]{16,}=*|(?<=bearer )[A-Za-z0-9._~+/-]{16,}=*"
)
# A long opaque value right after a credential word ("api key is 3f8a…", "password: …").
_CUED_SECRET = re.compile(r"(\b(?:api[ _-]?key|apikey|secret|token|password|passwd|pwd|access[ _-]?key|private[ _-]?key)"
                          r"\s*(?:is|=|:)\s*['\"]?)([A-Za-z0-9._~+/=-]{12,})", re.I)
_IPV4 = re.compile(r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
                   r"(?:/\d{1,2})?(?![\w]|\.\d)")
_VERSION_CUE = re.compile(r"(?:\b(?:v|ver|version|release|build|firmware|fw|app|ios|android|macos|windows|chrome"
                          r"|firefox|safari|edge|sdk|api|python|node|java)\s*[:=]?\s*v?|\bv)$", re.I)
# a run of hex digits and colons with at least two colons; ipaddress decides whether it is an address
_IPV6 = re.compile(r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _iban_ok(candidate: str) -> bool:
    s = candidate.replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    rearranged = s[4:] + s[:4]
    try:
        return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1
    except ValueError:
        return False


def _redact_url(m: re.Match) -> str:
    return "<URL>" if _URL_SECRET.search(m.group(0)) else m.group(0)


def _redact_card(m: re.Match) -> str:
    digits = re.sub(r"\D", "", m.group(0))
    return "<CARD>" if 13 <= len(digits) <= 19 and _luhn_ok(digits) else m.group(0)


def _redact_phone(m: re.Match) -> str:
    n = sum(ch.isdigit() for ch in m.group(0))
    return "<PHONE>" if 9 <= n <= 15 else m.group(0)


def _redact_bare_digits(m: re.Match) -> str:
    before = m.string[max(0, m.start() - 30): m.start()]
    if _ID_CUE.search(before):
        return m.group(0)
    digits = m.group(0)
    if (digits.startswith("0") and " " not in digits) or _PHONE_CUE.search(before):
        return "<PHONE>"
    return m.group(0)


def _redact_ssn(m: re.Match) -> str:
    before = m.string[max(0, m.start() - 30): m.start()]
    return m.group(0) if _ID_CUE.search(before) and not _SSN_CUE.search(before) else "<SSN>"


def _redact_ipv4(m: re.Match) -> str:
    before = m.string[max(0, m.start() - 12): m.start()]
    return m.group(0) if _VERSION_CUE.search(before) else "<IP>"


def _redact_ipv6(m: re.Match) -> str:
    import ipaddress

    token = m.group(0)
    # times (10:30:00) and ratios are not addresses: without "::" an address has all eight groups
    if "::" not in token and token.count(":") < 7:
        return token
    try:
        ipaddress.IPv6Address(token.split("%")[0])
    except ValueError:
        return token
    return "<IP>"


def redact_pii(text: str) -> str:
    """Replace e-mails, phones, payment cards (Luhn-checked), IBANs (mod-97 checked), US SSNs, API keys and
    tokens, IP addresses and URLs that carry credentials with ``<EMAIL>``, ``<PHONE>``, ``<CARD>``,
    ``<IBAN>``, ``<SSN>``, ``<SECRET>``, ``<IP>`` and ``<URL>``.

    Validation and context keep order numbers, dates and version strings intact (see docs/ingest.md for
    the rules and docs/benchmarks.md for precision and recall per kind).

    >>> redact_pii("mail jane.doe@acme.io or call +44 20 7946 0958")
    'mail <EMAIL> or call <PHONE>'
    >>> redact_pii("key sk-proj-4f9XbQ2mT7LpZs81aK3vWcY0 from 10.0.0.12, app v2.4.1.0, order 4155552671")
    'key <SECRET> from <IP>, app v2.4.1.0, order 4155552671'
    """
    if not isinstance(text, str):  # as clean_text: not "argument of type 'NoneType' is not iterable"
        raise TypeError(f"redact_pii expects str, got {type(text).__name__}")
    if "://" in text:
        text = _URL.sub(_redact_url, text)
    if "@" in text:
        text = _EMAIL.sub("<EMAIL>", text).replace("<<EMAIL>>", "<EMAIL>")
    text = _SECRET.sub("<SECRET>", text)  # before digits: tokens hold digit runs that look like phones
    text = _CUED_SECRET.sub(lambda m: m.group(1) + ("<SECRET>" if any(ch.isdigit() for ch in m.group(2)) else m.group(2)),
                            text)
    if ":" in text:
        text = _IPV6.sub(_redact_ipv6, text)
    if not _DIGIT.search(text):  # cards, IBANs, SSNs, IPs and phones all need digits
        return text
    text = _IBAN.sub(lambda m: "<IBAN>" if _iban_ok(m.group(0)) else m.group(0), text)
    text = _CARD.sub(_redact_card, text)
    if "." in text:
        text = _IPV4.sub(_redact_ipv4, text)
    if "-" in text:
        text = _SSN.sub(_redact_ssn, text)
    text = _SSN_CUED.sub(lambda m: m.group(1) + "<SSN>", text)
    text = _PHONE.sub(_redact_phone, text)
    return _BARE_DIGITS.sub(_redact_bare_digits, text)


# --- normalisation --------------------------------------------------------------------------------

_DIGIT = re.compile(r"\d")
# zero-width characters, and the bidirectional embedding/override/isolate controls: invisible in any
# output, they can hide or reorder text ("Trojan Source") in the report, a spreadsheet or a terminal
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad\u202a\u202b\u202c\u202d\u202e"
                                    "\u2066\u2067\u2068\u2069"), None)
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Control characters that say "binary": the vertical tab, form feed and the information separators (\x1c-\x1f)
# are line breaks to Python, and FileMaker and Excel for Mac write \x0b for a line break inside a cell (a short
# text with one was rejected as binary)
_BINARY = re.compile(r"[\x00-\x08\x0e-\x1b\x7f]")
_SPACES = re.compile(r"[ \t\f\v\u00a0]+")
_WS = re.compile(r"\s+")


def _normalise_unicode(text: str) -> str:
    if not text.isascii():  # NFKC and invisible characters only matter outside ASCII
        text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE)
    if "\r" not in text and not _CONTROL.search(text):
        return text
    return _CONTROL.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))


def clean_text(text: str, *, redact: bool = True, strip_replies: bool = True) -> str:
    """Return the cleaned, single-line form of a feedback text.

    Steps: HTML → text, Unicode NFKC and invisible-character removal, quoted replies and signatures
    removed, PII redacted (unless ``redact=False``), whitespace collapsed.

    >>> clean_text("Export is broken\\n\\n> On Mon, Bob wrote:\\n> old stuff")
    'Export is broken'
    """
    if not isinstance(text, str):
        raise TypeError(f"clean_text expects str, got {type(text).__name__}")
    text = _normalise_unicode(html_to_text(text))
    if strip_replies:
        text = strip_signature(strip_quoted_reply(text))
    if redact:
        text = redact_pii(_SPACES.sub(" ", text))
    return _WS.sub(" ", text).strip()


def text_problem(raw: object, cleaned: str | None = None, *, max_chars: int = MAX_TEXT_CHARS) -> str | None:
    """Why a text is unusable (``"empty text"``, ``"binary or non-text content"``, ``"text too long"``…),
    or ``None`` when it is fine. Used by :func:`read_feedback` and the batch jobs to route rejects."""
    if raw is None or (isinstance(raw, float) and raw != raw):
        return "missing text"
    if isinstance(raw, bytes):
        return "binary or non-text content"
    if not isinstance(raw, str):
        return f"text is {type(raw).__name__}, not str"
    if not raw.isascii() and _SURROGATE.search(raw):  # not Unicode text: nothing downstream can encode it
        return "invalid characters (lone surrogates; bytes decoded with the wrong encoding?)"
    head = raw[:2000]
    if "\x00" in raw or len(_BINARY.findall(head)) + head.count("\ufffd") > 0.1 * min(len(raw), 2000):
        return "binary or non-text content"
    cleaned = clean_text(raw) if cleaned is None else cleaned
    if not cleaned:
        return "empty text after cleaning"
    if len(cleaned) > max_chars:
        return f"text too long ({len(cleaned)} > {max_chars} characters)"
    if not any(ch.isalnum() for ch in cleaned):
        return "no letters or digits"
    return None
