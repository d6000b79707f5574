"""Emails to subjects: both parts, every locale, absolute links, escaped where it matters."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

import pytest

from rightsdesk.platform import config
from rightsdesk.platform.config import SUPPORTED_LOCALES
from rightsdesk.render import i18n, mail

BASE = "https://privacy.example.com"
CONTEXTS = {
    "verification_code": {
        "code": "482913",
        "verify_url": f"{BASE}/verify/01JREQ?code=482913&lang=en",
        "request_type": "erasure",
        "expires_minutes": 15,
    },
    "request_verified": {
        "request_type": "access",
        "due_at": datetime(2025, 12, 23, 13, 15, tzinfo=timezone.utc),
        "status_url": f"{BASE}/status/01JREQ?token=rdst_abc",
    },
    "status_changed": {
        "request_type": "rectification",
        "status": "completed",
        "status_url": f"{BASE}/status/01JREQ?token=rdst_abc",
        "reason": "We corrected your address.",
    },
    "due_extended": {
        "request_type": "access",
        "due_at": "2026-02-23T23:59:59Z",
        "reason": "We have to search three archives.",
        "status_url": f"{BASE}/status/01JREQ",
    },
    "request_forwarded": {
        "controller_name": "Demo Shop",
        "request_id": "dsr_01JREQ",
        "request_type": "consent_withdrawal",
        "relationship": "guardian",
        "purposes": ["marketing", "newsletter"],
        "flags": ["excessive"],
        "subject_email": "ana@example.org",
        "subject_name": "Ana Novak",
        "details": "Chat on 3 May & the newsletter",
        "due_at": "2025-12-23T13:15:00Z",
        "request_url": f"{BASE}/v1/controller/requests/dsr_01JREQ",
        "purge_after_minutes": 60,
    },
    "delivery_failed": {
        "controller_name": "Demo Shop",
        "request_id": "dsr_01JREQ",
        "request_type": "erasure",
        "due_at": "2025-12-23T13:15:00Z",
        "request_url": f"{BASE}/v1/controller/requests/dsr_01JREQ",
        "attempts": 12,
        "cause": "http_500",
    },
    "webhook_disabled": {
        "controller_name": "Acme Shop",
        "controller_id": "ctl_acme",
        "requests_url": "https://privacy.example.com/v1/controller/requests",
    },
    "request_notice": {
        "controller_name": "Demo Shop",
        "request_id": "dsr_01JREQ",
        "request_type": "access",
        "due_at": "2025-12-23T13:15:00Z",
        "request_url": f"{BASE}/v1/controller/requests/dsr_01JREQ",
        "notice": "due_in_3_days",
    },
}
SUBJECTS = {
    ("verification_code", "de"): "Bestätigen Sie Ihre Datenschutzanfrage",
    ("verification_code", "sl"): "Potrdite svojo zahtevo glede zasebnosti",
    ("request_verified", "en"): "Your privacy request is confirmed",
    ("status_changed", "de"): "Neuigkeiten zu Ihrer Datenschutzanfrage: Abgeschlossen",
    ("due_extended", "de"): "Die Frist für Ihre Datenschutzanfrage wurde verlängert",
    ("due_extended", "sl"): "Rok za vašo zahtevo glede zasebnosti je bil podaljšan",
}


@pytest.fixture
def settings_env(monkeypatch):
    """Change the environment settings are read from; the cached settings are restored afterwards."""
    yield monkeypatch
    monkeypatch.undo()
    config.reload()


@pytest.fixture
def base_url(settings_env):
    settings_env.setenv("PUBLIC_BASE_URL", BASE + "/")
    return config.reload()


def hrefs(html: str) -> list[str]:
    return re.findall(r'href="([^"]*)"', html)


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
@pytest.mark.parametrize("template", mail.TEMPLATES)
def test_every_mail_has_subject_html_and_text_in_every_locale(template, locale):
    rendered = mail.render(template, locale, CONTEXTS[template])
    assert rendered.subject and "\n" not in rendered.subject
    if (template, locale) in SUBJECTS:
        assert rendered.subject == SUBJECTS[(template, locale)]
    assert rendered.html.startswith("<!doctype html>") and f'<html lang="{locale}">' in rendered.html
    assert f"<title>{rendered.subject}</title>" in rendered.html
    assert rendered.text.endswith("\n") and "<" not in rendered.text.replace("<b>", "")
    links = hrefs(rendered.html)
    assert links and all(link.startswith("https://") for link in links)
    for url in (v for k, v in CONTEXTS[template].items() if k.endswith("_url")):
        assert url in rendered.text and url.replace("&", "&amp;") in rendered.html
    # The request type appears by its localized name, not its code (a mail about no request has none).
    if "request_type" in CONTEXTS[template]:
        type_name = i18n.request_type_name(CONTEXTS[template]["request_type"], locale)
        assert type_name in rendered.html and type_name in " ".join(rendered.text.split())


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_the_extension_mail_names_the_new_due_date_and_the_reason_in_the_subjects_language(locale):
    rendered = mail.render("due_extended", locale, CONTEXTS["due_extended"])
    date = " ".join(i18n.format_datetime("2026-02-23T23:59:59Z", locale).split())
    for part in (rendered.text, rendered.html):
        assert date in " ".join(part.split()) and "We have to search three archives." in part
    assert {"en": "more time", "de": "mehr Zeit", "sl": "več časa"}[locale] in rendered.text


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_an_overdue_notice_tells_the_controller_it_is_overdue(locale):
    rendered = mail.render("request_notice", locale, {**CONTEXTS["request_notice"], "notice": "overdue"})
    assert (
        rendered.subject
        == {
            "en": "A privacy request is overdue",
            "de": "Eine Datenschutzanfrage ist überfällig",
            "sl": "Zahteva glede zasebnosti je zapadla",
        }[locale]
    )
    assert " ".join(i18n.format_datetime("2025-12-23T13:15:00Z", locale).split()) in " ".join(rendered.text.split())


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_verification_code_mail(locale):
    rendered = mail.render("verification_code", locale, CONTEXTS["verification_code"])
    assert "    482913\n" in rendered.text  # on a line of its own, easy to spot and copy
    assert "482913" in rendered.html
    assert "482913" not in rendered.subject  # subjects end up in previews and logs
    assert {"en": "15 minutes", "de": "15 Minuten", "sl": "15 minut"}[locale] in rendered.text


def test_text_is_wrapped_but_links_are_whole():
    long_url = BASE + "/status/01JREQ?token=" + "x" * 120
    rendered = mail.render("status_changed", "de", {**CONTEXTS["status_changed"], "status_url": long_url})
    lines = rendered.text.splitlines()
    assert long_url in lines
    assert all(len(line) <= 72 for line in lines if line != long_url)
    assert "-- " in lines  # signature separator with its space


def test_dates_are_localized_and_may_arrive_as_iso_strings():
    context = {**CONTEXTS["request_verified"], "due_at": "2025-12-23T13:15:00Z"}
    text = " ".join(mail.render("request_verified", "de", context).text.split())
    assert "23. Dezember 2025, 13:15 UTC" in text


def test_reason_is_escaped_in_html_and_kept_in_text():
    context = {**CONTEXTS["status_changed"], "reason": '<script>alert("x")</script>'}
    rendered = mail.render("status_changed", "en", context)
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert '<script>alert("x")</script>' in rendered.text
    without = mail.render("status_changed", "en", {**context, "reason": None})
    assert "Note from the website owner" not in without.text


def test_relative_links_are_made_absolute(base_url):
    context = {**CONTEXTS["request_verified"], "status_url": "/status/01JREQ?token=t"}
    rendered = mail.render("request_verified", "en", context)
    assert f"{BASE}/status/01JREQ?token=t" in rendered.text
    assert all(link.startswith(BASE + "/") for link in hrefs(rendered.html))


def test_relative_links_without_a_base_url_fail_loudly(settings_env):
    settings_env.delenv("PUBLIC_BASE_URL", raising=False)
    config.reload()
    with pytest.raises(ValueError, match="PUBLIC_BASE_URL"):
        mail.render("request_verified", "en", {**CONTEXTS["request_verified"], "status_url": "/status/x"})


def test_missing_context_and_unknown_templates_are_errors():
    with pytest.raises(ValueError, match="code"):
        mail.render("verification_code", "en", {**CONTEXTS["verification_code"], "code": None})
    with pytest.raises(ValueError):
        mail.render("../pages/form", "en", {})


def test_unknown_locale_is_english():
    assert (
        mail.render("request_verified", "fr", CONTEXTS["request_verified"]).subject
        == "Your privacy request is confirmed"
    )


def test_rendering_is_fast():
    mail.render("verification_code", "sl", CONTEXTS["verification_code"])  # compile once
    started = time.perf_counter()
    for locale in SUPPORTED_LOCALES * 100:
        mail.render("verification_code", locale, CONTEXTS["verification_code"])
    per_mail = (time.perf_counter() - started) / 300
    assert per_mail < 0.005, f"{per_mail * 1000:.2f} ms per mail"
    assert mail._environment.cache_info().currsize == 1
