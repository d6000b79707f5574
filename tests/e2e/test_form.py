"""The subject's journey in a real browser at phone width: form -> emailed code -> verified -> status."""

from __future__ import annotations

import re
import time
import uuid

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

SCREENSHOT = "/tmp/rightsdesk-form.png"
# After verification the request moves on by itself (routing, delivery to the demo controller).
AFTER_VERIFICATION = {"verified", "forwarded", "delivered", "acknowledged", "in_progress"}


def unique_address(tag: str) -> str:
    return f"e2e-{tag}-{uuid.uuid4().hex[:12]}@example.com"


def assert_no_horizontal_scroll(page: Page) -> None:
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"page is {widths[0]}px wide in a {widths[1]}px viewport"


def fill_form(page: Page, *, site: str, email: str, request_type_label: str = "Delete my data") -> None:
    # By their visible labels: this also proves every field's label is wired to it.
    page.get_by_role("textbox", name="Website").fill(site)
    page.get_by_label(request_type_label).check()
    page.get_by_label("Your email address").fill(email)


def submit_and_verify(page: Page, stack, email: str) -> None:
    """From a filled form to the status page; asserts along the way."""
    page.get_by_role("button", name="Send request").click()
    code_field = page.get_by_label("Confirmation code")
    expect(code_field).to_be_visible()
    assert "/verify/" in page.url
    assert_no_horizontal_scroll(page)

    code = stack.wait_for_code(email)
    code_field.fill(code)
    page.get_by_role("button", name="Confirm").click()

    expect(page.locator("h1")).to_have_text("Your request is confirmed")
    due = page.locator("time[data-due]")
    expect(due).to_contain_text(re.compile(r"\d{4}.*UTC"))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", due.get_attribute("datetime"))
    status_link = page.locator("a[data-status-link]")
    assert "/status/" in status_link.get_attribute("href")
    expect(page.locator("#status-token")).not_to_be_empty()
    assert_no_horizontal_scroll(page)

    status_link.click()
    expect(page.locator("h1")).to_have_text("Status of your request")
    current = page.locator("p.lead .status").get_attribute("data-status")
    assert current in AFTER_VERIFICATION
    verified = page.locator('ol.timeline [data-status="verified"]')
    expect(verified).to_have_text("Verified")
    assert_no_horizontal_scroll(page)


def test_erasure_request_from_form_to_status(stack, phone: Page):
    phone.goto(stack.base_url + "/?lang=en")
    expect(phone.locator("html")).to_have_attribute("lang", "en")
    assert_no_horizontal_scroll(phone)
    phone.screenshot(path=SCREENSHOT, full_page=True)

    # Progressive enhancement: only the sections that fit the chosen type are shown.
    phone.get_by_label("Withdraw my consent").check()
    expect(phone.locator("#purposes-section")).to_be_visible()
    expect(phone.locator("#complaint-note")).to_be_hidden()
    phone.get_by_label("Make a complaint").check()
    expect(phone.locator("#complaint-note")).to_be_visible()
    expect(phone.locator("#purposes-section")).to_be_hidden()

    email = unique_address("erasure")
    fill_form(phone, site="demo", email=email)
    expect(phone.locator("#purposes-section")).to_be_hidden()
    submit_and_verify(phone, stack, email)


def test_the_whole_flow_works_without_javascript(stack, browser):
    context = browser.new_context(viewport={"width": 375, "height": 800}, java_script_enabled=False)
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        page.goto(stack.base_url + "/?lang=en")
        # Nothing is hidden when no script runs: every section is there to read and use.
        for section in ("#purposes-section", "#complaint-note", "#guardian-note"):
            expect(page.locator(section)).to_be_visible()
        assert_no_horizontal_scroll(page)
        email = unique_address("nojs")
        fill_form(page, site="demo", email=email)
        submit_and_verify(page, stack, email)
    finally:
        context.close()


