"""The notices' parts without AWS: mails and the unsubscribe page in every language, their catalog,
unsubscribe tokens, the MIME message, the send-rate pacer and SES event parsing."""

from __future__ import annotations

import email
import email.policy
import io
import json
import re
from configparser import ConfigParser
from datetime import timedelta
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from rightsdesk.audience import suppression, unsubscribe
from rightsdesk.kernel import clock
from rightsdesk.notices import notice_pages
from rightsdesk.outbound import notify
from rightsdesk.platform import config
from rightsdesk.platform.config import SUPPORTED_LOCALES
from rightsdesk.render import i18n, mime, notice_mail
from rightsdesk.render.mail import RenderedMail

ROOT = Path(__file__).resolve().parents[2]
BASE = "https://privacy.example.com"
HASH = "a" * 64

CONTEXTS = {
    "breach_controller": {
        "controller_name": "Acme <Shop>",
        "incident_id": "inc_1",
        "detected_at": "2026-11-20T10:00:00Z",
        "summary": "Another tenant could read <chat> logs.\n\nWe closed the hole.",
        "categories": ["chat_history", "custom_thing"],
        "contact": "dpo@rightsdesk.example",
        "high_risk": True,
        "subjects_notified": True,
        "consequences": None,
        "measures": "Keys rotated.",
    },
    "breach_subject": {
        "controller_names": ["Acme Shop", "Globex"],
        "incident_id": "inc_1",
        "detected_at": "2026-11-20T10:00:00Z",
        "summary": "Another tenant could read chat logs.",
        "categories": ["chat_history", "email"],
        "contact": "dpo@rightsdesk.example",
        "consequences": "Phishing is possible.",
        "measures": None,
    },
    "policy_notice": {
        "audience": "controller",
        "controller_name": "Acme",
        "doc": "privacy",
        "version": "2026-12",
        "url": "https://example.com/privacy/2026-12",
        "summary": "Chats are kept 30 days.",
        "effective_at": "2026-12-01T00:00:00Z",
        "archive_url": "/v1/policies/privacy",
    },
    "policy_update": {
        "doc": "terms",
        "version": "2026-12a",
        "url": "https://example.com/terms/2026-12a",
        "summary": "Wording.",
        "effective_at": "2026-12-01T00:00:00Z",
        "archive_url": "/v1/policies/terms",
        "unsubscribe_url": f"{BASE}/v1/unsubscribe?token=abc.def",
    },
    "breach_deadline_warning": {
        "incident_id": "inc_1",
        "due_at": "2026-11-23T10:00:00Z",
        "hours_left": 2,
        "unsent": 3,
        "failed": 1,
        "authority_recorded": False,
        "overdue": False,
    },
    "requests_overdue_digest": {
        "days": 7,
        "requests": [
            {
                "request_id": "dsr_1",
                "controller_id": "ctl_a",
                "request_type": "erasure",
                "status": "delivered",
                "due_at": "2026-11-16T23:59:59Z",
            },
            {
                "request_id": "dsr_2",
                "controller_id": "ctl_b",
                "request_type": "access",
                "status": "acknowledged",
                "due_at": "2026-11-15T23:59:59Z",
            },
        ],
    },
}
# One phrase per notice and language that only a real translation contains.
PHRASES = {
    "breach_controller": {"en": "What you need to do", "de": "Was Sie tun müssen", "sl": "Kaj morate storiti"},
    "breach_subject": {"en": "What you can do", "de": "Was Sie tun können", "sl": "Kaj lahko storite"},
    "policy_notice": {
        "en": "Summary of the changes",
        "de": "Zusammenfassung der Änderungen",
        "sl": "Povzetek sprememb",
    },
    "policy_update": {"en": "Earlier versions remain", "de": "Frühere Fassungen", "sl": "Prejšnje različice"},
    "breach_deadline_warning": {"en": "supervisory authority", "de": "Aufsichtsbehörde", "sl": "nadzornemu organu"},
    "requests_overdue_digest": {"en": "days after their due date", "de": "Tage nach ihrer Frist", "sl": "dni po roku"},
}


@pytest.fixture(autouse=True)
def base_url(monkeypatch):
    monkeypatch.setenv("PUBLIC_BASE_URL", BASE)
    config.reload()
    yield
    monkeypatch.undo()
    config.reload()


# ------------------------------------------------------------------ mails


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
@pytest.mark.parametrize("template", notice_mail.TEMPLATES)
def test_every_notice_has_subject_html_and_text_in_every_language(template, locale):
    rendered = notice_mail.render(template, locale, CONTEXTS[template])
    assert rendered.subject and "\n" not in rendered.subject
    assert rendered.html.startswith("<!doctype html>") and f'<html lang="{locale}">' in rendered.html
    assert rendered.text.endswith("\n")
    assert PHRASES[template][locale] in rendered.text and PHRASES[template][locale] in rendered.html
    for other in SUPPORTED_LOCALES:
        if other != locale:
            assert PHRASES[template][other] not in rendered.text
    links = re.findall(r'href="([^"]*)"', rendered.html)
    assert all(link.startswith("https://") for link in links)


