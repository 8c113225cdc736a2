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
import os
import re
import unicodedata
from collections.abc import Callable
from html.parser import HTMLParser

from .errors import InputTypeError

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

_HTML_NAMES = (r"p|div|br|span|a|b|i|u|s|strong|em|ul|ol|li|table|tbody|thead|tr|td|th|h[1-6]|blockquote|pre"
               r"|code|img|html|body|head|script|style|font|hr|section|article|header|footer|meta|link|title")
# Markup, not a tag named in plain text ("use <div> tags", "the <table> element", "if a<b and c>d"; they lost
# the words): a closing tag, a void tag (<br>, <img ...>), a tag with an attribute, or a comment opener. An
# HTML body (Zendesk's html_body, Intercom's parts, an e-mail) closes its tags.
_HTML_HINT = re.compile(
    rf"</(?:{_HTML_NAMES})\s*>|<(?:br|hr|img|meta|link)\b[^<>]*>|<(?:{_HTML_NAMES})\s+[\w:-]+\s*=[^<>]*>"
    r"|<!--",  # a comment opener is hint enough: "!--.*?--" searched the rest of the text from each one
    re.S | re.I,
)
# A "<" that starts no tag complete before the next "<" (an unclosed tag or quote), and a comment opener after the
# last "-->", never end: html.parser searched the rest of the text again from each one, in quadratic time
# ('<div a="' 3,000 times, 24 KB, took 5 s; a 1 MiB text sent to the service, hours, while every other request
# waited). They are written as text ("&lt;"), which the parser reads back as "<".
_UNCLOSED_TAG = re.compile(
    r"<(?!/?[A-Za-z][^\s/<>]*(?:(?:[\s/]+|(?<=[\"']))[^\s/<>=\"']+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s<>\"']*))?)*[\s/]*>"
    r"|![A-Za-z\[][^<>]*>|\?[^<>]*>|!--)")
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
    end = text.rfind("-->") + 3 if "-->" in text else 0
    text = _UNCLOSED_TAG.sub("&lt;", text[:end] + text[end:].replace("<!--", "&lt;!--"))
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

_SECRET_PARAM = (r"(?:access_?token|api_?key|apikey|auth|authkey|rlkey|token|secret|password|passwd|pwd|sig|signature"
                 r"|session(?:_?id)?|sid|key|code|jwt|credential)")
# Any scheme, not only http(s)/ftp: connection strings (postgres://, mongodb+srv://, redis://, amqp://) carry
# passwords as often as links do.
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]{1,20}://[^\s<>\"'\ufdd0]+")
# A credential in a URL: a query/fragment parameter named like a secret (token=, code=), or ending in a secret word
# (id_token=, X-Amz-Signature=, X-Amz-Credential=, client_secret=; not zip_code= or sort_key=), a user:password@
# (the user may be empty: redis://:pw@host), or a webhook or share link whose path is itself the credential (Slack,
# Discord; Dropbox /s/ and /scl/fi/, db.tt, WeTransfer, OneDrive 1drv.ms, MEGA, Box, iCloud, Loom, Google Photos: anyone
# with the link opens the file, and their ids are too short or too plain for the token rules below).
_URL_SECRET = re.compile(rf"[?&#;](?:{_SECRET_PARAM}|[\w.-]{{0,30}}[_-](?:token|secret|signature|credentials?|password"
                         r"|passwd|jwt|api_?key|access_?key|secret_?key|private_?key))=[^&\s]+|//[^/\s:@]*:[^/\s@]+@"
                         r"|//hooks\.slack\.com/(?:services|workflows)/|//(?:\w+\.)?discord(?:app)?\.com/api/webhooks/"
                         r"|//(?:www\.)?dropbox\.com/(?:s|sh|scl/f[io]|t)/|//db\.tt/|//we\.tl/|//(?:www\.)?wetransfer\.com/downloads/"
                         r"|//1drv\.ms/|//mega\.(?:nz|io|co\.nz)/(?:file|folder|#)|//(?:[\w-]+\.)?box\.com/s/"
                         r"|//(?:www\.)?icloud\.com/(?:iclouddrive|photos|sharedalbum|notes|pages|numbers|keynote)/"
                         r"|//share\.icloud\.com/|//(?:www\.)?loom\.com/share/|//photos\.app\.goo\.gl/",
                         re.I)
# A path segment or parameter value that is itself a token: 20+ characters mixing upper case, lower case and digits
# (base64url; magic-link and share tokens, Google Docs ids), or 16+ characters after a reset/verify/invite-like
# segment (hex reset tokens). Commit hashes (lower-case hex) and readable slugs stay.
_URL_TOKEN = re.compile(r"[/=](?=[A-Za-z0-9_-]{0,200}[A-Z])(?=[A-Za-z0-9_-]{0,200}[a-z])(?=[A-Za-z0-9_-]{0,200}\d)"
                        r"[A-Za-z0-9_-]{20,}(?![A-Za-z0-9_-])")
_URL_RESET_TOKEN = re.compile(r"/[\w-]{0,30}(?:reset|verify|verification|confirm|activate|invite|invitation|magic"
                              r"|token|unsubscribe|login|auth|password|passwd)[\w-]{0,30}/([A-Za-z0-9_-]{16,})", re.I)
_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]+(?:@|%40)[\w-]+(?:\.[\w-]+)*\.(?:[^\W\d_]{2,}|xn--[a-z0-9-]{2,})\b")  # \w: Unicode names too
# Not addresses: retina assets ("icon@2x.png") and SSH remotes ("git@github.com:org/repo.git").
_NOT_EMAIL = re.compile(r"@[1-4]x\.[a-z]{2,4}$|^git@", re.I)
# Obfuscated addresses: "name [at] example [dot] com", "name(at)example(dot)com", "name AT example DOT org",
# "name at example dot com" (lower case only before a common top-level domain) and "john . smith @ gmail . com".
_EMAIL_OBFUSCATED = re.compile(
    r"(?<![\w.+-])[\w.+-]{1,64}[ ]?[\[({<][ ]?(?:at|@)[ ]?[\])}>][ ]?[\w-]{1,63}"
    r"(?:[ ]?(?:[\[({<][ ]?(?:dot|\.)[ ]?[\])}>]|\.)[ ]?[\w-]{1,63}){1,4}\b"
    r"|(?<![\w.+-])[\w.+-]{1,64} AT [\w-]{1,63}(?: DOT [\w-]{1,63}){1,4}\b"
    r"|(?<![\w.+-])[\w.+-]{1,64} at [\w-]{1,63}(?: dot [\w-]{1,63}){0,3} dot (?:com|org|net|edu|gov|io|co|uk|de|fr"
    r"|es|it|nl|in|br|jp|ca|au|ch|at|be|se|no|dk|fi|pl|ru|info|biz|me|dev|app|ai)\b"
    r"|(?<![\w.+-])\w{1,64}(?: \. \w{1,64}){0,3} @ [\w-]{1,63}(?: \. [\w-]{1,63}){1,4}\b")
