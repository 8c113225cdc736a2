"""Naming themes: class-based TF-IDF keywords and a readable title (the most central short example)."""

from __future__ import annotations

import re
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator

from .._params import Interval, Options, ParamsMixin
from .._scripts import CJK, WORD_MARKS, cjk_words
from ._stopwords import item_stop_words

__all__ = ["BaseLabeller", "CTFIDFLabeller", "central_title", "clean_title"]

_PLACEHOLDER = re.compile(r"<[A-Z_]+>")
# another tool's redaction placeholders: "[NAME]", "[RELIGION]" (GoEmotions), "[EMAIL]"; kept in a title (dropped,
# "I honestly miss [NAME]" read "I honestly miss"), but a central item without one is the better title
_ANY_PLACEHOLDER = re.compile(r"<[A-Z_]+>|\[[A-Z][A-Z_]+\]")
_SPACE = re.compile(r"\s+")
_END_MARKS = re.compile(r"[!?]{2,}$")
# Markdown emphasis glued to words ("**Is your feature request related to a problem?**", "__bold__", "~~old~~") and
# HTML comments (an issue template's "<!-- A clear and concise description -->"): markup, not words of a title
_MARKUP = re.compile(r"<!--.*?(?:-->|$)|(?<![\w*_~])(?:\*\*?|__?|~~)(?=[^\s*_~])|(?<=[^\s*_~])(?:\*\*?|__?|~~)(?![\w*_~])")
# Lead-ins that say who wrote or where, not what: "Discovery call: ...", "QBR notes - ...", "Ugh, ...", "Team, ..."
_LEAD_IN = re.compile(r"^(?:[A-Z][\w /&-]{0,30}(?::| -| –| —)\s+)?", re.UNICODE)
_INTERJECTION = re.compile(r"^(?:(?:hi|hello|hey|ugh|fyi|team|so|ok|okay|well|also|btw|folks|guys|all)\b[\s,.!:;-]*)+",
                           re.IGNORECASE)
# a sentence ends at . ! ? and a space, or at Chinese and Japanese 。！？, which no space follows
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])")
# Western emoticons, also those with a letter (":D", ":P", "XD"), which a run of symbols does not cover
# (only those holding a letter or digit: ":(" is a run of symbols already, and an emoticon two alternatives could
# match made the patterns below backtrack exponentially on ":( :( :( … b")
_EMOTICON = r"(?:[:;=][-'^]?[DPpOo3]+|8[-'^]?[^\w\s]+|[xX][dD]+)"
_TRAILING_SYMBOLS = re.compile(rf"(?:\s+(?:[^\w\s]+|{_EMOTICON}|<3+))+$", re.UNICODE)  # ":(", ":D", "🙏", "!!" at the end
# ... and at the start: ">:( The app closes", "- Export fails", "> quoted reply", ":D love it" (not "<3 this
# app", where the heart is the verb)
_LEADING_SYMBOLS = re.compile(rf"^(?:(?:[^\w\s]+|{_EMOTICON})\s+)+", re.UNICODE)
# A candidate that opens with a conjunction continues a thought it does not state ("Then you have to go back to
# search ..."); it is kept only when no other central member reads as a title.
_CONTINUATION = re.compile(r"^(?:and|but|or|then|because|plus|although|though|otherwise|nor)\b", re.IGNORECASE)
# A word starts with a letter of any script: [a-zA-Z] left every word with an accent out of the keywords
# ("paramètres", "größe") and gave themes in Russian, Greek, Arabic or Chinese none at all. On ASCII text the
# tokens are those of the former pattern ([^\W_] is [a-zA-Z0-9] there).
# A word's combining marks are part of it (Python's \w leaves them out: Hindi "नहीं" gave the keyword "नह"), also as
# its last character.
_KEYWORD_TOKEN = re.compile(rf"\b[^\W\d_](?:[^\W_]|[{WORD_MARKS}+#.-])*(?:(?:[^\W_]|[+#])\b|[{WORD_MARKS}](?![\w{WORD_MARKS}]))")
# where a phrase ends: sentence and clause punctuation, brackets, quotes, markup, dashes, line breaks (items
# are joined by them)
_PHRASE_BREAK = re.compile(r"[.!?,;:()\[\]{}\"“”\n]+(?:\s|$)|[()\[\]{}\"“”\n;,!?<>|/*=~`—–]")


