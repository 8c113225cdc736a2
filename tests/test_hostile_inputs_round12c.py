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