_IBAN = re.compile(r"\b[A-Za-z]{2}\d{2}(?:[ ]?[A-Za-z0-9]{4}){2,7}(?:[ ]?[A-Za-z0-9]{1,3})?\b")
_CARD = re.compile(r"(?<![\d.-])(?:\d[ .-]?){12,18}\d(?![\d-]|\.\d)")
# Phones: an international number (+CC, or 00CC with separators), or a grouped national number: US (555) 123-4567,
# 1-800-555-0199; a trunk-0 number in one separator style throughout (UK 020 7946 0958, 07700 900123, (020) 7946 0958;
# FR 01 23 45 67 89, 06.12.34.56.78; DE 030/12345678, 089 12 34 56 78; JP 03-1234-5678, 0120-123-456; IN 098765 43210;
# NL 06-12345678; AU 0412 345 678); BR (11) 91234-5678 and the mobile 11 91234-5678; the trunk 0 in brackets without the country
# code (UK (0)20 7946 0958, DE (0)30 12345678); RU 912 345-67-89, 8 (912) 345-67-89; GR 210 1234567, 694 1234567;
# BD (01711) 123456. An extension (ext. 204, x12) goes with its number.
_PHONE = re.compile(
    r"(?<![\w+])(?<!\d[ .-])(?:(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){2,4}"
    r"|\b00[1-9]\d{0,2}[ .-](?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]\d{2,8}){1,4}"
    r"|\(0?\d{2,4}\)[ .-]?\d{3,5}[ .-]?\d{4}|\(0\d{2,4}\)[ ]?\d{5,8}"
    r"|\(0\)[ ]?\d{2,5}[ /.-]?\d{3,8}(?:[ .-]\d{2,4}){0,2}"
    r"|\b[1-9]\d[ ]9\d{4}-\d{4}"
    r"|(?:\b[78][ ]?)?(?:\(\d{3,5}\)[ ]?|\b\d{3}[ ])\d{3}-\d{2}-\d{2}"
    r"|\b(?:2[1-8]|69)\d[ ]\d{7}"
    r"|\b1[ .-]\d{3}[ .-]\d{3}[ .-]\d{4}|\b1[ .-]?\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}"
    r"|\b\d{3}[.-]\d{3}[.-]\d{4}"
    r"|\b0\d{2,4}[ ]\d{3,4}[ ]\d{3,4}"
    r"|\b0\d(?:[ .]\d{2}){4}"
    r"|\b0\d{1,5}([ ./-])\d{2,8}(?:\1\d{2,8}){0,3}"
    r"|\b0\d{4}[ ]\d{6})(?![\w])(?![ .-]\d)(?:[ ]?(?:ext\.?|x|\#)[ ]?\d{1,5}\b)?)",
    re.I,
)
_PHONE_EXT = re.compile(r"(?:ext|x|#)", re.I)
# A bare run of 10-11 digits is a phone only when it starts with a national trunk 0 (07700900123) or a
# phone word comes just before it ("call me on 4155552671"); never after order/invoice/ticket words, so
# order and tracking numbers stay.
_BARE_DIGITS = re.compile(r"(?<![\w.+/-])(?:\d{10,11}|\d{3} \d{3} \d{4}|\d{5} \d{5}|\d{3}([ -])\d{4}\1\d{4})(?![\w.-]|\.\d| \d)")
_PHONE_CUE = re.compile(r"(?:\b(?:call|phone|tel|telephone|mobile|cell|cellphone|whats?app|sms|text me|ring|reach me"
                        r"|contact me|number|handy|portable|téléphone|telefon|móvil|teléfono|telefone|celular|telefono"
                        r"|cellulare|телефон|тел|мобильный|τηλέφωνο|κινητό|هاتف|هاتفي|الهاتف|جوال|الجوال|موبايل"
                        r"|טלפון|नंबर|फोन|मोबाइल)\b"
                        # the words of scripts written without spaces run into their neighbours: no \b around them
                        r"|电话|電話|手机|手機|号码|號碼|联系方式|携帯|でんわ|전화|연락처|휴대폰|핸드폰|โทร|เบอร์)"
                        r"[^\d\n]{0,20}$", re.I)
_ID_CUE = re.compile(r"(?:\b(?:order|invoice|ticket|case|ref|reference|tracking|account|acct|id|sku|build|po|model|part"
                     r"|transaction|txn|confirmation|booking|serial|version)\b|#|订单|訂單|单号|單號|工单|发票|注文|주문)"
                     r"[^\d\n]{0,12}$", re.I)
# A phone word that outweighs an id word before a number ("call the order line on 020 7946 0958").
_PHONE_WORD = re.compile(r"\b(?:call|phone|tel|telephone|mobile|cell|whats?app|sms|fax|ring|reach|contact|hotline"
                         r"|helpline)\b", re.I)
# US Social Security numbers: dashed, with the SSA's impossible areas/groups/serials excluded; spaced or
# bare only after an SSN cue.
_SSN = re.compile(r"(?<![\w-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])")
_SSN_CUE = re.compile(r"\b(?:ssn|social security(?: number| no\.?)?|ss#)[^\d\n]{0,15}$", re.I)
_SSN_CUED = re.compile(r"(\b(?:ssn|social security(?: number| no\.?)?|ss#)[^\d\n]{0,15})((?!000|666|9\d\d)\d{3}[ ]?(?!00)\d{2}[ ]?(?!0000)\d{4})\b",
                       re.I)
# API keys and tokens: vendor prefixes with their documented shapes (OpenAI, Anthropic, Stripe, AWS, GitHub, Slack, Google,
# GitLab, npm, Hugging Face, PyPI, SendGrid, Shopify, DigitalOcean, Atlassian, Linear, Notion, Postman, Supabase,
# Databricks, Grafana, New Relic, Sentry, Figma, Groq, Replicate, Square, Mailgun, Mailchimp, Telegram bots), JWTs, and
# bearer credentials.
_SECRET = re.compile(
    r"\b(?:sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}"
    r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}"
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"
    r"|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,}"
    r"|xox[abposre]-[A-Za-z0-9-]{10,}|xapp-[A-Za-z0-9-]{10,}"
    r"|AIza[0-9A-Za-z_-]{35}"
    r"|glpat-[A-Za-z0-9_-]{20,}"
    r"|npm_[A-Za-z0-9]{36}|hf_[A-Za-z0-9]{30,}|pypi-AgE[A-Za-z0-9_-]{50,}"
    r"|SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}"
    r"|whsec_[A-Za-z0-9+/=]{24,}|shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}|dop_v1_[a-f0-9]{64}"
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
    r"|ATATT3[A-Za-z0-9_=-]{100,}|lin_api_[A-Za-z0-9]{40}|(?:secret|ntn)_[A-Za-z0-9]{43,46}"
    r"|PMAK-[0-9a-f]{24}-[0-9a-f]{34}|sbp_[0-9a-f]{40}|dapi[0-9a-f]{32}|glsa_[A-Za-z0-9]{32}_[0-9a-f]{8}"
    r"|NRAK-[A-Z0-9]{27}|sntrys_[A-Za-z0-9+/=_-]{40,}|figd_[A-Za-z0-9_-]{40,}|gsk_[A-Za-z0-9]{48,}|r8_[A-Za-z0-9]{37}"
    r"|sq0(?:atp|csp)-[A-Za-z0-9_-]{22,43}|key-[0-9a-z]{32})"
    r"|(?<=Bearer )[A-Za-z0-9._~+/-]{16,}=*|(?<=bearer )[A-Za-z0-9._~+/-]{16,}=*"
)
# Tokens without a prefix, each run only when its mark is in the text (Mailchimp's "-us", a Telegram bot's ":AA"): in
# _SECRET, their leading character classes were tried at every word and made it twice as slow.
_SECRET_MAILCHIMP = re.compile(r"\b[0-9a-f]{32}-us\d{1,2}\b")
_SECRET_TELEGRAM = re.compile(r"\b\d{8,10}:AA[0-9A-Za-z_-]{33}(?![\w-])")
# The credential of an HTTP Authorization header, whatever its scheme (Basic base64 user:password, Token, Digest).
_AUTH_HEADER = re.compile(r"(\bAuthorization\s*[:=]\s*(?:Basic|Token|Digest|Bearer)\s+)([^\s'\"]{8,})", re.I)
# A PEM/OpenSSH/PGP private key block, to its END line or, when cut short, to the end of the text.
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----(?:[^-]|-(?!----END))*"
                          r"(?:-----END [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----)?")
# A long opaque value right after a credential word, alone or inside an identifier ("api key is 3f8a…",
# "aws_secret_access_key = …", "CLIENT_SECRET: …").
_CUED_SECRET = re.compile(r"(\b(?:[A-Za-z0-9]{1,20}_){0,3}(?:api[ _-]?key|apikey|secret|token|access[ _-]?key"
                          r"|private[ _-]?key|client[ _-]?secret|account[ _-]?key|sharedaccesskey|sharedaccesssignature)"
                          r"(?:_[A-Za-z0-9]{1,20}){0,3}"
                          r"\s*(?:is|=|:)\s*['\"]?)([A-Za-z0-9._~+/=-]{12,})", re.I)
