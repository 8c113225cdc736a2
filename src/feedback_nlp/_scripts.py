"""Words in the scripts that Python's ``\\w`` and spaces do not delimit: combining marks, Chinese and Japanese.

Used by the theme keywords (:mod:`feedback_nlp.themes`) and the duplicate-search tokens (:mod:`feedback_nlp.dedupe`).
"""

from __future__ import annotations

import re

__all__ = ["CJK", "WORD_MARKS", "cjk_words"]


def _combining_marks() -> str:
    """The combining marks (Unicode categories Mn, Mc, Me) of the blocks of the Basic Multilingual Plane that
    hold them, as the body of a regex character class.

    Python's ``\\w`` leaves them out, so a word of Hindi (नहीं), Thai, Tamil, Bengali, vowelled Arabic or Hebrew,
    or a decomposed "café", fell apart at each vowel sign or accent: theme keywords and duplicate-search tokens were
    fragments ("नह", "रह"). Word patterns that add this class keep such words whole; on ASCII text they are unchanged.
    (A scan of the blocks, about 10,000 code points, takes milliseconds; of all of Unicode, half a second.)
    """
    import unicodedata as ud

    blocks = ((0x0300, 0x1DFF), (0x20D0, 0x20FF), (0x2CEF, 0x2DFF), (0x302A, 0x309A), (0xA66F, 0xABFF),
              (0xFB1E, 0xFB1E), (0xFE00, 0xFE2F))
    marks = [chr(cp) for lo, hi in blocks for cp in range(lo, hi + 1) if ud.category(chr(cp)).startswith("M")]
    return "".join(re.escape(ch) for ch in marks)


#: The combining marks, for word patterns (see :func:`_combining_marks`).
WORD_MARKS = _combining_marks()


# Chinese and Japanese are written without spaces, so a clause was one "word": no two items shared one, and a theme
# of Chinese or Japanese feedback had no keywords at all. Without a dictionary, a run of Han characters is read as
# its overlapping pairs (most Chinese words are two characters: 导出文件 → 导出, 出文, 文件; the pairs that are
# words recur across a theme's items, the others do not), a katakana run as one word (ログイン, パスワード), and
# hiragana, which mostly spells particles and endings (が, できません), is left out, as English function words are.
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
CJK = re.compile(f"[{_HAN}\u3040-\u30ff\u31f0-\u31ff]")
_CJK_PIECE = re.compile(f"([{_HAN}]+)|([\u30a0-\u30ff\u31f0-\u31ff]+)|[\u3040-\u309f]+|([^{_HAN}\u3040-\u30ff\u31f0-\u31ff]+)")


def cjk_words(token: str, word: re.Pattern[str]) -> list[str]:
    """The words of a token holding Chinese or Japanese: Han pairs, katakana words, and the ``word`` matches of the
    rest (an identifier or English word written against them).

    >>> w = re.compile(r"\\w+")
    >>> cjk_words("导出csv文件失败", w), cjk_words("ログインできません", w)
    (['导出', 'csv', '文件', '件失', '失败'], ['ログイン'])
    """
    out: list[str] = []
    for m in _CJK_PIECE.finditer(token):
        han, kana, other = m.groups()
        if han:
            out += [han] if len(han) <= 2 else [han[i:i + 2] for i in range(len(han) - 1)]
        elif kana and len(kana) >= 2:
            out.append(kana)
        elif other:
            out += word.findall(other)
    return out
