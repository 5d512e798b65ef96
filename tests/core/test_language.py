"""Each customer message's language, detected offline; the conversation's; the agents' own."""

from __future__ import annotations

import pytest

from app.inbox import language

SAMPLES = {
    "en": [
        "Hi, my order hasn't arrived yet, can you check where it is?",
        "I was charged twice for the same subscription this month.",
        "my card was declined",
    ],
    "fr": [
        "Bonjour, ma commande n'est toujours pas arrivée, pouvez-vous vérifier ?",
        "J'ai été débité deux fois pour le même abonnement ce mois-ci.",
        "Où est mon colis",
    ],
    "pt": [
        "Olá, o meu pedido ainda não chegou, vocês podem verificar onde está?",
        "Fui cobrado duas vezes pela mesma assinatura este mês.",
        "meu cartão foi recusado",
    ],
    "ar": [
        "مرحبا، طلبي لم يصل بعد، هل يمكنكم التحقق من مكانه؟",
        "تم خصم المبلغ مرتين لنفس الاشتراك هذا الشهر.",
        "تم رفض بطاقتي",
    ],
    "fa": [
        "سلام، سفارش من هنوز نرسیده، می‌توانید بررسی کنید کجاست؟",
        "این ماه برای همان اشتراک دو بار از حساب من برداشت شده است.",
        "کارت من رد شد",
    ],
}


@pytest.mark.parametrize(
    ("expected", "text"), [(lang, text) for lang, texts in SAMPLES.items() for text in texts]
)
def test_customer_messages_in_our_five_languages_are_recognised(expected, text):
    assert language.detect(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "ok",
        "OK!",
        "Thanks!!",
        "merci",
        "obrigado",
        "شكرا",
        "👍",
        "4411",
        "",
        None,
        "https://shop.example/orders/4411",
        "ana@example.com 4411",
    ],
)
def test_short_or_wordless_texts_tell_no_language(text):
    assert language.detect(text) is None


def test_the_detector_is_built_once_per_process_and_only_when_needed(monkeypatch):
    built = []
    real = language._build

    def counting():
        built.append(1)
        return real()

    monkeypatch.setattr(language, "_detector", None)
    monkeypatch.setattr(language, "_build", counting)
    assert built == []  # importing the module built nothing
    assert language.detect("ok") is None  # too short: the detector is not even needed
    assert built == []
    for text in ("Où est mon colis", "Where is my package", "Cadê a minha encomenda"):
        language.detect(text)
    assert built == [1]


def test_spoken_languages_are_validated():
    assert language.spoken(["pt", "EN", "pt"]) == ["en", "pt"]
    assert language.spoken([]) == []
    for bad in ("pt", ["xx"], [1], None):
        with pytest.raises(language.InvalidLanguages):
            language.spoken(bad)


def _conv(client, make, headers, conv_id):
    return client.get(f"/api/v1/conversations/{conv_id}", headers=headers).get_json()


def test_ingest_stores_the_language_on_the_message_and_the_conversation(client, make):
    agent = make.user()
    inbox = make.inbox("sms", members=[agent])
    headers = make.headers(agent)
    first = make.inbound(inbox, contact="+5511987654321", text="Olá, o meu pedido ainda não chegou")
    assert first.language == "pt"
    conv = _conv(client, make, headers, first.conversation_id)
    assert conv["language"] == "pt"
    # a short answer is stored without a language and does not flip the conversation
    short = make.inbound(inbox, contact="+5511987654321", text="ok")
    assert short.conversation_id == first.conversation_id and short.language is None
    assert _conv(client, make, headers, first.conversation_id)["language"] == "pt"
    items = client.get(
        f"/api/v1/conversations/{first.conversation_id}/messages", headers=headers
    ).get_json()["items"]
    assert [m["language"] for m in items if m["direction"] == "inbound"] == ["pt", None]
    # the customer switches language with a real sentence: the conversation follows
    make.inbound(inbox, contact="+5511987654321", text="Sorry, can we continue in English please?")
    assert _conv(client, make, headers, first.conversation_id)["language"] == "en"
    listed = client.get("/api/v1/conversations", headers=headers).get_json()["items"]
    assert [c["language"] for c in listed] == ["en"]


def test_an_older_message_delivered_late_does_not_change_the_language(make, session):
    from datetime import timedelta

    from app.clock import now
    from app.models import Conversation

    inbox = make.inbox("sms")
    at = now()
    new = make.inbound(inbox, contact="+33612345678", text="Bonjour, où est ma commande ?", at=at)
    make.inbound(
        inbox,
        contact="+33612345678",
        text="Hello, I placed an order yesterday",
        at=at - timedelta(minutes=5),
    )
    session.expire_all()
    assert session.get(Conversation, new.conversation_id).language == "fr"


def test_agents_list_the_languages_they_speak(client, make):
    ana = make.user(name="Ana")
    headers = make.headers(ana)
    assert client.get("/api/v1/me", headers=headers).get_json()["languages"] == []
    resp = client.patch("/api/v1/me", headers=headers, json={"languages": ["pt", "fr"]})
    assert resp.status_code == 200 and resp.get_json()["languages"] == ["fr", "pt"]
    assert client.get("/api/v1/me", headers=headers).get_json()["languages"] == ["fr", "pt"]
    team = client.get("/api/v1/users", headers=headers).get_json()["items"]
    assert [u["languages"] for u in team if u["id"] == ana.id] == [["fr", "pt"]]
    bad = client.patch("/api/v1/me", headers=headers, json={"languages": ["klingon"]})
    assert bad.status_code == 422 and "klingon" in bad.get_json()["error"]["message"]
    assert client.get("/api/v1/me", headers=headers).get_json()["languages"] == ["fr", "pt"]
