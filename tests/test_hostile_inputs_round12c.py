"""Hostile and careless inputs, round 12c: feedback that is legitimate but not plain English ASCII (Chinese,
Japanese, Korean, Thai, Arabic, Persian, Hindi, emoji, bidi controls) through cleaning and redaction, themes,
duplicates and the report. Each test failed before its fix. Embedding is the HashEmbedder test double."""

from __future__ import annotations

import pytest

from feedback_nlp.cleaning import clean_text, redact_pii

# --- PII written against the letters of scripts without spaces ------------------------------------------------


@pytest.mark.parametrize(("text", "redacted"), [
    # the e-mail rule took the whole sentence for the address: the text became "<EMAIL>"
    ("我的邮箱是zhangwei@example.com谢谢", "我的邮箱是<EMAIL>谢谢"),
    ("メールはtanaka@example.jpです", "メールは<EMAIL>です"),
    ("이메일은kim@example.kr입니다", "이메일은<EMAIL>입니다"),
])
def test_an_address_written_against_cjk_text_is_redacted_without_eating_the_sentence(text, redacted):
    assert clean_text(text) == redacted


@pytest.mark.parametrize(("text", "redacted"), [
    ("电话+8613812345678", "电话<PHONE>"),
    ("電話+81 3-1234-5678まで", "電話<PHONE>まで"),
    ("我的电话是13812345678", "我的电话是<PHONE>"),
    ("请联系我:手机 138-1234-5678", "请联系我:手机 <PHONE>"),
    ("연락처010-1234-5678", "연락처<PHONE>"),
    ("โทร0812345678ครับ", "โทร<PHONE>ครับ"),
    ("账号DE89370400440532013000", "账号<IBAN>"),
    ("服务器IP是10.1.2.3", "服务器IP是<IP>"),
    ("SSN是123-45-6789", "SSN是<SSN>"),
    ("token是sk-proj-4f9XbQ2mT7LpZs81aK3vWcY0", "token是<SECRET>"),
    ("密码:hunter22", "密码:<SECRET>"),
    ("访问https://example.com/reset/Q2hhbmdlTWVQbGVhc2UxMjM0吧", "访问<URL>吧"),
])
def test_pii_written_against_cjk_or_thai_text_is_redacted(text, redacted):
    assert redact_pii(text) == redacted  # each was left whole: the letters before it are \w, so no word boundary


@pytest.mark.parametrize(("text", "redacted"), [
    ("card ٤١١١ ١١١١ ١١١١ ١١١١ fails", "card <CARD> fails"),  # Arabic-Indic digits: Luhn read them as ord - 48
    ("card ४१११ ११११ ११११ ११११ fails", "card <CARD> fails"),  # Devanagari
    ("رقم هاتفي ٠٥٠١٢٣٤٥٦٧ شكرا", "رقم هاتفي <PHONE> شكرا"),  # the trunk 0 was compared with "0"
    ("Телефон: 89161234567", "Телефон: <PHONE>"),  # phone words of other languages
    ("फोन 98765 43210", "फोन <PHONE>"),
    ("call me on 98765 43210", "call me on <PHONE>"),
])
def test_pii_in_other_digits_and_after_other_languages_phone_words_is_redacted(text, redacted):
    assert redact_pii(text) == redacted


@pytest.mark.parametrize("text", [
    "我的邮箱是 张伟@例子.中国 谢谢",  # an address in Chinese is still one address
    "订单号码13812345678已发货",  # an order number: "号码" (number) is a phone word, "订单" (order) wins
    "版本2.4.1.0发布了",
    "导出CSV文件失败,请尽快修复",
    "order ١٢٣٤٥٦٧٨٩٠ shipped",
    "iPhone 15 Pro 256GB",
])
def test_cjk_text_without_pii_keeps_every_character(text):
    out = redact_pii(text)
    assert out == text or out == "我的邮箱是 <EMAIL> 谢谢"
    assert "\ufdd0" not in out


def test_a_password_cue_in_japanese_or_chinese_before_words_redacts_nothing():
    # "the password is correct." / "the password is wrong, please reset": words, not a password
    for text in ("パスワードは正しいです。", "密码是错误的,请重置"):
        assert redact_pii(text) == text
    assert redact_pii("密码是hunter22谢谢") == "密码是<SECRET>谢谢"


# --- invisible characters: what is removed, and what is part of the text ---------------------------------------


@pytest.mark.parametrize("text", [
    "ชำระเงินไม่สำเร็จ น้ำ ทำ",  # Thai SARA AM: NFKC split it into two code points
    "ຄຳ ນ້ຳ",  # Lao
    "\U0001F468\u200d\U0001F469\u200d\U0001F467 family plan",  # one family, not three people
    "\U0001F3F3\ufe0f\u200d\U0001F308 pride theme",  # the rainbow flag, not a white flag and a rainbow
    "می\u200cخواهم خروجی بگیرم",  # Persian: the non-joiner is part of the spelling
    "क्\u200dष",  # Devanagari half form
    "flag \U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F ok",  # England's flag
])
def test_cleaning_keeps_the_characters_a_script_or_an_emoji_is_written_with(text):
    assert clean_text(text) == text


