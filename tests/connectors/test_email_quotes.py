"""Quoted-reply and signature stripping (connectors.email.quotes)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from connectors.email.quotes import extract_reply
from connectors.email.sanitize import html_to_text

QUOTES = Path(__file__).parents[2].parent / "shared/corpus" / "email" / "quote_stripping"

# Hand-written replies in the styles of real clients, many languages.
CASES = [
    pytest.param(
        "Sounds good, thanks!\n\nOn Tue, Mar 5, 2024 at 10:00 AM Shop <support@shop.example> "
        "wrote:\n> Your refund is on its way.\n>\n> Shop\n",
        "Sounds good, thanks!",
        id="en-gmail",
    ),
    pytest.param(
        "Sounds good.\n\nOn Tue, Mar 5, 2024 at 10:00 AM Shop Support <\nsupport@shop.example>"
        " wrote:\n\n> Your refund is on its way.\n",
        "Sounds good.",
        id="en-wrapped-intro",
    ),
    pytest.param(
        "Merci, c'est parfait.\n\nLe mar. 5 mars 2024 à 10:00, Boutique <support@shop.example> a "
        "écrit :\n> Votre remboursement est en cours.\n",
        "Merci, c'est parfait.",
        id="fr-gmail",
    ),
    pytest.param(
        "Bonjour,\nToujours rien reçu.\n\nEnvoyé de mon iPhone\n\n> Le 5 mars 2024 à 10:00, "
        "Boutique <support@shop.example> a écrit :\n>\n> Bonjour\n",
        "Bonjour,\nToujours rien reçu.",
        id="fr-iphone",
    ),
    pytest.param(
        "Danke, angekommen.\n\nAm Di., 5. März 2024 um 10:00 Uhr schrieb Shop <support@shop"
        ".example>:\n> Ihr Paket ist unterwegs.\n",
        "Danke, angekommen.",
        id="de-gmail",
    ),
    pytest.param(
        "Hallo,\nbitte stornieren.\n\n-----Ursprüngliche Nachricht-----\nVon: Shop "
        "<support@shop.example>\nGesendet: Dienstag, 5. März 2024 10:00\nAn: Kunde\n"
        "Betreff: Bestellung\n\nIhre Bestellung ist eingegangen.\n",
        "Hallo,\nbitte stornieren.",
        id="de-outlook",
    ),
    pytest.param(
        "Obrigado!\n\nEm ter., 5 de mar. de 2024 às 10:00, Loja <support@shop.example> "
        "escreveu:\n> O seu pedido foi enviado.\n",
        "Obrigado!",
        id="pt-gmail",
    ),
    pytest.param(
        "Bom dia,\no produto chegou partido.\n\nEnviado do meu iPhone\n\n"
        "De: Loja <support@shop.example>\nEnviada em: terça-feira, 5 de março de 2024 10:00\n"
        "Para: Cliente\nAssunto: Pedido\n\nO seu pedido foi enviado.\n",
        "Bom dia,\no produto chegou partido.",
        id="pt-outlook",
    ),
    pytest.param(
        "شكرا، وصل الطلب.\n\nفي الثلاثاء، 5 مارس 2024 في 10:00 ص، المتجر <support@shop.example> "
        "كتب:\n> تم شحن طلبك.\n",
        "شكرا، وصل الطلب.",
        id="ar-gmail",
    ),
    pytest.param(
        "مرحبا\nأريد إلغاء الطلب.\n\nمن: المتجر <support@shop.example>\n"
        "أرسلت: الثلاثاء 5 مارس 2024 10:00\nإلى: العميل\nالموضوع: الطلب\n\nتم شحن طلبك.\n",
        "مرحبا\nأريد إلغاء الطلب.",
        id="ar-outlook",
    ),
    pytest.param(
        "ممنون، رسید.\n\nدر تاریخ سه‌شنبه ۵ مارس ۲۰۲۴، ساعت ۱۰:۰۰ فروشگاه <support@shop.example> "
        "نوشت:\n> سفارش شما ارسال شد.\n",
        "ممنون، رسید.",
        id="fa-gmail",
    ),
    pytest.param(
        "سلام\nلطفا سفارش را لغو کنید.\n\nاز: فروشگاه <support@shop.example>\n"
        "ارسال: سه‌شنبه ۵ مارس ۲۰۲۴\nبه: مشتری\nموضوع: سفارش\n\nسفارش ارسال شد.\n",
        "سلام\nلطفا سفارش را لغو کنید.",
        id="fa-outlook",
    ),
    pytest.param(
        "收到了，谢谢。\n\n在 2024年3月5日周二 10:00，商店 <support@shop.example> 写道：\n"
        "> 您的订单已发货。\n",
        "收到了，谢谢。",
        id="zh-gmail",
    ),
    pytest.param(
        "请取消订单。\n\n发件人: 商店 <support@shop.example>\n发送时间: 2024年3月5日 10:00\n"
        "收件人: 客户\n主题: 订单\n\n您的订单已发货。\n",
        "请取消订单。",
        id="zh-outlook",
    ),
    pytest.param(
        "Gracias.\n\nEl mar, 5 mar 2024 a las 10:00, Tienda (<support@shop.example>) "
        "escribió:\n> Su pedido fue enviado.\n",
        "Gracias.",
        id="es-gmail",
    ),
    pytest.param(
        "Спасибо, получил.\n\n5 марта 2024 г., в 10:00, Магазин <support@shop.example> "
        "написал:\n> Ваш заказ отправлен.\n",
        "Спасибо, получил.",
        id="ru-mailru",
    ),
    pytest.param(
        "Thanks\n\n-- \nJane Roe\nACME Ltd | +1 555 0100\n",
        "Thanks",
        id="sig-dash-dash",
    ),
    pytest.param(
        "Here you go.\n\nSent from my Galaxy, please excuse typos.\n",
        "Here you go.",
        id="sig-mobile",
    ),
    pytest.param(
        "Sent from my laptop, because the app is broken. The order never arrived.\n",
        "Sent from my laptop, because the app is broken. The order never arrived.",
        id="not-a-signature",
    ),
    pytest.param(
        "> Can you confirm the address?\n\nYes: 12 Main St.\n\n> And the phone?\n\n555-0100\n",
        "> Can you confirm the address?\n\nYes: 12 Main St.\n\n> And the phone?\n\n555-0100",
        id="inline-answers-keep-context",
    ),
    pytest.param(
        "On your remote host run:\n\n    make deploy\n\nthen tell me.\n",
        "On your remote host run:\n\n    make deploy\n\nthen tell me.",
        id="on-is-not-an-intro",
    ),
    pytest.param(
        "> Only a quote.\n",
        "> Only a quote.",
        id="quote-only-keeps-everything",
    ),
    pytest.param(
        "---------- Forwarded message ---------\nFrom: A <a@example.com>\nDate: Tue, Mar 5, "
        "2024\nSubject: Hi\nTo: <b@example.com>\n\nThe forwarded text.\n",
        "The forwarded text.",
        id="bare-forward-shows-content",
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_extract_reply(text, expected):
    assert extract_reply(text) == expected


def test_crlf_input():
    text = "Thanks!\r\n\r\nOn Tue, Mar 5, 2024, Shop wrote:\r\n> old\r\n"
    assert extract_reply(text) == "Thanks!"


def test_html_only_gmail_quote():
    html = (
        '<div dir="ltr">Danke!<br>Jürgen</div><div class="gmail_quote"><div class="gmail_attr">'
        "Am Di., 5. März 2024 um 10:00 Uhr schrieb Shop:</div><blockquote>alt</blockquote></div>"
    )
    assert extract_reply(None, html) == "Danke!\nJürgen"


def test_html_only_apple_blockquote_cite():
    html = (
        "<html><body><div>Obrigado!</div><div><br><blockquote type='cite'>"
        "<div>Em 5 de mar. de 2024, Loja escreveu:</div><div>texto antigo</div>"
        "</blockquote></div></body></html>"
    )
    assert extract_reply("", html) == "Obrigado!"


def test_html_only_outlook_separator():
    html = (
        "<div>Please cancel.</div><div style='border:none;border-top:solid #E1E1E1 1.0pt;"
        "padding:3.0pt 0cm 0cm 0cm'><p><b>From:</b> Shop<br><b>Sent:</b> today</p></div>"
        "<p>Old text</p>"
    )
    assert extract_reply(None, html) == "Please cancel."


def test_text_wins_over_html():
    assert extract_reply("plain", "<p>html</p>") == "plain"
    assert extract_reply(None, None) == ""
    assert extract_reply("   \n", None) == ""


def test_pathological_input_is_fast():
    text = ("On Mon, Jan 1 2024 at 10:00 <a@b.c>" + "x " * 70 + "\n") * 2000
    start = time.monotonic()
    extract_reply(text)
    extract_reply(">" * 200_000)
    extract_reply("From: a\n" * 20_000)
    assert time.monotonic() - start < 10  # generous: this guards against backtracking blowups


# ------------------------------------------------------------------ shared corpus pass rate

# Measured: 114 of the 116 corpus entries whose expectations concern the visible
# reply pass (98.3%). The two misses are policy differences: discourse's spam_1
# expects "" for an all-quoted message (we return the whole text), and talon's
# reply-separated-by-hr drops a line above the <hr> that we keep.
MIN_PASS_RATE = 0.98


def _read(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.split("\n") if line.strip()), "")


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _as_list(value) -> list[str]:
    return value if isinstance(value, list) else [value]


def corpus_checks(entry: dict) -> list[tuple[str, object]]:
    """The expectations of one manifest entry that concern the visible reply.

    Expectations about reply counts, headers or sign-offs (mail-parser-reply's
    "signatures" include "Thanks,\\nJohn", which we deliberately keep) are not
    scored. ``latest_reply`` is compared without trailing separator lines.
    """
    e = entry["expect"]
    checks: list[tuple[str, object]] = []
    for key in (
        "visible_reply",
        "visible_reply_file",
        "visible_reply_first_line",
        "visible_reply_starts_with",
        "visible_reply_contains",
        "latest_reply_contains",
        "latest_reply_excludes",
        "latest_reply",
        "visible_reply_text_ignoring_whitespace",
        "reply_html_ignoring_whitespace",
        "must_finish_within_seconds",
        "hidden_signature_starts_with",
    ):
        if key in e:
            checks.append((key, e[key]))
    if e.get("fragments") == 1:
        checks.append(("unchanged", True))
    if str(e.get("signature") or "").lower().startswith("sent from"):
        checks.append(("latest_reply_excludes", e["signature"]))
    if "visible_reply_file" in e:  # the file check subsumes the first-line check
        checks = [c for c in checks if c[0] != "visible_reply_first_line"]
    return checks


def run_entry(entry: dict) -> tuple[bool, str]:
    source = _read(QUOTES / entry["file"])
    start = time.monotonic()
    out = extract_reply(None, source) if entry["format"] == "html_body" else extract_reply(source)
    elapsed = time.monotonic() - start
    for key, want in corpus_checks(entry):
        if key == "visible_reply":
            ok = out.strip() == want.strip()
        elif key == "visible_reply_file":
            ok = out.strip() == _read(QUOTES / want).strip()
        elif key == "visible_reply_first_line":
            ok = _first_line(out) == want.strip()
        elif key == "visible_reply_starts_with":
            ok = out.startswith(want)
        elif key in ("visible_reply_contains", "latest_reply_contains"):
            ok = all(x in out for x in _as_list(want))
        elif key == "latest_reply_excludes":
            ok = all(x not in out for x in _as_list(want))
        elif key == "latest_reply":
            ok = out.strip() == re.sub(r"(\n\s*[-_]{5,}\s*)+$", "", want).strip()
        elif key == "visible_reply_text_ignoring_whitespace":
            ok = _squash(out) == _squash(want)
        elif key == "reply_html_ignoring_whitespace":
            ok = _squash(out) == _squash(html_to_text(want))
        elif key == "must_finish_within_seconds":
            ok = elapsed < want
        elif key == "hidden_signature_starts_with":
            ok = want.strip() not in out
        elif key == "unchanged":
            ok = _squash(out) == _squash(source)
        else:  # pragma: no cover
            raise AssertionError(key)
        if not ok:
            return False, key
    return True, ""


@pytest.mark.skipif(not (QUOTES / "MANIFEST.jsonl").exists(), reason="shared corpus not present")
def test_corpus_pass_rate():
    entries = [json.loads(x) for x in (QUOTES / "MANIFEST.jsonl").read_text().splitlines() if x]
    scored = [e for e in entries if corpus_checks(e)]
    results = {e["file"]: run_entry(e) for e in scored}
    passed = sum(ok for ok, _ in results.values())
    failures = {f: why for f, (ok, why) in results.items() if not ok}
    rate = passed / len(scored)
    assert len(scored) >= 100
    assert rate >= MIN_PASS_RATE, f"{passed}/{len(scored)} = {rate:.1%}; failures: {failures}"