# A password after its word: short values count ("pwd: hunter2"), but only with a digit or a symbol, so
# "password is wrong" and "password: required" stay. The word and its "is" in other languages too ("Passwort ist",
# "mot de passe est", "contraseña es", "senha é", "hasło jest"); "pw:" and "pass:" only so written ("PASS: test/unit" is
# a test log, "ngraph::pass::" C++).
_CUED_PASSWORD = re.compile(r"((?:\b(?:password|passwd|passwort|kennwort|pwd|passcode|passphrase|mot de passe|mdp"
                            r"|contraseña|clave|senha|пароль|wachtwoord|hasło|haslo|lösenord|losenord|passord"
                            r"|adgangskode|salasana|şifre|sifre|parola|heslo|jelszó|κωδικός)"
                            r"\s*(?:is|was|is now|(?:(?:was|is|been|got)[ ])?(?:reset|changed|set)[ ]to|=|:|ist|lautet|war|est|était|es|era|é|è|to|jest|är|er|это|είναι)"
                            r"|(?-i:\b(?:pw|PW|pass|Pass)\s*[:=](?![:=]))|(?:密码|密碼|パスワード|비밀번호)\s*(?:is|was|=|:|是|は|는|은))"
                            r"\s*\ufdd0?['\"]?)([^\s'\"\ufdd0]{6,64})", re.I)
_HYPHENATED_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)+[.,;:!?]?")
_CUED_PIN = re.compile(r"(\bpin(?: code| number)?\s*(?:is|was|=|:)\s*)(\d{4,8})\b", re.I)
# A card's security code and a one-time code after their word ("CVV 123", "my OTP is 483921", "2FA code: 123456"):
# with the card number or the account, each is what a fraudster lacks. Not "error code", "zip code", "code 500".
_CUED_CODE = re.compile(r"(\b(?:cvv2?|cvc2?|csc|card security code|otp|one[- ]time (?:password|passcode|code|pin)"
                        r"|verification code|2fa code|mfa code|sms code|login code|auth(?:entication)? code)"
                        r"\s*(?:is|was|=|:|-)?\s*)(\d{3,8})\b", re.I)
_CODE_HINTS = ("cvv", "cvc", "csc", "otp", "one-time", "one time", "verification code", "2fa", "mfa", "sms code",
               "login code", "auth code", "authentication code")
# A Cookie header's value: session cookies open the account as a password does.
_COOKIE = re.compile(r"(\b(?:set-)?cookie\s*:\s*)([^\s=;:]{1,100}=[^\n]+)", re.I)
# Person names, only where a name is nearly certain: after a greeting at a line's start ("Hi John,", "Hello Sarah
# Connor"), in a sign-off that ends a line ("Thanks, Maria", "Best regards,\nJohn Smith", "... — Priya" at the end),
# in a self-introduction ("my name is …", "I'm Tom from Acme", "this is Anna from support"), after a form label at a
# line's start ("Name: …", "Customer: …", "From: …") and for the agent or person a ticket speaks of ("Agent Mike
# said", "spoke to Sarah who", "a guy named Steve"). A name is one to three capitalised words (O'Brien, Jean-Luc,
# McDonald, José, Łukasz, Мария), with a particle (van, de, da) or an initial ("John S."), after an optional title,
# which is kept ("Dear Mr <NAME>"). Lower-case words are never names ("Thanks, great app"), and a run whose first
# word is a common word, a greeting's object or a product ("Hi team", "Hello World", "Hey Siri", "I'm Android
# user") is kept: see _NOT_NAME.
_UP = "A-ZÀ-ÖØ-ÞĀ-ŽА-ЯЁ"
_LO = "a-zß-öø-ÿā-žа-яё"
_NAME_WORD = rf"(?:[{_UP}]['’][{_UP}][{_LO}]+|[{_UP}][{_LO}]+(?:[{_UP}][{_LO}]+)?(?:[-'’][{_UP}]?[{_LO}]+)?)"
_NAME = (rf"{_NAME_WORD}(?:[ ](?:(?:van|von|de|da|del|della|der|den|di|du|le|la|dos|das|bin|ter)[ ])?"
         rf"(?:{_NAME_WORD}|[{_UP}]\.)){{0,2}}")
_TITLES = ("Mr", "Mrs", "Ms", "Miss", "Mx", "Dr", "Prof", "Sir", "Herr", "Frau", "Monsieur", "Madame", "Mme",
           "Señor", "Señora", "Sr", "Sra")
_TITLE = rf"(?:(?:{'|'.join(_TITLES)})\.?[ ])?"
_LINE_END = r"[ \t]*[.!]?[ \t]*(?=\n|\Z)"
# Each rule is a pattern of its own, run only when one of its cue words is in the text (see _NAME_RULES): one pattern
# of all of them, tried at every position, made clean_text 30-50% slower.
# Greetings and labels start a line: the pattern starts with "\n" (the text gets one in front), so the regex engine
# jumps from line to line instead of trying every position.
_GREETED = re.compile(
    r"\n(?:"
    # a greeting at a line's start, the name followed by punctuation or the line's end
    r"[ \t]*(?i:hi|hello|hey|hiya|heya|dear|howdy|greetings|good (?:morning|afternoon|evening|day)|hallo|liebe|lieber"
    r"|bonjour|bonsoir|salut|hola|olá|ola|oi|ciao|buongiorno|caro|cara|querid[oa]|estimad[oa]|hej|hei|moin|servus)"
    rf"[ ]?,?[ ](?P<greeted>{_TITLE}{_NAME}(?:(?:,[ ]?|[ ](?:and|&)[ ]){_TITLE}{_NAME}){{0,3}})"
    rf"(?=[ ]?[,!.:;?)]|[ ]?\n|[ ]?\Z|[ ][-–—][ ]|[ ](?:and|&|und|et|y|e)[ ][{_UP}])"
    # a form label at a line's start: "Name: Jane Doe", "Submitted by: …", "Attendees: John, Sarah"
    r"|[ \t]*(?i:name|full name|first name|last name|surname|customer name|contact name|caller|requester"
    r"|requested by|reporter|reported by|submitted by|assignee|account holder|cardholder|card holder|attendees?"
    r"|participants?|signed|nom|nombre|nome)[ \t]*:[ \t]*"
    rf"(?P<labelled>{_TITLE}{_NAME}(?:(?:,[ ]?|[ ](?:and|&)[ ]){_TITLE}{_NAME}){{0,9}})(?=[ \t]*(?:[,;(<\n]|\Z))"
    # labels that also head other things ("From: Settings", "Customer: wants a refund"): a first and a last name
    r"|[ \t]*(?i:from|to|cc|customer|contact|client)[ \t]*:[ \t]*"
    rf"(?P<headed>{_TITLE}{_NAME_WORD}[ ]{_NAME_WORD})(?=[ \t]*(?:[,;(<\n]|\Z)))"
)
# Sign-offs end a line, at its start or after a sentence (the pattern starts with that character).
_SIGNED = re.compile(
    r"[\n.!?)](?:"
    # a sign-off word, then "," or a line break, then the name and the line's end
    r"[ \t]*(?i:thanks|thank you|thx|many thanks|thanks again|thanks a lot|cheers|regards"
    r"|best regards|kind regards|warm regards|warmest regards|best wishes|all the best|best|sincerely|yours|yours truly"
    r"|yours sincerely|take care|rgds|respectfully|danke|vielen dank|viele grüße|liebe grüße|beste grüße|grüße|gruß"
    r"|mit freundlichen grüßen|lg|vg|mfg|merci|cordialement|bien à vous|gracias|saludos|atentamente|obrigad[oa]"
    r"|atenciosamente|abraços|grazie|cordiali saluti|saluti|groeten|met vriendelijke groet|mvg|спасибо|с уважением)"
    rf"[ ]?[,!.]?(?:[ \t]*\n[ \t]*|(?<=,)[ ]){_TITLE}(?P<signed>{_NAME}){_LINE_END}"
    # a name after a dash that ends the text: "Love it! — Priya", "...\n— Priya" (not a hyphen: "... - Liberals")
    rf"|[ \t]*(?:—|–|~)[ ]?(?P<dashed>{_NAME})[ \t]*\Z)"
)
# a self-introduction
_INTRODUCED = re.compile(
    r"\b(?i:my name is|my name's|name's|my name was|(?:his|her|their|the agent's|agent's|rep's) name (?:is|was)"
    r"|i am called|they call me|call me|je m'appelle|je m’appelle|me llamo|mi nombre es|ich heiße|ich heisse"
    r"|mein name ist|meu nome é|mi chiamo|il mio nome è|mijn naam is|меня зовут)"
    rf"[ ]+{_TITLE}(?P<introduced>{_NAME})")