# What a word split at its apostrophe leaves ("doesn't" → "doesn", "I'll" → "ll", "we've" → "ve"): sklearn's English
# stop words hold none, and they were keywords of themes of app reviews ("doesn"), chat utterances ("didn", "ve",
# "don") and Reddit comments ("ll", "doesn want")
_CONTRACTION_PARTS = frozenset(["ll", "ve", "re", "don", "doesn", "didn", "isn", "wasn", "weren", "aren", "couldn", "wouldn", "shouldn", "hasn", "haven", "hadn", "ain", "mustn", "needn"])


class BaseLabeller(ParamsMixin, BaseEstimator, ABC):
    """Names themes: ``keywords(docs_by_theme)`` returns ranked keywords for each theme."""

    @abstractmethod
    def keywords(self, docs_by_theme: dict[int, list[str]], top_n: int = 10) -> dict[int, list[str]]: ...


class CTFIDFLabeller(BaseLabeller):
    """Class-based TF-IDF (as in BERTopic): words frequent in one theme and rare in the others, with
    stop words removed, uni- and bi-grams, and redaction placeholders ignored. ``stop_words="auto"`` (the
    default) removes English function words everywhere and, from an item written in German, French, Spanish,
    Portuguese, Italian or Dutch, that language's too; ``"english"`` the English ones only; a list exactly
    those words.

    >>> CTFIDFLabeller(min_df=1).keywords({0: ["card lost", "lost my card"], 1: ["refund late", "late refund"]}, 2)
    {0: ['card', 'lost'], 1: ['late', 'refund']}
    """

    _parameter_constraints = {"ngram_range": [tuple], "stop_words": [Options({"auto", "english"}), list, None],
                              "min_df": [Interval(int, 1, None)], "extra_stop_words": [tuple, list]}

    def __init__(self, ngram_range: tuple[int, int] = (1, 2), stop_words: str | list[str] | None = "auto",
                 min_df: int = 2, extra_stop_words: Sequence[str] = ("hi", "hello", "thanks", "thank", "team",
                                                                       "please", "hey", "update", "fyi", "ugh")) -> None:
        self.ngram_range = ngram_range
        self.stop_words = stop_words
        self.min_df = min_df
        self.extra_stop_words = extra_stop_words

    def keywords(self, docs_by_theme: dict[int, list[str]], top_n: int = 10) -> dict[int, list[str]]:
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

        ids = sorted(docs_by_theme)
        if not ids:
            return {}
        self._validate_params()
        auto = self.stop_words == "auto"
        stops = set(ENGLISH_STOP_WORDS) | _CONTRACTION_PARTS if self.stop_words in ("auto", "english") else set(self.stop_words or [])
        stops |= set(self.extra_stop_words)
        items = [[_ANY_PLACEHOLDER.sub(" ", t) for t in docs_by_theme[i]] for i in ids]
        singular = _singulars({t for its in items for d in its for t in _KEYWORD_TOKEN.findall(_lower(d))})
        low, high = self.ngram_range

        unions: dict[frozenset[str], set[str]] = {frozenset(): stops}

        def terms(its: list[str]) -> list[str]:  # item by item: each item's own language's function words
            out = []
            for t in its:
                extra = item_stop_words(t) if auto else frozenset()
                out += _terms(t, unions.get(extra) or unions.setdefault(extra, stops | extra), (low, high), singular)
            return out

        vec = CountVectorizer(analyzer=terms)
        try:
            tf = vec.fit_transform(items).astype(np.float64)
        except ValueError:  # only stop words
            return {i: [] for i in ids}
        tf = tf.toarray()
        words = vec.get_feature_names_out()
        freq = tf.sum(axis=0)
        keep = freq >= self.min_df
        avg = tf.sum() / len(ids)
        idf = np.log(1 + avg / np.maximum(freq, 1))
        scores = (tf / np.maximum(tf.sum(axis=1, keepdims=True), 1)) * idf * keep
        out = {}
        for row, i in enumerate(ids):
            ranked = [words[j] for j in np.argsort(-scores[row], kind="stable") if scores[row, j] > 0]
            picked: list[str] = []
            for w in ranked:  # a bigram supersedes the unigrams it contains, and vice versa
                if any(w in p.split() or p in w.split() for p in picked):
                    continue
                picked.append(w)
                if len(picked) == top_n:
                    break
            out[i] = picked
        return out


