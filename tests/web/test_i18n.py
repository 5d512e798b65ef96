"""The interface speaks English, French, Portuguese, Arabic and Persian (right to left)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

TRANSLATIONS = Path(__file__).resolve().parents[2] / "app" / "translations"
LANGS = ["fr", "pt", "ar", "fa"]
PLACEHOLDER = re.compile(r"\{\w+\}|%\(\w+\)s")


def _po(lang):
    with open(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po", "rb") as f:
        return read_po(f, locale=lang)


@pytest.mark.parametrize("lang", LANGS)
def test_every_browser_string_is_translated_with_its_placeholders(lang):
    from app.web.ui import js_msgids

    catalog = _po(lang)
    for msgid in js_msgids():
        message = catalog.get(msgid)
        assert message is not None and message.string, f"{lang}: {msgid!r} is not translated"
        assert sorted(PLACEHOLDER.findall(msgid)) == sorted(PLACEHOLDER.findall(message.string)), (
            f"{lang}: placeholders differ in {msgid!r}"
        )
    untranslated = [m.id for m in catalog if m.id and not m.string]
    assert untranslated == []


@pytest.fixture(scope="module")
def marked(tmp_path_factory) -> set[str]:
    """Every string the code marks for translation, extracted as ``pybabel extract`` does
    (the command of ``app/translations/README.md``)."""
    root = TRANSLATIONS.parents[1]
    pot = tmp_path_factory.mktemp("pot") / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg"]
        + ["-k", "_l", "--no-location", "-o", str(pot), "."],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        check=True,
        capture_output=True,
    )
    with open(pot, "rb") as f:
        return {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}


@pytest.mark.parametrize("lang", LANGS)
def test_every_marked_string_is_in_the_catalog_and_translated(marked, lang):
    """Templates and Python too: a string added without updating the catalogs would show
    in English (update and translate as ``app/translations/README.md`` says)."""
    catalog = _po(lang)
    translated = {
        m.id if isinstance(m.id, str) else m.id[0]
        for m in catalog
        if m.id and (m.string if isinstance(m.string, str) else m.string[0])
    }
    assert sorted(marked - translated) == [], f"{lang}: not in the catalog or not translated"


@pytest.mark.parametrize("lang", LANGS)
def test_compiled_catalogs_match_the_sources(lang):
    with open(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.mo", "rb") as f:
        compiled = {m.id: m.string for m in read_mo(f) if m.id}
    source = {m.id: m.string for m in _po(lang) if m.id and m.string}
    assert compiled == source, f"run: pybabel compile -d app/translations ({lang})"


@pytest.mark.parametrize(
    ("lang", "direction", "text"),
    [
        ("en", "ltr", "Sign in"),
        ("fr", "ltr", "Se connecter"),
        ("pt", "ltr", "Entrar"),
        ("ar", "rtl", "تسجيل الدخول"),
        ("fa", "rtl", "ورود"),
    ],
)
def test_login_page_in_each_language(client, make, lang, direction, text):
    make.user("admin")  # past the first-admin set-up
    html = client.get(f"/login?lang={lang}").get_data(as_text=True)
    assert f'<html lang="{lang}" dir="{direction}">' in html
    assert text in html


def test_the_inbox_hands_translated_strings_to_the_browser(client, make):
    import json

    user = make.user(locale="fa")
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    client.post(
        "/login",
        data={"email": user.email, "password": "correct horse battery", "csrf_token": token},
    )
    from flask_babel import refresh

    refresh()  # the test's app context outlives requests: forget the sign-in page's language
    html = client.get("/").get_data(as_text=True)
    assert 'dir="rtl"' in html
    boot = json.loads(
        re.search(r'<script type="application/json" id="boot">(.*?)</script>', html, re.S).group(1)
    )
    assert boot["me"]["locale"] == "fa"
    assert boot["strings"]["Private note"] == "یادداشت خصوصی"


def test_language_choice_is_saved_on_the_user(client, make):
    user = make.user()
    resp = client.patch("/api/v1/me", json={"locale": "pt"}, headers=make.headers(user))
    assert resp.status_code == 200
    assert (
        client.patch("/api/v1/me", json={"locale": "xx"}, headers=make.headers(user)).status_code
        == 422
    )
    from app.extensions import db
    from app.models import User

    db.session.expire_all()
    assert db.session.get(User, user.id).locale == "pt"