_I_AM = re.compile(
    rf"\b(?:I'm|I’m|Im|I am|i'm|i’m|i am)[ ]+{_TITLE}(?P<iam>{_NAME})"
    r"(?=[ ](?:from|at|with|here|and I|and i)\b|,[ ](?:a|an|the|your|from|at|and|I|I'm|i|i'm|head|CEO|CTO)\b)")
_THIS_IS = re.compile(
    rf"\b(?i:this is|it's|it’s|it is)[ ]+{_TITLE}(?P<thisis>{_NAME})"
    r"(?=[ ](?:from|here|speaking|calling|with)\b|,[ ](?:from|calling|speaking|your)\b)")
# the agent or person a ticket speaks of
_AGENT = re.compile(
    r"\b(?i:agent|rep|representative|advisor|adviser|operator"
    r"|specialist|supervisor|consultant|colleague|coworker|co-worker|teammate|technician|csr)[ ]+"
    rf"(?P<agent>{_NAME})")
_SPOKEN_TO = re.compile(
    r"\b(?i:spoke|speaking|spoken|talked|talking|chatted|chatting)[ ](?:to|with)[ ]+"
    rf"{_TITLE}(?P<spoken>{_NAME})")
_NAMED = re.compile(
    r"\b(?i:guy|lady|woman|man|person|girl|boy|someone|somebody|agent|rep|gentleman|customer|user)[ ](?:named|called)[ ]+"
    rf"(?P<named>{_NAME})"
)
# what follows an agent's or a spoken-to name: a verb of the ticket, a preposition or punctuation
_AFTER_AGENT = re.compile(r"[ ]?[,.!?;:)]|[ ](?:said|says|told|tells|was|is|has|had|did|who|from|at|on|in|and|helped"
                          r"|promised|asked|explained|mentioned|confirmed|replied|responded|answered|kept|hung|tried"
                          r"|could|couldn't|would|wouldn't|never|assured|insisted|escalated|transferred|offered"
                          r"|refused|agreed|suggested|claimed|called|emailed|wrote|sent|gave|put|over|about)\b|[ ]?$")
_NAME_RUN = re.compile(_NAME)
# (cue words of the lower-cased text, one of which the rule needs; the rule)
_NAME_RULES = (
    (("name is", "name was", "name's", "call me", "appelle", "llamo", "heiße", "heisse", "chiamo", "naam", "nome", "nombre",
      "зовут"), _INTRODUCED),
    (("i'm", "i’m", "im ", "i am"), _I_AM),
    (("this is", "it's", "it’s", "it is"), _THIS_IS),
    (("agent", "rep ", "representative", "advis", "operator", "specialist", "supervisor", "consultant", "colleague", "worker", "teammate",
      "technician", "csr"), _AGENT),
    (("spok", "speaking", "talk", "chat"), _SPOKEN_TO),
    (("named", "called"), _NAMED),
)
# First words that are not names where a name would stand: greetings' objects, common words written capitalised at
# a sentence's start, assistants, products and places ("Hey Siri", "Hello World", "Thanks, Great app").
_NOT_NAME_WORDS = """
team all everyone everybody anyone anybody someone somebody there guys gals folks friends friend people sir sirs
madam mam maam ma'am ma’am support customer customers service services user users developer developers dev devs
admin admins administrator staff world again hello hi hey dear thanks thank thx mods mod moderators moderator
community sales billing everyone y'all yall you your yours all sirs gentlemen ladies colleagues crew gang fam
reddit redditors internet mom mum dad mommy mummy daddy mother father bro sis buddy dude man honey babe darling baby
i im me my mine we our ours us he she it its they their them this that these those here the a an and but or so if
then than is are was were be been being do does did done can could would should will shall may might must have has
had having how what why when where who whom which whose please pls plz ok okay yes yeah yep no nope not just also
any some every each both either neither one two three first last next new old very really sorry still even only
love loved like liked great good nice awesome excellent amazing best better bad worse worst cool fine perfect super
happy glad sad unable able ready back done sure using used use get got going gone coming now today tomorrow yesterday
always never ever again lol omg wow hmm ugh oh well ah yo
app apps application program software product version update upgrade device phone account card bank money payment
google siri alexa cortana bixby android ios iphone ipad apple samsung windows microsoft amazon facebook instagram
whatsapp twitter youtube netflix spotify uber tiktok snapchat linkedin chrome firefox safari gmail outlook slack
zoom teams skype telegram discord paypal venmo
kitty res fi def tech pro plus premium lite free beta
monday tuesday wednesday thursday friday saturday sunday january february march april may june july august
september october november december christmas
english spanish french german american british indian chinese japanese russian canadian australian
"""
_NOT_NAME = frozenset(_NOT_NAME_WORDS.split())


def _redact_names(m: re.Match) -> str:
    """The match of a name rule with its name (the rule's one named group) redacted, or unchanged when the name
    fails the rule's own check."""
    kind = m.lastgroup
    if kind is None:  # every alternative of a name rule ends in its named group
        return m.group(0)
    start, end = m.span(kind)
    if kind == "agent" and m.string[max(0, m.start() - 7):m.start()].lower().endswith(("user ", "travel ", "secret ")):
        return m.group(0)  # "user agent", "Travel Agent App", "Secret Agent"
    if kind in ("agent", "spoken") and not _AFTER_AGENT.match(m.string, end):
        return m.group(0)
    span = _NAME_RUN.sub(_name_or_word, m.string[start:end])
    return m.string[m.start():start] + span + m.string[end:m.end()]


def _name_or_word(m: re.Match) -> str:
    """``<NAME>`` for a run of name words, or the run itself when its first word is a common word, and the name
    only up to a common word inside it ("Hi John Thanks" keeps "Thanks")."""
    words = m.group(0).split(" ")
    if words[0].rstrip(".") in _TITLES:  # "Dear Mr Smith": the title stays ("call me Miss": it is no name)
        rest = _NAME_RUN.match(" ".join(words[1:]))
        return words[0] + (" " + _name_or_word(rest) if rest else "")
    if words[-1].lower().endswith("bot"):  # "Thank you, LimbRetrieval-Bot!"
        return m.group(0)
    for i, word in enumerate(words):
        if word.lower().rstrip(".") in _NOT_NAME:
            if i == 0:
                return m.group(0)
            return "<NAME> " + " ".join(words[i:])
    return "<NAME>"


# Street types that are also UI words ("Place Order", "Close", "Row", "Square") are left out; "Google Drive",
# "Hard Drive"... are products, not streets.
_NOT_STREET = frozenset({"Google", "Hard", "Flash", "Thumb", "Disk", "Shared", "Network", "Cloud", "External", "Test",
                         "Fast", "Slow", "Express", "Memory", "Silk", "Milky", "One"})
# Street addresses: a house number and one to three capitalised words before a street type (US/UK:
# "221B Baker Street", "1600 Amphitheatre Parkway", "7 Elm St."), a German street and number ("Musterstraße 12")
# and a French number and street ("12 rue de la Paix"). A postcode alone is kept: it names an area, not a person.
_ADDRESS = re.compile(
    r"\b\d{1,5}[A-Za-z]?,?[ ](?:[A-Z][a-z]+[ ]){0,2}([A-Z][a-z]+)[ ](?:Street|St|Avenue|Ave|Road|Rd|Lane|Ln"
    r"|Drive|Dr|Boulevard|Blvd|Way|Court|Ct|Parkway|Pkwy|Terrace|Crescent|Highway|Hwy|Gardens|Grove|Mews)\b\.?"
    r"|\b[A-ZÄÖÜ][a-zäöüß]{1,30}(?:straße|strasse|str\.|weg|gasse|platz|allee)[ ]\d{1,4}[a-z]?\b"
    r"|\b\d{1,4}(?:[ ]?(?:bis|ter))?,?[ ](?:rue|avenue|boulevard|bd|place|chemin|allée|impasse|quai)[ ]"
    r"(?:de[ ]la[ ]|de[ ]l'|des[ ]|du[ ]|de[ ]|d')?[A-ZÉÈ][\w'-]{1,30}"
)
_IPV4 = re.compile(r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
                   r"(?:/\d{1,2})?(?![\w]|\.\d)")