@pytest.mark.parametrize(("text", "cleaned"), [
    ("Great app\U000E0049\U000E0047\U000E004E\U000E004F\U000E0052\U000E0045", "Great app"),  # invisible "IGNORE"
    ("pass\u200cword a\u200db", "password ab"),  # joiners that only hide a split
    ("x\u2062y", "xy"),  # an invisible operator
    ("\u200d\u200c", ""),
])
def test_cleaning_removes_invisible_characters_that_hide_text(text, cleaned):
    assert clean_text(text) == cleaned


# --- theme keywords and titles, duplicate-search words -------------------------------------------------------


_ZH = {0: ["导出CSV文件失败,请尽快修复。", "每次导出报表都会卡住", "导出功能太慢了,等了十分钟", "无法导出数据到Excel"],
       1: ["登录时一直提示密码错误", "手机号无法登录账户", "登录页面打不开", "用微信登录失败了"]}


def test_themes_of_chinese_and_japanese_feedback_get_keywords():
    from feedback_nlp.themes import CTFIDFLabeller

    kw = CTFIDFLabeller().keywords(_ZH, 3)
    assert kw[0][0] == "导出" and kw[1][0] == "登录"  # were [] and []: a clause was one word, shared by no item
    ja = {0: ["ログインできません。", "ログイン画面が真っ白になる", "スマホからログインできない"],
          1: ["通知が届かない", "通知が多すぎてうるさい", "プッシュ通知が遅れて来る"]}
    assert CTFIDFLabeller().keywords(ja, 3) == {0: ["ログイン"], 1: ["通知"]}


def test_keywords_keep_words_with_vowel_signs_and_diacritics_whole():
    from feedback_nlp.themes import CTFIDFLabeller

    docs = {0: ["लॉगिन नहीं हो रहा है", "मैं लॉगिन नहीं कर पा रहा", "लॉगिन पेज बहुत धीमा है"],
            1: ["الدَّفع فشل", "فشل الدَّفع بالبطاقة", "الدَّفع بطيء"]}
    kw = CTFIDFLabeller().keywords(docs, 3)
    assert "लॉगिन" in kw[0] and "नहीं" in kw[0]  # were fragments: "नह", "रह"
    assert kw[1][0] == "الدَّفع"  # was "الد فع": the vowel marks split the word
    words = {w for items in docs.values() for t in items for w in t.split()}
    assert all(part in words for k in kw[0] + kw[1] for part in k.split())


def test_a_chinese_title_ends_at_the_chinese_full_stop():
    from feedback_nlp.themes import clean_title

    assert clean_title("导出CSV文件失败,请尽快修复。我的账户是专业版。") == "导出CSV文件失败,请尽快修复"


def test_duplicate_search_words_match_across_unicode_forms_and_keep_indic_words_whole():
    from feedback_nlp.dedupe._bm25 import tokenize

    assert tokenize("Cafe\u0301 STRASSE ＣＳＶ") == tokenize("Café straße CSV") == ["café", "strasse", "csv"]
    assert tokenize("भुगतान नहीं") == ["भुगतान", "नहीं"]  # was ['भ', 'गत', 'न', 'नह']


def test_theme_model_and_deduper_run_on_mixed_scripts():
    from conftest import HashEmbedder
    from feedback_nlp import Deduper, ThemeModel

    texts = ([t for ts in _ZH.values() for t in ts] + ["लॉगिन नहीं हो रहा है"] * 3 + ["🔥🔥🔥", "!!!!!!!!", "ชำระเงิน ไม่สำเร็จ"]
             + ["\U0001F468\u200d\U0001F469\u200d\U0001F467", "Cafe\u0301 menu", "Café menu"])
    tm = ThemeModel(HashEmbedder(), min_theme_size=2).fit(texts)
    assert len(tm.labels_) == len(texts)
    assert all(isinstance(lbl, str) and lbl for lbl in tm.themes_["label"])
    d = Deduper(HashEmbedder(), threshold=0.99).fit(texts, ids=[str(i) for i in range(len(texts))])
    found = d.find(["Café menu"], k=3)
    assert set(found["id"]) >= {"15", "16"}  # the decomposed copy is found


# --- the report -----------------------------------------------------------------------------------------------


