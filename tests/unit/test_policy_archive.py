"""The policy archive: each version records the SHA-256 of its full text when it is published, and a
browser gets a page (versions, dates, summaries, links, the digest) in the reader's language."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from moto import mock_aws

from rightsdesk.kernel import clock
from rightsdesk.kernel.errors import Conflict, InvalidInput
from rightsdesk.notices import notice_pages, policies
from rightsdesk.platform import config
from rightsdesk.platform.config import SUPPORTED_LOCALES
from rightsdesk.render import web
from tests.support.aws import moto_cloud

TEXT = "<h1>Datenschutzerklärung</h1>\n<p>Chat transcripts are kept for 30 days.</p>\n".encode()


@pytest.fixture(scope="module")
def archive_world():
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        moto_cloud(patch, "rightsdesk-policy-archive")
        yield
    config.reload()


def publish(doc: str, version: str, text: bytes | str = TEXT, **fields) -> policies.Published:
    values = {
        "doc": doc,
        "version": version,
        "url": f"https://example.com/{doc}/{version}",
        "summaries": {"en": "Shorter retention.\n\nNo more call recordings.", "de": "Kürzere Speicherdauer."},
        "text": text,
        **fields,
    }
    return policies.publish(policies.Publication(**values))


def test_the_digest_is_recorded_at_publish_and_recomputes_from_the_text(archive_world):
    published = publish("privacy-hash", "2026-12")
    expected = hashlib.sha256(TEXT).hexdigest()
    assert published.version.text_sha256 == expected
    stored = policies.get("privacy-hash", "2026-12")  # read back: recorded, not computed on read
    assert stored.text_sha256 == expected and int(stored.text_bytes) == len(TEXT)
    assert policies.view(stored)["text_sha256"] == expected
    assert policies.archive("privacy-hash")["versions"][0]["text_sha256"] == expected


def test_a_str_text_is_hashed_as_utf8(archive_world):
    published = publish("privacy-str", "1", text=TEXT.decode())
    assert published.version.text_sha256 == hashlib.sha256(TEXT).hexdigest()


@pytest.mark.parametrize("text", [b"", "   \n", b"x" * (policies.MAX_TEXT_BYTES + 1)])
def test_a_version_needs_its_text(archive_world, text):
    with pytest.raises(InvalidInput) as refused:
        publish("privacy-empty", "1", text=text)
    assert "text" in refused.value.fields


def test_the_same_version_with_another_text_is_a_conflict(archive_world):
    published = publish("privacy-fixed", "1")
    again = publish("privacy-fixed", "1", effective_at=published.version.effective_at)
    assert again.created is False
    with pytest.raises(Conflict):
        publish(
            "privacy-fixed", "1", text=TEXT + b"<p>quietly changed</p>", effective_at=published.version.effective_at
        )


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_the_archive_page_lists_every_version_with_dates_summaries_links_and_digests(archive_world, locale):
    doc = f"terms-page-{locale}"
    first = publish(doc, "2026-01")
    clock.set_offset(3600)
    try:
        later = publish(
            doc, "2027-01", text=b"<h1>Terms 2027</h1>", effective_at=clock.now() + timedelta(days=30), major=True
        )
    finally:
        clock.set_offset(0)

    html = notice_pages.policy_archive_page(policies.archive(doc), locale)

    assert f'<html lang="{locale}">' in html
    for version in (first.version, later.version):
        assert version.text_sha256 in html
        assert f'href="/v1/policies/{doc}/versions/{version.version}?lang={locale}"' in html
        assert version.url in html
    summary = "Kürzere Speicherdauer." if locale == "de" else "Shorter retention."
    assert summary in html
    # every link out of the page keeps the language (except the document's own URL, elsewhere)
    main = html.split("<main", 1)[1].split("</main>", 1)[0]
    for href in re.findall(r'href="(/[^"]*)"', main):
        assert f"lang={locale}" in href or href.startswith("#"), href


def test_the_version_page_shows_the_digest_and_links_back(archive_world):
    published = publish("cookies-page", "3")
    html = notice_pages.policy_version_page(policies.view(published.version), "sl")
    assert published.version.text_sha256 in html
    assert 'href="/v1/policies/cookies-page?lang=sl"' in html
    assert "Različica" in html  # Slovenian words, not the English msgids
    assert web.content_security_policy()  # the handler sends the pages' CSP (checked over HTTP too)