_VERSION_CUE = re.compile(r"(?:\b(?:v|ver|version|release|build|firmware|fw|app|ios|android|macos|windows|chrome"
                          r"|firefox|safari|edge|sdk|api|python|node|java|v8|cuda|cudnn|gcc|clang|llvm|kernel|openssl"
                          r"|driver|версия|versión|versão)\s*[:=]?\s*[\"']?v?|\bv|(?:版本|版本号|バージョン|버전)\s*[:=]?\s*\ufdd0?v?)$",
                          re.I)
# Dates of birth: a date right after a birth cue ("DOB 12/03/1985", "born on 3 March 1979", "Geburtsdatum 01.02.1988").
_DATE_TEXT = (r"(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}"
              r"|\d{1,2}(?:st|nd|rd|th)?[ ](?:of[ ])?[A-Za-z]{3,9}\.?,?[ ]\d{4}"
              r"|[A-Za-z]{3,9}\.?[ ]\d{1,2}(?:st|nd|rd|th)?,?[ ]\d{4})")
_DOB = re.compile(r"(\b(?:dob|d\.o\.b\.?|date of birth|birth[ ]?date|birthday|born(?:[ ]on)?|geburtsdatum|geboren(?:[ ]am)?"
                  r"|n[ée]e?[ ]le|date de naissance|fecha de nacimiento|data de nascimento)(?![\w-])[ ]?(?:is|was|:|-)?[ ]?)"
                  rf"({_DATE_TEXT})(?!\d)", re.I)
# Government ids, each with its own check: UK National Insurance numbers (HMRC's letter rules), Brazilian CPF (two
# mod-11 digits), Spanish DNI/NIE (mod-23 letter), Indian Aadhaar (Verhoeff, grouped 4-4-4, or bare after its
# name); passports and driving licences only after their word, with a digit in the value.
_NINO = re.compile(r"\b(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z][ ]?\d{2}[ ]?\d{2}[ ]?\d{2}[ ]?[A-D]\b")
_CPF = re.compile(r"(?<![\d.-])\d{3}\.\d{3}\.\d{3}-\d{2}(?![\d.-])")
_DNI = re.compile(r"\b[XYZ]?\d{7,8}[ -]?[A-Z]\b")
_AADHAAR = re.compile(r"(?<!\d[ -])\b[2-9]\d{3}([ -])\d{4}\1\d{4}\b(?![ -]\d)")
# bare digits: a CPF or an Aadhaar only right after its name
_CUED_NUMBER_ID = re.compile(r"(\b(?:cpf|aadhaa?r)\b[^\d\n]{0,12})(\d{11,12})\b", re.I)
_CUED_ID = re.compile(r"(\b(?:passport|reisepass|passeport|pasaporte|passaporte|driver'?s?[ ]licen[cs]e|driving[ ]licen[cs]e"
                      r"|f[üu]hrerschein|permis de conduire)(?:[ ]?(?:no\.?|number|nr\.?|nummer|num[ée]ro|\#))?[ ]?"
                      r"(?:is|:|\#)?[ ]?)([A-Z0-9][A-Z0-9-]{4,20})\b", re.I)
# A dotted quad after a section word or an upgrade ("see section 4.2.1.3", "upgraded from 10.4.2.1 to 10.5.0.0").
_VERSION_CONTEXT = re.compile(r"(?:\b(?:section|chapter|clause|paragraph|oid)|§|\b(?:upgrad|updat|downgrad|migrat)\w*"
                              r"[ ](?:from[ ](?:v?\d{1,5}(?:\.\d{1,5}){1,3}[ ]to[ ])?|to[ ]))[ ]?v?$", re.I)
# a run of hex digits and colons with at least two colons; ipaddress decides whether it is an address
_IPV6 = re.compile(r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")


# A dash between digits (hyphen, non-breaking hyphen, figure/en/em dash, minus sign, small and full-width
# hyphen-minus) is read as "-" so a card, phone or SSN typed with one is still found.
_DIGIT_DASH = re.compile(r"(?<=\d)[\u2010-\u2015\u2212\ufe58\ufe63\uff0d](?=[ ]?\d)")


def _ascii_digits(text: str) -> str:
    """``text`` with every decimal digit as its ASCII one: the rules' ``\\d`` finds Arabic-Indic (٤١١١), Persian and
    Devanagari digits too, and their checks (Luhn, the card networks' first digit, a phone's trunk 0) read ASCII.

    >>> _ascii_digits("٠٥٠ ۱۲ ४२")
    '050 12 42'
    """
    if text.isascii() or not _OTHER_DIGIT.search(text):
        return text
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in text)


_OTHER_DIGIT = re.compile(r"(?![0-9])\d")  # a decimal digit of another script than ASCII


def _sub(pattern: re.Pattern[str], repl: Callable[[re.Match[str]], str], text: str) -> str:
    return pattern.sub(repl, text)


def _sub_folded(pattern: re.Pattern[str], repl: Callable[[re.Match[str]], str], text: str) -> str:
    """``pattern.sub(repl, text)`` with the matching done on ``text``'s digits as ASCII (the same length, so the
    same places): a phone written ``٠٥٠ ١٢٣ ٤٥٦٧`` is found as ``050 123 4567`` is. What is not redacted keeps its
    own digits.

    >>> _sub_folded(re.compile(r"\\b0\\d{2} \\d{3}"), lambda m: "<PHONE>", "call ٠٥٠ ١٢٣ or ١٢٣")
    'call <PHONE> or ١٢٣'
    """
    folded = _ascii_digits(text)
    out, last = [], 0
    for m in pattern.finditer(folded):
        new, found = repl(m), m.group(0)
        if new == found:
            continue
        original = text[m.start():m.end()]
        # the replacement keeps a head and a tail of the match ("DOB " + "<DOB>"): those come from the original
        head = len(os.path.commonprefix([new, found]))
        tail = min(len(os.path.commonprefix([new[::-1], found[::-1]])), len(new) - head, len(found) - head)
        out += [text[last:m.start()], original[:head], new[head:len(new) - tail], original[len(original) - tail:]]
        last = m.end()
    return "".join(out) + text[last:]


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


def _redact_iban(m: re.Match) -> str:
    # The candidate may have swallowed a following word ("NL91ABNA0417164300 is"): drop space-separated groups
    # from the end until the check passes.
    candidate, tail = m.group(0), ""
    while True:
        if _iban_ok(candidate):
            return "<IBAN>" + tail
        head, sep, last = candidate.rpartition(" ")
        if not sep:
            return m.group(0)
        candidate, tail = head, sep + last + tail


# A readable identifier: words in CamelCase or with separators, acronyms of two letters or more, and numbers
# (BuildOpenCV4OpenVINO, WebIdentityTokenCredentialsProvider, How-To-Parse-JSON-in-Python3). Random base64url splits
# so for 4% of 20-character tokens, 0.7% of 32-character ones (measured on 20,000 draws). Every piece is a maximal
# run, so a string parses one way only (no backtracking blow-up).
_WORDY = re.compile(r"(?:[A-Z][a-z]+(?![a-z])|(?<![a-z])[a-z]{2,}(?![a-z])|[A-Z]{2,}(?=[A-Z][a-z]|[\d_-]|$)"
                    r"|\d+(?!\d)|[-_])+")


def _random_looking(token: str) -> bool:
    """True for a random token (base64url or hex: the character class changes at about half the steps or more),
    False for a readable name made of words (see ``_WORDY``).

    >>> _random_looking("Q2hhbmdlTWVQbGVhc2UxMjM0"), _random_looking("BuildOpenCV4OpenVINO")
    (True, False)
    """
    if len(token) <= 120 and _WORDY.fullmatch(token):
        return False
    steps = changes = 0
    for part in re.split(r"[-_]+", token):
        kinds = ["u" if ch.isupper() else "l" if ch.islower() else "d" for ch in part]
        steps += max(len(kinds) - 1, 0)
        changes += sum(a != b for a, b in zip(kinds, kinds[1:]))
    return steps > 0 and changes / steps >= 0.4


