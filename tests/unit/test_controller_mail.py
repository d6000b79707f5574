"""Emails to a controller's privacy contact: in its locale, with the request, escaped where it matters."""

from __future__ import annotations

import pytest

from rightsdesk.platform.config import SUPPORTED_LOCALES
from rightsdesk.render import i18n, mail

BASE = "https://privacy.example.com"
FACTS = {
    "controller_name": "Demo <Shop>",
    "request_id": "dsr_01JREQ",
    "request_type": "erasure",
    "due_at": "2025-12-23T13:15:00Z",
    "request_url": f"{BASE}/v1/controller/requests/dsr_01JREQ",
}
FORWARDED = {
    **FACTS,
    "relationship": "agent",
    "purposes": [],
    "flags": [],
    "subject_email": "ana@example.org",
    "subject_name": "Ana Novak",
    "details": "<script>alert(1)</script>\nsecond line",
    "purge_after_minutes": 60,
}


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_the_forwarded_request_has_what_the_controller_needs(locale):
    rendered = mail.render("request_forwarded", locale, FORWARDED)
    for part in (rendered.text, rendered.html):
        assert "dsr_01JREQ" in part and "ana@example.org" in part and "Ana Novak" in part
        assert i18n.request_type_name("erasure", locale) in " ".join(part.split())
        assert FACTS["request_url"] in part
        assert " ".join(i18n.format_datetime(FACTS["due_at"], locale).split()) in " ".join(part.split())
    assert "<script>" in rendered.text and "<script>" not in rendered.html, "details are escaped in HTML only"
    assert "&lt;script&gt;" in rendered.html and "Demo &lt;Shop&gt;" in rendered.html
    assert "ana@example.org" not in rendered.subject


def test_subjects_differ_by_notice_and_are_localized():
    subjects = {
        (notice, locale): mail.render("request_notice", locale, {**FACTS, "notice": notice}).subject
        for notice in ("cancelled", "due_in_3_days", "due_today")
        for locale in SUPPORTED_LOCALES
    }
    assert len(set(subjects.values())) == len(subjects)
    assert subjects[("due_in_3_days", "de")] == "Eine Datenschutzanfrage ist in 3 Tagen fällig"


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_delivery_failed_names_the_attempts_and_the_last_result(locale):
    rendered = mail.render("delivery_failed", locale, {**FACTS, "attempts": 12, "cause": "http_500"})
    text = " ".join(rendered.text.split())
    assert "12" in text and "http_500" in text and FACTS["request_url"] in rendered.text
