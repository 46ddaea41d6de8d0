"""Russian and English are both first-class: every string is translated, pages switch languages."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import polib
import pytest
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse

from tests.conftest import login
from tests.test_pages import page_state

ROOT = Path(__file__).resolve().parent.parent
RU_PO = ROOT / "locale" / "ru" / "LC_MESSAGES" / "django.po"
RU_MO = RU_PO.with_suffix(".mo")
# Where translatable strings live (tests and bench are for developers, in English).
SOURCE_FOLDERS = ("helpdesk", "integrations", "smartchat", "templates")


def _untranslated(po: polib.POFile) -> list[str]:
    return [entry.msgid for entry in po if not entry.obsolete and not entry.translated()]


def test_the_russian_catalogue_has_no_empty_or_fuzzy_entries():
    assert _untranslated(polib.pofile(str(RU_PO))) == []


def test_the_compiled_catalogue_matches_its_source():
    # Django reads the .mo; a .po edited without `make messages` would silently not apply.
    def text(entry) -> object:
        return (entry.msgstr_plural and dict(entry.msgstr_plural)) or entry.msgstr

    source = {(e.msgctxt, e.msgid): text(e) for e in polib.pofile(str(RU_PO)) if not e.obsolete and e.msgid}
    compiled = {(e.msgctxt, e.msgid): text(e) for e in polib.mofile(str(RU_MO)) if e.msgid}
    assert compiled == source


def test_every_string_in_the_code_has_a_russian_translation(tmp_path):
    """Extract the strings afresh (as `make messages` does) and check none is new or untranslated."""
    if shutil.which("xgettext") is None or shutil.which("msgmerge") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("GNU gettext is needed in CI to check the catalogue (apt-get install gettext)")
        pytest.skip("GNU gettext is not installed (apt-get install gettext)")
    # In a copy of the sources: makemessages writes into every `locale` folder it can see.
    for folder in SOURCE_FOLDERS:
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    target = tmp_path / "locale" / "ru" / "LC_MESSAGES"
    target.mkdir(parents=True)
    shutil.copy(RU_PO, target / "django.po")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with override_settings(LOCALE_PATHS=[tmp_path / "locale"]):
            call_command("makemessages", locale=["ru"], no_obsolete=True, verbosity=0)
    finally:
        os.chdir(cwd)
    fresh = polib.pofile(str(target / "django.po"))
    assert len(fresh) > 100
    missing = _untranslated(fresh)
    assert missing == [], f"untranslated strings, run `make messages` and translate: {missing}"


def test_the_sign_in_page_follows_the_browser_language(client, cast):
    assert "Войти" in client.get(reverse("web:login"), headers={"accept-language": "ru"}).content.decode()
    english = client.get(reverse("web:login"), headers={"accept-language": "en"}).content.decode()
    assert "Sign in" in english and "Войти" not in english


def test_the_inbox_speaks_russian_once_chosen(client, cast):
    login(client, cast.alice)
    response = client.post(reverse("set_language"), {"language": "ru", "next": reverse("web:inbox")})
    assert response.status_code == 302
    response = client.get(reverse("web:conversation", args=[cast.conversation.pk]) + "?view=all")
    html = response.content.decode()
    for words in ("Входящие", "Диалоги", "Мои", "Не назначены", "Открытые", "Отложенные", "Закрытые", "Взять себе"):
        assert words in html, words
    assert "Администратор" in html  # the built-in role's name, translated
    state = page_state(response)
    assert state["i18n"]["open"] == "Открыт" and state["i18n"]["visitor"] == "Посетитель #%(id)s"
    # The page names a nameless contact in the reader's language; events carry no such words.
    assert f"Посетитель #{cast.conversation.contact_id}" in html
    assert state["conversation"]["contact_name"] == ""


def test_a_renamed_builtin_role_shows_its_new_name(client, cast):
    cast.alice.role.name = "Team lead"
    cast.alice.role.save()
    login(client, cast.alice)
    html = client.get(reverse("web:inbox"), headers={"accept-language": "ru"}).content.decode()
    assert "Team lead" in html and "Администратор" not in html


def test_errors_from_actions_are_translated(client, cast):
    login(client, cast.bob)
    client.post(reverse("set_language"), {"language": "ru"})
    response = client.post(
        reverse("api:reply", args=[cast.conversation.pk]), {"body": "x" * 6000}, content_type="application/json"
    )
    assert response.status_code == 400
    assert "не длиннее" in response.content.decode()


def test_the_widget_has_every_string_in_both_languages():
    script = (ROOT / "static" / "widget" / "smartchat-widget.js").read_text()
    blocks = dict(re.findall(r"\n    (en|ru): \{\n(.*?)\n    \}", script, flags=re.S))
    keys = {lang: set(re.findall(r"^\s+(\w+):", body, flags=re.M)) for lang, body in blocks.items()}
    assert set(keys) == {"en", "ru"} and len(keys["en"]) >= 10
    assert keys["ru"] == keys["en"]