def _redact_url(m: re.Match) -> str:
    url = m.group(0)
    secret = (_URL_SECRET.search(url)
              or any(_random_looking(t.group(1)) for t in _URL_RESET_TOKEN.finditer(url))
              or any(_random_looking(t.group(0)[1:]) for t in _URL_TOKEN.finditer(url)))
    return "<URL>" if secret else url


def _redact_email(m: re.Match) -> str:
    return m.group(0) if _NOT_EMAIL.search(m.group(0)) else "<EMAIL>"


def _redact_card(m: re.Match) -> str:
    before = m.string[max(0, m.start() - 12):m.start()]
    if (before.endswith("/app/") or before == "/developers/") and m.string[m.end():m.end() + 1] == "/":
        # the Play Console's app and developer ids (.../developers/<id>/app/<id>/...) are 19 digits from 4, one
        # in ten passes Luhn (.../app/4974638472012894302/user-feedback/... became .../app/<CARD>/...); any other
        # path segment stays a card: a checkout link can carry one
        return m.group(0)
    digits = _ascii_digits(re.sub(r"\D", "", m.group(0)))
    # Payment networks issue from 2-6 (Mastercard 2/5, Amex/JCB/Diners 3, Visa 4, Discover/UnionPay/Maestro 6); a
    # Luhn-valid number from 0, 1, 7, 8 or 9 is an ISBN/EAN (978..., 979...), a national or an internal id.
    ok = 13 <= len(digits) <= 19 and digits[0] in "23456" and _luhn_ok(digits) and _card_grouped(m.group(0))
    return "<CARD>" if ok else m.group(0)


def _card_grouped(candidate: str) -> bool:
    """A card is written bare, in fours (4-4-4-4, 4-4-4-1..7) or as Amex/Diners print it (4-6-5, 4-6-4), with one
    kind of separator: "2023.15.12301911" (an extension's version) passed Luhn by chance and was a card.

    >>> _card_grouped("4111 1111 1111 1111"), _card_grouped("3782 822463 10005"), _card_grouped("2023.15.12301911")
    (True, True, False)
    """
    groups = re.split(r"[ .-]", candidate)
    if len(groups) == 1:
        return True
    if len(set(re.findall(r"[ .-]", candidate))) > 1:
        return False
    sizes = [len(g) for g in groups]
    return all(n == 4 for n in sizes[:-1]) or sizes in ([4, 6, 5], [4, 6, 4])


def _redact_phone(m: re.Match) -> str:
    n = sum(ch.isdigit() for ch in _PHONE_EXT.split(m.group(0), maxsplit=1)[0])  # the extension is not counted
    if not 9 <= n <= 15:
        return m.group(0)
    before = m.string[max(0, m.start() - 30): m.start()]
    if _ID_CUE.search(before) and not _PHONE_WORD.search(before):  # "ticket 09 87 65 43 21", "model no. 0345-67890-12"
        return m.group(0)
    return "<PHONE>"


def _redact_bare_digits(m: re.Match) -> str:
    before = m.string[max(0, m.start() - 30): m.start()]
    if _ID_CUE.search(before):
        return m.group(0)
    digits = _ascii_digits(m.group(0))
    if (digits.startswith("0") and " " not in digits) or _PHONE_CUE.search(before):
        return "<PHONE>"
    return m.group(0)


def _cpf_ok(digits: str) -> bool:
    d = [int(ch) for ch in digits]
    if len(d) != 11 or len(set(d)) == 1:  # 111.111.111-11 passes the sums and is no one's
        return False
    first = sum(a * b for a, b in zip(d[:9], range(10, 1, -1))) * 10 % 11 % 10
    second = sum(a * b for a, b in zip(d[:10], range(11, 1, -1))) * 10 % 11 % 10
    return first == d[9] and second == d[10]


def _dni_ok(token: str) -> bool:
    s = token.replace(" ", "").replace("-", "")
    number = str("XYZ".index(s[0])) + s[1:-1] if s[0] in "XYZ" else s[:-1]
    return len(number) == 8 and "TRWAGMYFPDXBNJZSQVHLCKE"[int(number) % 23] == s[-1]