def test_invalid_email_is_reported_next_to_the_field_and_nothing_is_sent(stack, phone: Page):
    marker = uuid.uuid4().hex[:12]
    invalid = f"not-an-address-{marker}"
    phone.goto(stack.base_url + "/?lang=en")
    fill_form(phone, site="demo", email=invalid)
    phone.get_by_role("button", name="Send request").click()

    email = phone.locator("#email")
    expect(email).to_have_attribute("aria-invalid", "true")
    error = phone.locator("#email-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Enter an email address in the form name@example.com.")
    assert "email-error" in email.get_attribute("aria-describedby").split()
    # The message sits in the field's own block, right above the input.
    assert phone.evaluate(
        "document.getElementById('email-error').parentElement === document.getElementById('email').parentElement"
    )
    expect(email).to_be_focused()
    summary = phone.get_by_role("alert")
    expect(summary.get_by_role("link")).to_have_attribute("href", "#email")
    # What was entered is still there.
    expect(email).to_have_value(invalid)
    expect(phone.locator("#site")).to_have_value("demo")
    expect(phone.locator("#type-erasure")).to_be_checked()
    assert_no_horizontal_scroll(phone)

    # Mail goes out in order: once a later, valid request's code has arrived, an email for the
    # rejected one would have arrived too.
    sentinel = unique_address("sentinel")
    phone.goto(stack.base_url + "/?lang=en")
    fill_form(phone, site="demo", email=sentinel)
    phone.get_by_role("button", name="Send request").click()
    stack.wait_for_code(sentinel)
    assert not [m for m in stack.outbox() if marker in str(m.get("to"))]


def test_german_form(stack, phone: Page):
    phone.goto(stack.base_url + "/?lang=de")
    expect(phone.locator("html")).to_have_attribute("lang", "de")
    expect(phone.locator("h1")).to_have_text("Datenschutzanfrage stellen")
    expect(phone.get_by_text("Was möchten Sie tun?")).to_be_visible()
    for label in ("Website", "Meine Daten löschen", "Ihre E-Mail-Adresse", "Ihr Name"):
        expect(phone.get_by_label(label, exact=False).first).to_be_visible()
    expect(phone.get_by_role("button", name="Anfrage senden")).to_be_visible()
    expect(phone.locator("input[name=locale]")).to_have_value("de")
    assert_no_horizontal_scroll(phone)


def test_accept_language_picks_the_language(stack, browser):
    context = browser.new_context(locale="sl-SI", viewport={"width": 375, "height": 800})
    try:
        page = context.new_page()
        page.goto(stack.base_url + "/")
        expect(page.locator("html")).to_have_attribute("lang", "sl")
        expect(page.get_by_role("button", name="Pošlji zahtevo")).to_be_visible()
        page.get_by_role("link", name="English").click()
        expect(page.locator("html")).to_have_attribute("lang", "en")
    finally:
        context.close()


def test_the_emailed_link_fills_in_the_code(stack, phone: Page):
    email = unique_address("link")
    phone.goto(stack.base_url + "/?lang=de")
    phone.get_by_role("textbox", name="Website").fill("demo")
    phone.get_by_label("Meine Daten einsehen").check()
    phone.get_by_label("Ihre E-Mail-Adresse").fill(email)
    phone.get_by_role("button", name="Anfrage senden").click()
    code = stack.wait_for_code(email)
    message = stack.mail_to(email)[0]
    assert message["subject"] == "Bestätigen Sie Ihre Datenschutzanfrage"
    found = re.search(r"https?://\S+/verify/\S+", message["text"])
    assert found, message["text"]
    link = found.group(0)
    assert link in (message.get("html") or "").replace("&amp;", "&")

    phone.goto(link)
    expect(phone.get_by_label("Bestätigungscode")).to_have_value(code)
    started = time.monotonic()
    phone.get_by_role("button", name="Bestätigen").click()
    expect(phone.locator("h1")).to_have_text("Ihre Anfrage ist bestätigt")
    assert time.monotonic() - started < 10
