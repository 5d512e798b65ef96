"""Subjects, Message-IDs, References and reply tokens (connectors.email.threads)."""

from __future__ import annotations

import pytest

from connectors.email.threads import (
    base_subject,
    bracket,
    build_references,
    display_subject,
    make_message_id,
    match_subject,
    normalize_message_id,
    parse_id_list,
    parse_message_id,
    plus_token,
    reply_subject,
    subject_ticket_token,
    token_from_message_id,
)

SUBJECTS = [
    # original, display, match
    ("Order late", "Order late", "order late"),
    ("Re: Order late", "Order late", "order late"),
    ("RE: Re: re: Order late", "Order late", "order late"),
    ("Fwd: Re: Order late", "Order late", "order late"),
    ("FW: Order late", "Order late", "order late"),
    ("Re[2]: Order late", "Order late", "order late"),
    ("Re(3): Order late", "Order late", "order late"),
    ("RE : Commande en retard", "Commande en retard", "commande en retard"),
    ("TR: Commande", "Commande", "commande"),
    ("AW: WG: Bestellung", "Bestellung", "bestellung"),
    ("SV: Beställning", "Beställning", "beställning"),
    ("VS: Tilaus", "Tilaus", "tilaus"),
    ("RV: Pedido", "Pedido", "pedido"),
    ("RES: ENC: Pedido atrasado", "Pedido atrasado", "pedido atrasado"),
    ("RIF: Ordine", "Ordine", "ordine"),
    ("ODP: Zamówienie", "Zamówienie", "zamówienie"),
    ("Antw: Bestelling", "Bestelling", "bestelling"),
    ("回复：订单问题", "订单问题", "订单问题"),
    ("回覆: 訂單", "訂單", "訂單"),
    ("转发: 回复: 订单", "订单", "订单"),
    ("轉寄：訂單", "訂單", "訂單"),
    ("رد: طلبي", "طلبي", "طلبي"),
    ("پاسخ: سفارش", "سفارش", "سفارش"),
    ("Re: [#123] Order late", "[#123] Order late", "order late"),
    ("[#123] Re: Order late", "[#123] Order late", "order late"),
    ("Re: [users] Re: Release", "[users] Release", "release"),
    ("Order late (fwd)", "Order late", "order late"),
    ("[Fwd: Order late]", "Order late", "order late"),
    ("Re:   Order\t  late  ", "Order late", "order late"),
    ("[#123]", "[#123]", "[#123]"),
    ("Re:", "", ""),
    ("", "", ""),
    (None, "", ""),
    ("Reply needed", "Reply needed", "reply needed"),
    ("Tr: x", "x", "x"),
    ("Regarding: x", "Regarding: x", "regarding: x"),
]


@pytest.mark.parametrize(("subject", "display", "match"), SUBJECTS)
def test_subject_normalisation(subject, display, match):
    assert display_subject(subject) == display
    assert match_subject(subject) == match
    assert base_subject(subject) == match


def test_localised_reply_threads_with_original():
    assert match_subject("AW: Hello") == match_subject("Hello")


@pytest.mark.parametrize(
    ("original", "reply"),
    [
        ("Order late", "Re: Order late"),
        ("Re: Re: Order late", "Re: Order late"),
        ("AW: Re: [#42] Bestellung", "Re: [#42] Bestellung"),
        ("", "Re:"),
        (None, "Re:"),
    ],
)
def test_reply_subject_never_stacks(original, reply):
    assert reply_subject(original) == reply


def test_subject_ticket_token():
    assert subject_ticket_token("Re: [#123] Order late") == 123
    assert subject_ticket_token("Order [#7]") == 7
    assert subject_ticket_token("Order #123") is None
    assert subject_ticket_token(None) is None


@pytest.mark.parametrize(
    ("address", "ours", "token"),
    [
        ("support+c0nv42@shop.example", "support@shop.example", "c0nv42"),
        ("Support+AbC@Shop.Example", "support@shop.example", "AbC"),
        ("<support+t1@shop.example>", "support@shop.example", "t1"),
        ("support@shop.example", "support@shop.example", None),
        ("support+@shop.example", "support@shop.example", None),
        ("sales+t1@shop.example", "support@shop.example", None),
        ("support+t1@other.example", "support@shop.example", None),
        ("", "support@shop.example", None),
        (None, None, None),
    ],
)
def test_plus_token(address, ours, token):
    assert plus_token(address, ours) == token


def test_message_ids_round_trip():
    mid = make_message_id("c0nv42", "m-7_x", "Shop.Example")
    assert mid == "<sb.c0nv42.m-7_x@shop.example>"
    assert token_from_message_id(mid) == "c0nv42"
    assert token_from_message_id("sb.c0nv42.m-7_x@shop.example") == "c0nv42"
    assert parse_message_id(mid) == ("c0nv42", "m-7_x")
    assert token_from_message_id("<CAJx9k@mail.gmail.com>") is None
    assert token_from_message_id(None) is None
    assert make_message_id("a", "b", "x.org") == make_message_id("a", "b", "x.org")


@pytest.mark.parametrize(
    ("token", "ref", "domain"),
    [("a.b", "1", "x.org"), ("a", "b c", "x.org"), ("", "1", "x.org"), ("a", "1", "")],
)
def test_make_message_id_rejects_unsafe_parts(token, ref, domain):
    with pytest.raises(ValueError):
        make_message_id(token, ref, domain)


def test_normalize_and_parse_ids():
    assert normalize_message_id(" <abc@x> ") == "abc@x"
    assert normalize_message_id("abc@x") == "abc@x"
    assert normalize_message_id("<a@x> <b@x>") == "a@x"
    assert normalize_message_id(None) == ""
    assert bracket("abc@x") == "<abc@x>" == bracket("<abc@x>")
    assert parse_id_list("<a@x>\r\n <b@x> <a@x>") == ["a@x", "b@x"]
    assert parse_id_list("a@x, b@x") == ["a@x", "b@x"]
    assert parse_id_list("") == []


def test_build_references_keeps_first_and_last():
    refs = [f"<m{i}@x>" for i in range(30)]
    out = build_references(refs, "<parent@x>", limit=20)
    assert len(out) == 20
    assert out[0] == "<m0@x>"
    assert out[-1] == "<parent@x>"
    assert out[1:-1] == [f"<m{i}@x>" for i in range(12, 30)]


def test_build_references_dedupes_and_accepts_header_values():
    assert build_references(["<a@x> <b@x>", "b@x"], "c@x") == ["<a@x>", "<b@x>", "<c@x>"]
    assert build_references([], "<p@x>") == ["<p@x>"]