_VERHOEFF_D = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
               [3, 4, 0, 1, 2, 8, 9, 5, 6, 7], [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
               [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3], [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
               [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]]
_VERHOEFF_P = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4], [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
               [8, 9, 1, 6, 0, 4, 3, 5, 2, 7], [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
               [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8]]


def _verhoeff_ok(digits: str) -> bool:
    check = 0
    for i, ch in enumerate(reversed(digits)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[i % 8][int(ch)]]
    return check == 0


# Substrings (of the lower-cased text) without which a cue-led rule cannot match.
_OBFUSCATED_HINTS = ("at)", "at]", "at}", "at>", "@)", "@]", "@}", "@>", "at )", "at ]", "at }", "at >", " @ ")
_PASSWORD_HINTS = ("pass", "pwd", "pw", "mdp", "kennwort", "contraseña", "clave", "senha", "пароль", "wachtwoord", "hasł", "hasl",
                   "lösenord", "losenord", "adgangskode", "salasana", "şifre", "sifre", "parola", "heslo", "jelsz",
                   "κωδικός", "密码", "密碼", "パスワード", "비밀번호")
_DOB_HINTS = ("birth", "dob", "d.o.b", "born", "geb", "naissance", "nacimiento", "nascimento", "né", "ne le", "nee le")
_ID_HINTS = ("pass", "pasaporte", "licen", "hrerschein", "permis de conduire")


def _redact_national_ids(text: str) -> str:
    text = _NINO.sub("<NATIONAL_ID>", text)
    text = _CPF.sub(lambda m: "<NATIONAL_ID>" if _cpf_ok(re.sub(r"\D", "", m.group(0))) else m.group(0), text)
    text = _DNI.sub(lambda m: "<NATIONAL_ID>" if _dni_ok(m.group(0)) else m.group(0), text)
    text = _AADHAAR.sub(lambda m: "<NATIONAL_ID>" if _verhoeff_ok(re.sub(r"\D", "", m.group(0))) else m.group(0), text)
    low = text.lower()
    if "cpf" in low or "aadha" in low:
        text = _CUED_NUMBER_ID.sub(_redact_cued_number_id, text)
    if any(hint in low for hint in _ID_HINTS):
        text = _CUED_ID.sub(lambda m: m.group(1) + "<NATIONAL_ID>" if any(ch.isdigit() for ch in m.group(2))
                            else m.group(0), text)
    return text


def _redact_cued_number_id(m: re.Match) -> str:
    digits = m.group(2)
    if m.group(1)[:3].lower() == "cpf":
        ok = _cpf_ok(digits)
    else:  # Aadhaar: 12 digits, never from 0 or 1
        ok = len(digits) == 12 and digits[0] in "23456789" and _verhoeff_ok(digits)
    return m.group(1) + "<NATIONAL_ID>" if ok else m.group(0)


def _redact_password(m: re.Match) -> str:
    value = m.group(2)
    if value.startswith("<") or not any(ch.isdigit() or not ch.isalpha() for ch in value.rstrip(".,;:!?)。")):
        return m.group(0)  # a placeholder already, or a word ("password is wrong", "password: required")
    if _HYPHENATED_WORD.fullmatch(value):  # "the password is case-sensitive", "password is too-short"
        return m.group(0)
    if _UNSPACED.search(value):  # words: "パスワードは正しいです。", "密码是错误的,请重置" ("the password is wrong, reset it")
        return m.group(0)
    if value.startswith(("/", "~/", "$", "%")) or re.match(r"[A-Za-z]:\\", value):
        return m.group(0)  # a path or a variable: "PWD=/home/ci/build" is the working directory of a build log
    return m.group(1) + "<SECRET>"


def _redact_ssn(m: re.Match) -> str:
    before = m.string[max(0, m.start() - 30): m.start()]
    return m.group(0) if _ID_CUE.search(before) and not _SSN_CUE.search(before) else "<SSN>"


def _redact_ipv4(m: re.Match) -> str:
    before = m.string[max(0, m.start() - 40): m.start()]
    if _VERSION_CUE.search(before[-12:]) or _VERSION_CONTEXT.search(before) or before.endswith(("==", "~=", ">=", "<=")):
        return m.group(0)  # a version ("nvidia-cudnn-cu11==8.6.0.163" is a pip pin)
    return m.group(0) if m.group(0).startswith(("127.", "0.0.0.0")) else "<IP>"  # loopback and "any" name no one


def _redact_ipv6(m: re.Match) -> str:
    import ipaddress

    token = m.group(0)
    # times (10:30:00) and ratios are not addresses: without "::" an address has all eight groups
    if "::" not in token and token.count(":") < 7:
        return token
    try:
        address = ipaddress.IPv6Address(token.split("%")[0])
    except ValueError:
        return token
    # "::" and "::1" (any, loopback) name no one, and "::" is C++'s scope operator ("Handler>::~unique_ptr")
    return token if address.is_unspecified or address.is_loopback else "<IP>"


def redact_pii(text: str) -> str:
    """Replace e-mails (obfuscated ones too), phones, payment cards (Luhn-checked), IBANs (mod-97 checked), US
    SSNs, API keys, tokens, passwords, card and one-time codes and private keys, IP addresses, URLs that carry
    credentials or share a file, street addresses, dates of birth, government ids (each with its check) and person
    names where a name is nearly certain (greetings, sign-offs, introductions, form labels, the agent a ticket
    speaks of) with ``<EMAIL>``, ``<PHONE>``, ``<CARD>``, ``<IBAN>``, ``<SSN>``, ``<SECRET>``, ``<IP>``, ``<URL>``,
    ``<ADDRESS>``, ``<DOB>``, ``<NATIONAL_ID>`` and ``<NAME>``.

    Validation and context keep order numbers, dates, versions, hashes and ISBNs intact (see docs/ingest.md for
    the rules and docs/benchmarks.md for recall and false positives per kind).

    >>> redact_pii("mail jane.doe@acme.io or call +44 20 7946 0958")
    'mail <EMAIL> or call <PHONE>'
    >>> redact_pii("key sk-proj-4f9XbQ2mT7LpZs81aK3vWcY0 from 10.0.0.12, app v2.4.1.0, order 4155552671")
    'key <SECRET> from <IP>, app v2.4.1.0, order 4155552671'
    >>> redact_pii("write to ann [at] example [dot] com, ship to 221B Baker Street, DOB 12/03/1985")
    'write to <EMAIL>, ship to <ADDRESS>, DOB <DOB>'
    >>> redact_pii("Hi team, Agent Mike said it is fixed. Thanks, Maria")
    'Hi team, Agent <NAME> said it is fixed. Thanks, <NAME>'
    """
    _check_text("redact_pii", text)  # not "argument of type 'NoneType' is not iterable"
    if not text.isascii():  # "4111–1111–1111–1111": word processors and phones turn hyphens into dashes
        text = _DIGIT_DASH.sub("-", text)
        if _UNSPACED.search(text) and _MARK not in text:
            return _redact(_UNSPACED_EDGE.sub(_MARK, text)).replace(_MARK, "")
    return _redact(text)


# Scripts written without spaces between words (Chinese, Japanese, Thai, Lao, Khmer, Myanmar) and Korean, whose
# particles join the word before them: their letters are \w, so an address or a number written against them
# ("我的邮箱是zhang@example.com谢谢", "电话+8613812345678") had no word boundary. The e-mail rule took the whole
# sentence for the address (the text became "<EMAIL>") and the phone, IBAN, IP and secret rules found nothing.
# redact_pii marks each edge between such a letter and a Latin letter, digit or "+" with a noncharacter (Unicode
# keeps U+FDD0 for a program's internal use, never in text), redacts, and takes the marks out again.
_UNSPACED_LETTERS = ("\u0e00-\u0eff\u1000-\u109f\u1100-\u11ff\u1780-\u17ff\u3040-\u30ff\u3130-\u318f\u31f0-\u31ff"
                     "\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f")
_UNSPACED = re.compile(f"[{_UNSPACED_LETTERS}]")
_UNSPACED_EDGE = re.compile(f"(?<=[{_UNSPACED_LETTERS}])(?=[A-Za-z0-9+])|(?<=[A-Za-z0-9])(?=[{_UNSPACED_LETTERS}])")
_MARK = "\ufdd0"


def _redact(text: str) -> str:
    if "PRIVATE KEY" in text:
        text = _PRIVATE_KEY.sub("<SECRET>", text)
    if "://" in text:
        text = _URL.sub(_redact_url, text)
    if "@" in text or "%40" in text:
        text = _EMAIL.sub(_redact_email, text).replace("<<EMAIL>>", "<EMAIL>")
    # The cue-led rules run only when their cue word is there: each costs a scan of the text, and most feedback
    # has none of them (clean_text was 2.5x slower with them ungated).
    low = text.lower()
    if any(hint in low for hint in _OBFUSCATED_HINTS) or (" at " in low and " dot " in low):
        text = _EMAIL_OBFUSCATED.sub("<EMAIL>", text)
    text = _SECRET.sub("<SECRET>", text)  # before digits: tokens hold digit runs that look like phones
    if "-us" in text:
        text = _SECRET_MAILCHIMP.sub("<SECRET>", text)
    if ":AA" in text:
        text = _SECRET_TELEGRAM.sub("<SECRET>", text)
    if "authorization" in low:
        text = _AUTH_HEADER.sub(lambda m: m.group(1) + "<SECRET>", text)
    if "key" in low or "secret" in low or "token" in low:
        text = _CUED_SECRET.sub(lambda m: m.group(1) + ("<SECRET>" if any(ch.isdigit() for ch in m.group(2))
                                                        else m.group(2)), text)
    if any(hint in low for hint in _PASSWORD_HINTS):
        text = _CUED_PASSWORD.sub(_redact_password, text)
    if "pin" in low:
        text = _CUED_PIN.sub(lambda m: m.group(1) + "<SECRET>", text)
    if any(hint in low for hint in _CODE_HINTS):
        text = _CUED_CODE.sub(lambda m: m.group(1) + "<SECRET>", text)
    if "cookie" in low:
        text = _COOKIE.sub(lambda m: m.group(1) + "<SECRET>", text)
    if ":" in text:
        text = _IPV6.sub(_redact_ipv6, text)
    text = _GREETED.sub(_redact_names, "\n" + text)  # the "\n" starts the first line as the others
    text = _SIGNED.sub(_redact_names, text)  # ungated: its 33 cue words cost more to look for than the pattern
    for hints, rule in _NAME_RULES:
        if any(map(low.__contains__, hints)):
            text = rule.sub(_redact_names, text)
    text = text[1:]
    if not _DIGIT.search(text):  # cards, IBANs, SSNs, ids, addresses, dates of birth, IPs, phones: all need digits
        return text
    # digits of other scripts (Arabic-Indic ٠٥٠, Persian, Devanagari): the rules read them as ASCII
    sub = _sub_folded if not text.isascii() and _OTHER_DIGIT.search(text) else _sub
    text = sub(_ADDRESS, lambda m: m.group(0) if m.group(1) in _NOT_STREET else "<ADDRESS>", text)
    if any(hint in low for hint in _DOB_HINTS):
        text = sub(_DOB, lambda m: m.group(1) + "<DOB>", text)
    text = sub(_IBAN, _redact_iban, text)
    text = sub(_CARD, _redact_card, text)
    text = _redact_national_ids(text)  # after cards: a card's digits hold 4-4-4 groups that may pass Verhoeff
    if "." in text:
        text = sub(_IPV4, _redact_ipv4, text)
    if "-" in text:
        text = sub(_SSN, _redact_ssn, text)
    text = sub(_SSN_CUED, lambda m: m.group(1) + "<SSN>", text)
    text = sub(_PHONE, _redact_phone, text)
    return sub(_BARE_DIGITS, _redact_bare_digits, text)


# --- normalisation --------------------------------------------------------------------------------

_DIGIT = re.compile(r"\d")


# zero-width characters, and the bidirectional embedding/override/isolate controls: invisible in any
# output, they can hide or reorder text ("Trojan Source") in the report, a spreadsheet or a terminal
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u202a\u202b\u202c\u202d"
                                    "\u202e\u2066\u2067\u2068\u2069"), None)
