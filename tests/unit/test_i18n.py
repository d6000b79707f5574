"""Language negotiation, localized dates, and the health of the committed catalogs."""

from __future__ import annotations

import io
import re
from configparser import ConfigParser
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from rightsdesk.kernel.rights import PURPOSES, RELATIONSHIPS, REQUEST_TYPES
from rightsdesk.kernel.status import Status
from rightsdesk.platform.config import SUPPORTED_LOCALES
from rightsdesk.render import i18n

ROOT = Path(__file__).resolve().parents[2]
LOCALES = i18n.LOCALES_DIR
TRANSLATED = ("de", "sl")  # en is the source language: its msgstrs stay empty on purpose


@pytest.mark.parametrize(
    ("lang", "header", "expected"),
    [
        (None, None, "en"),
        ("de", None, "de"),
        ("sl", "de", "sl"),
        ("DE", None, "de"),
        ("de-AT", None, "de"),
        ("fr", "sl", "sl"),  # an unsupported ?lang= falls through to the header
        ("", "de-DE,de;q=0.9,en;q=0.8", "de"),
        (None, "de-AT", "de"),
        (None, "sl-SI, en;q=0.5", "sl"),
        (None, "en;q=0.4, de;q=0.8", "de"),
        (None, "fr-CH, fr;q=0.9, de;q=0.7, *;q=0.5", "de"),
        (None, "fr, it", "en"),
        (None, "de;q=0, sl;q=0.1", "sl"),  # q=0 means "not acceptable"
        (None, "de;q=abc, sl", "sl"),  # a malformed range is ignored
        (None, "sl;q=0.5, de;q=0.5", "sl"),  # ties keep the header's order
        (None, "*", "en"),
        (None, "", "en"),
        (None, " , ;q=1", "en"),
        (None, "de_DE", "de"),
    ],
)
def test_negotiate(lang, header, expected):
    assert i18n.negotiate(lang, header) == expected


def test_translations_are_cached_and_unknown_locales_get_english():
    assert isinstance(i18n.translations("de"), Translations)
    assert i18n.translations("de") is i18n.translations("de-AT")
    assert i18n.translations("xx") is i18n.translations("en")
    assert i18n.translations("de").gettext("Verified") == "Bestätigt"
    assert i18n.translations("sl").gettext("Verified") == "Potrjeno"


def test_slovenian_has_four_plural_forms():
    sl = i18n.translations("sl")
    one, two, few, many = (
        sl.ngettext("You have %(count)s attempt left.", "You have %(count)s attempts left.", n) for n in (1, 2, 3, 5)
    )
    assert {one, two, few, many} == {
        "Na voljo imate še %(count)s poskus.",
        "Na voljo imate še %(count)s poskusa.",
        "Na voljo imate še %(count)s poskuse.",
        "Na voljo imate še %(count)s poskusov.",
    }
    assert sl.ngettext("You have %(count)s attempt left.", "You have %(count)s attempts left.", 101) == one


MOMENT = datetime(2025, 12, 23, 13, 15, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("locale", "month", "clock"),
    [("en", "December", "1:15"), ("de", "Dezember", "13:15"), ("sl", "december", "13:15")],
)
def test_format_datetime_is_localized_and_says_utc(locale, month, clock):
    text = i18n.format_datetime(MOMENT, locale)
    assert month in text and clock in text and text.endswith("UTC")
    assert month in i18n.format_date(MOMENT, locale)


def test_format_datetime_converts_to_utc_and_reads_iso_strings():
    vienna = MOMENT.astimezone(timezone(timedelta(hours=1)))
    assert i18n.format_datetime(vienna, "de") == i18n.format_datetime(MOMENT, "de")
    assert i18n.format_datetime(MOMENT.replace(tzinfo=None), "de") == i18n.format_datetime(MOMENT, "de")
    assert i18n.format_datetime("2025-12-23T13:15:00Z", "de") == i18n.format_datetime(MOMENT, "de")
    # Just before midnight UTC is still the 23rd, whatever the server's zone.
    assert "23" in i18n.format_date(datetime(2025, 12, 23, 23, 59, tzinfo=timezone.utc), "en")


@pytest.mark.parametrize("locale", TRANSLATED)
def test_every_domain_value_has_a_translated_name(locale):
    catalog = i18n.translations(locale)
    tables = [
        (i18n.REQUEST_TYPE_NAMES, REQUEST_TYPES),
        (i18n.REQUEST_TYPE_HINTS, REQUEST_TYPES),
        (i18n.STATUS_NAMES, [s.value for s in Status]),
        (i18n.STATUS_EXPLANATIONS, [s.value for s in Status]),
        (i18n.RELATIONSHIP_NAMES, RELATIONSHIPS),
        (i18n.PURPOSE_NAMES, PURPOSES),
    ]
    for table, values in tables:
        assert set(table) == set(values)
        for value in values:
            assert catalog._catalog.get(table[value]), f"{locale}: no translation for {table[value]!r}"


# ------------------------------------------------------------------ catalog health
# Every gettext domain (one .pot each: messages, and the notices' own) is held to the same rules.

DOMAINS = sorted(path.stem for path in LOCALES.glob("*.pot"))


def _config(domain: str) -> Path:
    return ROOT / ("babel.cfg" if domain == i18n.DOMAIN else f"babel-{domain}.cfg")