def _lower(text: str) -> str:
    """``text`` in lower case; Turkish "İ" as "i" (``str.lower`` gives "i" and a combining dot: "İstanbul" was the
    keyword "i̇stanbul", and before words kept their marks, "stanbul")."""
    return text.lower() if text.isascii() else text.replace("İ", "i").lower()


def _singulars(vocabulary: set[str]) -> dict[str, str]:
    """Plural → singular for words whose singular is in ``vocabulary`` too ("emails" → "email"), so one
    keyword does not take two places and its counts add up. Words ending in ss/us/is/ws ("news") are kept.

    >>> _singulars({"email", "emails", "news", "new", "atms", "atm", "lights"})
    {'atms': 'atm', 'emails': 'email'}
    """
    return {w: w[:-1] for w in sorted(vocabulary)
            if len(w) >= 4 and w.endswith("s") and not w.endswith(("ss", "us", "is", "ws")) and w[:-1] in vocabulary}


def _terms(doc: str, stops: set[str], ngram_range: tuple[int, int], singular: dict[str, str] | None = None) -> list[str]:
    """The unigrams and n-grams of ``doc``: n-grams only of words that stand next to each other in one phrase.

    A stop word or a punctuation mark ends a phrase, so "does not matter" gives no "does matter" and two
    joined items give no n-gram across them.

    >>> _terms("Does not matter. Turn lights off", {"not", "off"}, (1, 2))
    ['does', 'matter', 'turn', 'lights', 'turn lights']
    >>> _terms("<div>CSV export</div>", set(), (1, 2))
    ['div', 'csv', 'export', 'csv export', 'div']
    """
    lo, hi = ngram_range
    out: list[str] = []
    for phrase in _PHRASE_BREAK.split(_lower(doc)):
        run: list[str] = []
        for tok in _KEYWORD_TOKEN.findall(phrase) + [""]:  # "" flushes the last run
            if tok and tok not in stops and not CJK.search(tok):
                run.append((singular or {}).get(tok, tok))
                continue
            out.extend(" ".join(run[i:i + n]) for n in range(lo, hi + 1) for i in range(len(run) - n + 1))
            run = []
            if tok and CJK.search(tok):  # its words, one by one: no n-grams of overlapping pairs
                out.extend(w for w in cjk_words(tok, _KEYWORD_TOKEN) if w not in stops)
    return out