def test_chart_labels_never_draw_reversed_or_missing_glyphs():
    from feedback_nlp.report_sentiment import chart_text

    assert chart_text("#3 تسجيل الدخول (n=4)") == "#3 … (n=4)"  # was drawn left to right: reversed, unjoined
    assert chart_text("#1 cafe\u0301 ΑΒΓ Привет $5") == "#1 cafe\u0301 ΑΒΓ Привет \\$5"  # the font draws these
    if 0x5BFC not in __import__("feedback_nlp.report_sentiment", fromlist=["x"])._chart_glyphs():
        assert chart_text("#1 导出CSV文件失败,请尽快修复") == "#1 …CSV…"  # were empty boxes and one warning each


def test_a_report_of_non_latin_feedback_has_no_glyph_warnings_and_no_direction_controls(tmp_path, hash_embedder):
    import re
    import warnings

    import pandas as pd

    import feedback_nlp as fb

    texts = (["导出CSV文件失败,请尽快修复。", "无法导出数据到Excel", "导出功能太慢了"] * 2
             + ["تسجيل الدُّخول لا يعمل"] * 3 + ["लॉगिन नहीं हो रहा है"] * 3 + ["🔥🔥🔥 love it", "Refund please"])
    frame = pd.DataFrame({"id": [f"id{i}" for i in range(len(texts))], "text": texts, "source": "support"})
    tax = fb.Taxonomy([{"id": "bug", "name": "错误"}, {"id": "feature", "name": "功能"}])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # was 160 "Glyph ... missing from font(s) DejaVu Sans" warnings
        summary = fb.build_report(frame, tmp_path / "r", taxonomy=tax, embedder=hash_embedder, min_theme_size=2,
                                  sentiment=None, title="Report \u202eevil\u202c 报告", clean=False)
    page = summary.html.read_text(encoding="utf-8")
    assert "<h1>Report evil 报告</h1>" in page  # the override reversed the heading: "Report live 报告"
    assert not re.search("[\u202a-\u202e\u2066-\u2069]", page)
    assert "unicode-bidi:plaintext" in page and '<meta charset="utf-8">' in page
    assert "تسجيل الدُّخول لا يعمل" in page and "导出" in page


def test_duplicate_search_reads_chinese_and_japanese_as_words_and_keeps_identifiers_written_against_them():
    from feedback_nlp.dedupe._bm25 import BM25, tokenize

    assert tokenize("修复NullPointerException错误") == ["修复", "nullpointerexception", "null", "pointer", "exception",
                                                      "错误"]  # was one token: the whole clause
    corpus = ["导出CSV文件失败", "登录页面打不开", "修复NullPointerException错误", "通知が届かない"]
    queries = ["CSV导出一直失败", "打不开登录页面", "又出现NullPointerException", "通知が来ない"]
    scores = BM25().fit(corpus).scores(queries)
    assert scores.argmax(axis=1).tolist() == [0, 1, 2, 3] and (scores.max(axis=1) > 0).all()  # were all 0


def test_turkish_dotted_capital_i_is_one_letter_in_keywords_and_search_words():
    from feedback_nlp.dedupe._bm25 import tokenize
    from feedback_nlp.themes._labels import _terms

    assert _terms("İstanbul office", set(), (1, 1)) == ["istanbul", "office"]  # was "stanbul"
    assert tokenize("İstanbul") == tokenize("istanbul") == ["istanbul"]


@pytest.mark.parametrize(("text", "redacted"), [
    ("call me ٠٧٧٠٠ ٩٠٠١٢٣", "call me <PHONE>"),  # the UK mobile 07700 900123 in Arabic-Indic digits
    ("رقم ٠٥٠ ١٢٣ ٤٥٦٧ شكرا", "رقم <PHONE> شكرا"),
    ("DOB ١٢/٠٣/١٩٨٥ ok", "DOB <DOB> ok"),
    ("SSN ١٢٣-٤٥-٦٧٨٩", "SSN <SSN>"),
    ("IP ١٠.٠.٠.١٢", "IP <IP>"),
    ("order ١٢٣٤٥٦٧٨٩٠ and ١٢٣ items", "order ١٢٣٤٥٦٧٨٩٠ and ١٢٣ items"),  # kept, in its own digits
    ("version ١.٢.٣.٤", "version ١.٢.٣.٤"),
])
def test_the_digit_rules_read_arabic_indic_digits_as_they_read_ascii_ones(text, redacted):
    assert redact_pii(text) == redacted


def test_a_chinese_or_japanese_title_is_measured_in_columns_not_characters():
    import numpy as np

    from feedback_nlp.themes import central_title, clean_title

    long = "我们团队每天都需要把客户反馈导出到电子表格里面进行分析但是导出功能经常失败而且速度非常慢希望你们能够尽快修复这个问题"
    assert len(clean_title(long)) == 41  # 40 characters (80 columns) and "…": were 72 characters, twice as wide
    # the most central item, 7 characters (14 columns), was passed over as "shorter than 8"
    assert central_title(["通知が届かない", "通知が多すぎてうるさい"], np.array([0.9, 0.8])) == "通知が届かない"