# The joiners are removed too, except where they are part of what the text says: a zero-width joiner inside an
# emoji sequence (👨‍👩‍👧 is one family and 🏳️‍🌈 the rainbow flag; without it, three people and a white flag) and
# either joiner between two letters of the scripts that spell words with them (Persian and Urdu می‌خواهم, Hindi,
# Bengali, Malayalam, Sinhala): removing them changed how those words are written. Between ASCII letters, or
# around spaces, they only hide a split ("pass\u200cword") and go.
_JOINER = re.compile("[\u200c\u200d]")
_TAG_CHARS = re.compile("(\U0001F3F4[\U000E0020-\U000E007E]+\U000E007F)|[\U000E0000-\U000E007F]+")
# NFKC splits Thai and Lao SARA AM (ำ, ຳ) into NIKHAHIT + SARA AA: every "ทำ", "น้ำ" of a text changed its code points
_SARA_AM = {"\u0e4d\u0e32": "\u0e33", "\u0ecd\u0eb2": "\u0eb3"}


def _keep_joiner(text: str, i: int) -> bool:
    """Whether the joiner at ``text[i]`` joins what it stands between (see ``_JOINER``)."""
    if i == 0 or i == len(text) - 1:
        return False
    before, after = text[i - 1], text[i + 1]
    if text[i] == "\u200d" and _emoji_part(before) and _emoji_part(after):
        return True
    return _joined_script(before) and _joined_script(after)


def _emoji_part(char: str) -> bool:
    return unicodedata.category(char) in ("So", "Sk") or char == "\ufe0f"


def _joined_script(char: str) -> bool:
    # Arabic to Sinhala: the scripts whose spelling uses the joiners; letters and their vowel signs
    return "\u0600" <= char <= "\u0dff" and unicodedata.category(char)[0] in "LM"


def _strip_invisible(text: str) -> str:
    if text.isascii():  # every character it removes lies outside ASCII
        return text
    text = text.translate(_INVISIBLE)
    if "\u200c" in text or "\u200d" in text:
        text = _JOINER.sub(lambda m: m.group() if _keep_joiner(m.string, m.start()) else "", text)
    if text and max(text) >= "\U000e0000" and _TAG_CHARS.search(text):
        # tag characters: invisible letters (U+E0041 is an invisible "A") that smuggle text past a reader;
        # only a subdivision flag (🏴 + tags, as England's) is made of them
        text = _TAG_CHARS.sub(lambda m: m.group(1) or "", text)
    return text
_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_surrogate(value: object) -> bool:
    """Whether ``value`` is text holding a lone surrogate (bytes decoded with ``errors="surrogateescape"``): not
    Unicode text, which no output (UTF-8, pyarrow, JSON) can encode. ASCII text is skipped without a search."""
    return isinstance(value, str) and not value.isascii() and _SURROGATE.search(value) is not None
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Control characters that say "binary": the vertical tab, form feed and the information separators (\x1c-\x1f)
# are line breaks to Python, and FileMaker and Excel for Mac write \x0b for a line break inside a cell (a short
# text with one was rejected as binary)
_BINARY = re.compile(r"[\x00-\x08\x0e-\x1b\x7f]")
_SPACES = re.compile(r"[ \t\f\v\u00a0]+")
_WS = re.compile(r"\s+")
# the placeholders redact_pii writes: a text made of these alone says nothing of its own
_REDACTED = re.compile(r"<(?:EMAIL|PHONE|CARD|IBAN|SSN|SECRET|IP|URL|ADDRESS|DOB|NATIONAL_ID|NAME)>")


def _normalise_unicode(text: str) -> str:
    if not text.isascii():  # NFKC and invisible characters only matter outside ASCII
        text = _strip_invisible(unicodedata.normalize("NFKC", text))
        if "\u0e4d" in text or "\u0ecd" in text:
            text = re.sub("\u0e4d\u0e32|\u0ecd\u0eb2", lambda m: _SARA_AM[m.group()], text)
    if "\r" not in text and not _CONTROL.search(text):
        return text
    return _CONTROL.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))


def _missing_value(value: object) -> bool:
    """None, NaN (a float's or numpy's), pd.NA or pd.NaT, recognised without importing numpy or pandas here."""
    if value is None:
        return True
    kind = type(value)
    if kind.__name__ in ("NAType", "NaTType"):
        return True
    return (isinstance(value, float) or (kind.__module__ == "numpy" and kind.__name__.startswith("float"))) and \
        value != value


def _check_text(func: str, text: object) -> None:
    """:class:`~feedback_nlp.errors.InputTypeError` unless ``text`` is a ``str``. Bytes are refused, not decoded:
    which encoding they are in is the caller's to know (cp1252 read as UTF-8 fails or changes letters)."""
    if isinstance(text, str):
        return
    kind = type(text).__name__
    if isinstance(text, (bytes, bytearray, memoryview)):
        hint = " (decode it first, e.g. data.decode('utf-8'): the encoding is not guessed)"
    elif _missing_value(text):
        hint = " (a missing text: leave missing texts out, or read them with read_feedback, which rejects them)"
    else:
        hint = " (convert it with str() if it is meant as text)" if isinstance(text, (int, float)) else ""
    raise InputTypeError(f"{func} expects str, got {kind}{hint}")


def _check_flag(func: str, name: str, value: object) -> bool:
    if value is True or value is False:
        return value
    if type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_"):  # np.bool_, unimported
        return bool(value)
    # redact=None (a setting left unset) skipped the redaction without a word
    raise InputTypeError(f"{func}: {name} must be True or False, got {type(value).__name__} {value!r:.40}")


def clean_text(text: str, *, redact: bool = True, strip_replies: bool = True) -> str:
    """Return the cleaned, single-line form of a feedback text.

    Steps: HTML → text, Unicode NFKC and invisible-character removal, quoted replies and signatures
    removed, PII redacted (unless ``redact=False``), whitespace collapsed.

    ``text`` must be a ``str``: anything else (``None``, NaN, a number, bytes) raises
    :class:`~feedback_nlp.errors.InputTypeError` (a ``TypeError`` too) naming the type; bytes are not decoded,
    since their encoding is the caller's to know. ``redact`` and ``strip_replies`` must be booleans
    (``redact=None`` would skip the redaction without a word).

    >>> clean_text("Export is broken\\n\\n> On Mon, Bob wrote:\\n> old stuff")
    'Export is broken'
    """
    _check_text("clean_text", text)
    redact = _check_flag("clean_text", "redact", redact)
    strip_replies = _check_flag("clean_text", "strip_replies", strip_replies)
    text = _normalise_unicode(html_to_text(text))
    if strip_replies:
        text = strip_signature(strip_quoted_reply(text))
    if redact:
        text = redact_pii(_SPACES.sub(" ", text))
    return _WS.sub(" ", text).strip()


def _letterless(text: str) -> bool:
    """True when a text (as cleaned) has no letter once its redacted personal data is left out ("👍👍", "!!!",
    "123", "<URL>"): nothing a tag model reads as words, so every such text gets one and the same guess."""
    return not any(ch.isalpha() for ch in unicodedata.normalize("NFKC", _REDACTED.sub("", text)))


def text_problem(raw: object, cleaned: str | None = None, *, max_chars: int = MAX_TEXT_CHARS) -> str | None:
    """Why a text is unusable (``"empty text"``, ``"binary or non-text content"``, ``"text too long"``…),
    or ``None`` when it is fine. Used by :func:`read_feedback` and the batch jobs to route rejects."""
    if _missing_value(raw):  # pd.NA and np.float32("nan") were "text is NAType, not str"
        return "missing text"
    if isinstance(raw, (bytes, bytearray, memoryview)):
        return "binary or non-text content"
    if not isinstance(raw, str):
        return f"text is {type(raw).__name__}, not str"
    if _has_surrogate(raw):  # not Unicode text: nothing downstream can encode it
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
    if "<" in cleaned and not any(ch.isalnum() for ch in _REDACTED.sub("", cleaned)):
        # "jane@example.com" and "bob@other.org" both became "<EMAIL>": identical texts, so every such item was
        # every other's duplicate at 1.0 (and tagged, themed and counted as feedback)
        return "nothing but personal data (redacted)"
    return None