def clean_title(text: str, max_chars: int = 80) -> str:
    """A member text made into a title: placeholders and lead-ins dropped, one sentence, at most
    ``max_chars`` characters cut at a word, first letter upper-case.

    >>> clean_title("Discovery call: hi, the <EMAIL> export to CSV fails on long rows. Also dark mode?")
    'The export to CSV fails on long rows'
    """
    t = _LEADING_SYMBOLS.sub("", _SPACE.sub(" ", _MARKUP.sub("", _PLACEHOLDER.sub(" ", text))).strip())
    t = _INTERJECTION.sub("", _LEAD_IN.sub("", t, count=1).strip(" ,;:-")).strip(" ,;:-")
    first = _SENTENCE_END.split(t, maxsplit=1)[0]
    t = (first if _width(first) >= 12 else t).strip()
    if _width(t) > max_chars:
        head = t[:_fitting(t, max_chars)]
        cut = head.rsplit(" ", 1)[0]
        t = (cut if _width(cut) >= max_chars // 2 else head).rstrip(" ,;:-") + "…"
    # a run of ! and ? at the end is one mark ("This is a great app!????" → "This is a great app", "crash??" → "crash?")
    t = _END_MARKS.sub(lambda m: "?" if "?" in m.group() and "!" not in m.group()[:1] else "", _TRAILING_SYMBOLS.sub("", t))
    t = t.rstrip(" .!,;:-。")
    return t[:1].upper() + t[1:] if t else t


def _width(text: str) -> int:
    """The columns ``text`` takes: a Chinese, Japanese or Korean character (East Asian wide) takes two, so a title
    of them is as long on the page as a Latin one (80 Chinese characters were a title twice as wide).

    >>> _width("export"), _width("导出失败")
    (6, 8)
    """
    return len(text) if text.isascii() else len(text) + sum(unicodedata.east_asian_width(c) in "WF" for c in text)


def _fitting(text: str, columns: int) -> int:
    """How many of ``text``'s first characters fit in ``columns`` (see :func:`_width`)."""
    if text.isascii():
        return columns
    used = 0
    for i, c in enumerate(text):
        used += 2 if unicodedata.east_asian_width(c) in "WF" else 1
        if used > columns:
            return i
    return len(text)


def central_title(texts: Sequence[str], similarities: np.ndarray, max_chars: int = 80, pool: int = 10, *,
                  keywords: Sequence[str] = ()) -> str:
    """A readable title for a theme: among its ``pool`` most central members (highest ``similarities`` to
    the centre), the one that reads best as a title — short, but long enough to say something — cleaned.

    Central members say what the theme is about; among those, a short one is a title rather than a
    paragraph. Each candidate scores its similarity minus 0.1 per 100 characters beyond 60, and minus 0.1 when it
    holds none of the theme's first three ``keywords`` (what sets the theme apart): in app reviews, a theme
    whose keywords were "pinterest, pin, board" was titled "Great app", which says nothing the other praise
    themes do not.

    >>> central_title(["Hi, the CSV export cuts off rows longer than 500 characters, see the attached file, thanks",
    ...                "CSV export truncates long rows"], np.array([0.9, 0.88]))
    'CSV export truncates long rows'
    """
    sims = np.asarray(similarities, dtype=np.float64)
    if len(texts) == 0:
        return ""
    order = np.argsort(-sims, kind="stable")[:pool]
    top = [k for k in keywords[:3] if k]
    best, best_score = "", -np.inf
    for i in order:
        title = clean_title(str(texts[i]), max_chars)
        n = _width(str(texts[i]))
        if _width(title) < 8:
            continue
        score = sims[i] - 0.1 * max(0, n - 60) / 100 - (0.05 if n < 15 else 0.0) - (0.1 if _CONTINUATION.match(title) else 0.0)
        score -= 0.1 if top and not _names_any(title, top) else 0.0
        score -= 0.1 if _ANY_PLACEHOLDER.search(str(texts[i])) else 0.0
        if score > best_score:
            best, best_score = title, score
    return best or clean_title(str(texts[order[0]]), max_chars)


def _names_any(title: str, keywords: Sequence[str]) -> bool:
    """Whether ``title`` holds one of ``keywords`` (a phrase: all its words; a plural counts as its singular, as
    in the keywords; Chinese and Japanese keywords, read without spaces, as they stand).

    >>> _names_any("Can't export my invoices", ["invoice", "billing"]), _names_any("Great app", ["pinterest"])
    (True, False)
    """
    low = _lower(title)
    words = set(_KEYWORD_TOKEN.findall(low))
    words |= {w[:-1] for w in words if len(w) >= 4 and w.endswith("s")}
    return any(all(w in words for w in k.split()) or (CJK.search(k) is not None and k in low) for k in keywords)