def _po(locale: str, domain: str = i18n.DOMAIN):
    with open(LOCALES / locale / "LC_MESSAGES" / f"{domain}.po", "rb") as handle:
        return read_po(handle, locale=locale, domain=domain)


def _messages(catalog) -> dict:
    # read_mo gives plural ids and strings as lists, read_po as tuples.
    def plain(value):
        return tuple(value) if isinstance(value, list) else value

    return {plain(m.id): plain(m.string) for m in catalog if m.id}


def _compiled(catalog) -> dict:
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return _messages(read_mo(buffer))


def _source_msgids(domain: str) -> set:
    """Extract from the sources exactly as `pybabel extract -F <its babel cfg>` does."""
    config = ConfigParser()
    config.read(_config(domain))
    method_map = [(section.split(":", 1)[1].strip(), section.split(":", 1)[0].strip()) for section in config.sections()]
    options_map = {pattern: dict(config[f"{method}: {pattern}"]) for pattern, method in method_map}
    return {message[2] for message in extract_from_dir(str(ROOT), method_map, options_map)}


def test_the_main_domain_is_there():
    assert i18n.DOMAIN in DOMAINS and all(_config(domain).is_file() for domain in DOMAINS)


@pytest.mark.parametrize("domain", DOMAINS)
@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_committed_mo_matches_its_po(locale, domain):
    committed = LOCALES / locale / "LC_MESSAGES" / f"{domain}.mo"
    with open(committed, "rb") as handle:
        on_disk = read_mo(handle)
    po = _po(locale, domain)
    assert _messages(on_disk) == _compiled(po), f"{committed} is stale: recompile it (make translations)"
    assert on_disk.plural_forms == po.plural_forms


@pytest.mark.parametrize("domain", DOMAINS)
@pytest.mark.parametrize("locale", TRANSLATED)
def test_catalog_is_complete_and_nothing_is_fuzzy(locale, domain):
    po = _po(locale, domain)
    assert not po.fuzzy, "the catalog header is marked fuzzy"
    fuzzy = [m.id for m in po if m.id and m.fuzzy]
    untranslated = [m.id for m in po if m.id and not (all(m.string) if isinstance(m.string, tuple) else m.string)]
    assert not fuzzy, f"{locale}/{domain}: fuzzy messages {fuzzy}"
    assert not untranslated, f"{locale}/{domain}: untranslated messages {untranslated}"
    if locale == "sl":
        assert po.num_plurals == 4
    for message in po:
        if isinstance(message.id, tuple):
            assert len(message.string) == po.num_plurals, message.id


@pytest.mark.parametrize("domain", DOMAINS)
@pytest.mark.parametrize("locale", TRANSLATED)
def test_placeholders_survive_translation(locale, domain):
    # Babel's checkers compare %(name)s placeholders between msgid and msgstr.
    problems = [(message.id, [str(e) for e in errors]) for message, errors in _po(locale, domain).check()]
    assert not problems


@pytest.mark.parametrize("domain", DOMAINS)
@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_catalogs_match_the_sources(locale, domain):
    """A string added to a template or module without updating the catalogs fails here."""
    in_sources = _source_msgids(domain)
    in_catalog = set(_messages(_po(locale, domain)))
    assert in_sources - in_catalog == set(), (
        f"missing from {domain}: run pybabel extract/update (see {_config(domain).name})"
    )
    assert in_catalog - in_sources == set(), f"obsolete entries in {domain}: run pybabel update --ignore-obsolete"


# ------------------------------------------------------------------ counts are plurals, in every language


@pytest.mark.parametrize("domain", DOMAINS)
@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_every_counted_message_is_a_plural_with_all_its_forms(locale, domain):
    """A message that shows a count (`%(count)s`) goes through ngettext, with every form the
    language has (Slovenian: 1, 2, 3-4, 5+): no "1 requests", no "2 zahtev" for "2 zahtevi"."""
    po = _po(locale, domain)
    counted = [m for m in po if m.id and "%(count)s" in (m.id[0] if isinstance(m.id, tuple) else m.id)]
    assert all(isinstance(m.id, tuple) for m in counted), [m.id for m in counted if not isinstance(m.id, tuple)]
    for message in counted:
        assert len(message.string) == po.num_plurals, message.id
        if locale != "en":
            assert len(set(message.string)) > 1 or po.num_plurals == 1, f"one form for every count: {message.id}"


def test_templates_show_counts_only_through_pluralize():
    """`{{ count }}` in a template is the plural placeholder of a `{% trans count=... %}` block only."""
    offenders = []
    for template in sorted((ROOT / "layers/core/rightsdesk/render/templates").rglob("*.*")):
        text = template.read_text(encoding="utf-8")
        outside = re.sub(r"{%-? trans [^%]*count=.*?{%-? endtrans -?%}", "", text, flags=re.S)
        outside = re.sub(r"<td[^>]*>{{ *count *}}</td>", "", outside)  # a figure in a table column is no phrase
        if re.search(r"{{-? *count *-?}}", outside):
            offenders.append(template.name)
    assert not offenders


@pytest.mark.parametrize("n, expected", [(0, "0 requests"), (1, "1 request"), (2, "2 requests"), (101, "101 requests")])
def test_the_cli_counts_in_english_by_babels_rule(n, expected):
    from rightsdesk_cli.output import counted

    assert counted(n, "request", "requests") == expected