def test_operator_text_is_escaped_in_html_and_kept_in_text():
    rendered = notice_mail.render("breach_controller", "en", CONTEXTS["breach_controller"])
    assert "&lt;chat&gt;" in rendered.html and "<chat>" not in rendered.html
    assert "Acme &lt;Shop&gt;" in rendered.html
    assert "<chat>" in rendered.text
    assert rendered.html.count("<p style") >= 2, "blank lines of the summary make paragraphs"
    assert "custom_thing" in rendered.text, "an unknown category is shown as typed"
    assert "still assessing the likely consequences" in rendered.text


def test_the_warning_counts_hours_in_slovenian_plural_forms():
    text = notice_mail.render(
        "breach_deadline_warning", "sl", {**CONTEXTS["breach_deadline_warning"], "hours_left": 2}
    ).text
    assert "čez 2 uri" in text and "3 obvestila še niso poslana" in text


def test_relative_archive_links_become_absolute():
    rendered = notice_mail.render("policy_notice", "en", CONTEXTS["policy_notice"])
    assert f"{BASE}/v1/policies/privacy" in rendered.text


def test_missing_context_fails_loudly():
    with pytest.raises(ValueError, match="needs summary"):
        notice_mail.render("breach_subject", "en", {**CONTEXTS["breach_subject"], "summary": ""})
    with pytest.raises(ValueError):
        notice_mail.render("verification_code", "en", {})


# ------------------------------------------------------------------ the unsubscribe page


@pytest.mark.parametrize("state", notice_pages.UNSUBSCRIBE_STATES)
@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_the_unsubscribe_page_in_every_state_and_language(state, locale):
    html = notice_pages.unsubscribe_page(state, locale, "tok.en")
    assert f'<html lang="{locale}">' in html
    has_form = f'<form method="post" action="/v1/unsubscribe?token=tok.en&amp;lang={locale}"' in html
    assert has_form == (state == "confirm"), "only the confirmation offers the button"
    assert html.count('hreflang="') == 3


def test_the_unsubscribe_page_names_the_list():
    assert "Vom Newsletter abmelden" in notice_pages.unsubscribe_page("confirm", "de", "t", "newsletter")
    assert "Unsubscribe from policy updates" in notice_pages.unsubscribe_page("confirm", "en", "t", "policy_updates")
    assert "Oglasnih sporočil vam ne bomo več pošiljali." in notice_pages.unsubscribe_page(
        "done", "sl", None, "marketing"
    )


# ------------------------------------------------------------------ the notices catalog


def _po(locale: str):
    with open(i18n.LOCALES_DIR / locale / "LC_MESSAGES" / "notices.po", "rb") as handle:
        return read_po(handle, locale=locale)


def _ids(catalog) -> dict:
    return {(tuple(m.id) if isinstance(m.id, (list, tuple)) else m.id): m.string for m in catalog if m.id}


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_the_notices_catalog_matches_its_sources_and_compiled_file(locale):
    parser = ConfigParser()
    parser.read(ROOT / "babel-notices.cfg")
    method_map = [(section.split(":", 1)[1].strip(), section.split(":", 1)[0].strip()) for section in parser.sections()]
    options_map = {pattern: dict(parser[f"{method}: {pattern}"]) for pattern, method in method_map}
    in_sources = {m[2] for m in extract_from_dir(str(ROOT), method_map, options_map)}
    po = _po(locale)
    assert set(_ids(po)) == in_sources, "run the extraction in babel-notices.cfg and update the catalogs"
    with open(i18n.LOCALES_DIR / locale / "LC_MESSAGES" / "notices.mo", "rb") as handle:
        compiled = read_mo(handle)
    buffer = io.BytesIO()
    write_mo(buffer, po)
    buffer.seek(0)
    assert _ids(compiled) == _ids(read_mo(buffer)), "notices.mo is stale: run `make translations`"


@pytest.mark.parametrize("locale", ("de", "sl"))
def test_the_notices_catalog_is_complete(locale):
    po = _po(locale)
    missing = [m.id for m in po if m.id and not (all(m.string) if isinstance(m.string, tuple) else m.string)]
    assert not missing and not [m.id for m in po if m.id and m.fuzzy]
    assert not list(po.check()), "placeholders survive translation"


def test_the_request_catalog_does_not_carry_the_notices():
    with open(i18n.LOCALES_DIR / "de" / "LC_MESSAGES" / "messages.po", "rb") as handle:
        messages = set(_ids(read_po(handle, locale="de")))
    assert not messages & set(_ids(_po("de"))) - {"Unsubscribe"}


# ------------------------------------------------------------------ unsubscribe tokens


@pytest.fixture
def hash_key(monkeypatch):
    from rightsdesk.platform import hashing

    monkeypatch.setenv("RIGHTSDESK_HASH_KEY", "notice-test-key")
    config.reload()
    hashing.forget_key()
    yield
    hashing.forget_key()


def test_a_token_verifies_and_names_its_contact_and_list(hash_key):
    claims = unsubscribe.verify(unsubscribe.issue(HASH, "policy_updates"))
    assert (claims.email_hash, claims.list_name) == (HASH, "policy_updates")


def test_a_token_cannot_be_forged_or_altered(hash_key, monkeypatch):
    from rightsdesk.platform import hashing

    token = unsubscribe.issue(HASH, "policy_updates")
    payload, mac = token.split(".")
    other = unsubscribe.issue("b" * 64, "policy_updates")
    for forged in (
        f"{payload}.{'0' * 32}",
        f"{other.split('.')[0]}.{mac}",  # someone else's contact with this token's signature
        token[:-1] + ("0" if token[-1] != "0" else "1"),
        payload,
        "",
        "%%%.abc",
    ):
        with pytest.raises(unsubscribe.InvalidToken):
            unsubscribe.verify(forged)
    monkeypatch.setenv("RIGHTSDESK_HASH_KEY", "another-deployment")  # another stack's key
    config.reload()
    hashing.forget_key()
    with pytest.raises(unsubscribe.InvalidToken):
        unsubscribe.verify(token)


def test_a_token_expires_with_its_retention_rule(hash_key):
    issued = clock.now() - timedelta(days=366)
    with pytest.raises(unsubscribe.SpentToken):
        unsubscribe.verify(unsubscribe.issue(HASH, "policy_updates", at=issued))


def test_transactional_lists_have_no_token(hash_key):
    with pytest.raises(ValueError):
        unsubscribe.issue(HASH, "policy_notices")


def test_one_click_headers():
    assert unsubscribe.headers("https://x.test/v1/unsubscribe?token=t") == {
        "List-Unsubscribe": "<https://x.test/v1/unsubscribe?token=t>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


# ------------------------------------------------------------------ MIME


def test_the_raw_message_carries_both_parts_and_the_list_headers():
    mail = RenderedMail(subject="Änderung: Datenschutzerklärung", html="<p>Grüße</p>", text="Grüße\n")
    raw = mime.build(
        sender="privacy@example.com",
        to="ben@example.org",
        mail=mail,
        headers=unsubscribe.headers("https://x.test/u?token=t"),
    )
    assert raw.isascii(), "7-bit clean for any mail server"
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == mail.subject and parsed["To"] == "ben@example.org"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed.get_body(("plain",)).get_content().replace("\r\n", "\n") == "Grüße\n"
    assert parsed.get_body(("html",)).get_content().strip() == "<p>Grüße</p>"
    assert parsed.get_all("MIME-Version") == ["1.0"]


@pytest.mark.parametrize("headers", [{"Bcc": "x@example.org"}, {"List-Unsubscribe": "<a>\r\nBcc: x@example.org"}])
def test_no_other_header_and_no_header_injection(headers):
    with pytest.raises(ValueError):
        mime.build(
            sender="a@example.com", to="b@example.com", mail=RenderedMail("s", "<p>h</p>", "t\n"), headers=headers
        )


# ------------------------------------------------------------------ the send rate


def test_the_pacer_gives_each_instance_its_share_of_the_rate(monkeypatch):
    now = [100.0]
    slept = []
    monkeypatch.setattr(notify.time, "monotonic", lambda: now[0])

    def sleep(seconds):
        slept.append(round(seconds, 6))
        now[0] += seconds

    monkeypatch.setattr(notify.time, "sleep", sleep)
    pacer = notify.Pacer(rate=14, concurrency=2)
    assert pacer.interval == pytest.approx(2 / 14)
    for _ in range(8):
        pacer.wait()
    assert slept == [round(2 / 14, 6)] * 7, "the first send goes at once, then one per interval"
    assert now[0] - 100.0 == pytest.approx(7 * 2 / 14)
    assert notify.Pacer(rate=0).interval == 0, "rate 0: unpaced (the local run)"


def test_retry_delays_step_up_and_stay_at_the_last():
    assert [notify.retry_delay(n) for n in range(1, 7)] == [5, 30, 120, 600, 600, 600]


# ------------------------------------------------------------------ SES events


def _sample(name: str) -> dict:
    return json.loads((ROOT / "events" / "ses_events" / name).read_text())["detail"]


def test_permanent_bounces_and_complaints_suppress_transient_bounces_do_not():
    assert suppression.from_ses_event(_sample("bounce.json")) == ("Bounce", "bounce", ["bounced@example.org"])
    assert suppression.from_ses_event(_sample("complaint.json")) == (
        "Complaint",
        "complaint",
        ["complained@example.org"],
    )
    assert suppression.from_ses_event(_sample("transient_bounce.json"))[1] is None
    assert suppression.from_ses_event({"eventType": "Delivery"}) == ("Delivery", None, [])
