"""A subject's export shows words, not the internal keys: every key the export schema allows has a
label in every language, the JSON carries that legend, and the page prints no key."""

from __future__ import annotations

import re

import pytest

from rightsdesk.own_data import exports
from rightsdesk.platform.config import SUPPORTED_LOCALES
from rightsdesk.render import i18n

SCHEMA = exports.schema()
KEYED = {  # legend -> the schema's enum of the keys it explains
    "request_types": SCHEMA["properties"]["requests"]["items"]["properties"]["type"]["enum"],
    "statuses": SCHEMA["$defs"]["status"]["enum"],
    "relationships": SCHEMA["properties"]["requests"]["items"]["properties"]["relationship"]["enum"],
    "purposes": SCHEMA["$defs"]["purpose"]["enum"],
    "lists": SCHEMA["$defs"]["list"]["enum"],
}
# Keys that read as words on their own may appear on a page as the label itself.
ALSO_A_WORD = {"newsletter"}


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
@pytest.mark.parametrize("legend", sorted(KEYED))
def test_every_key_the_export_can_hold_has_a_label_in_every_language(legend, locale):
    labels = i18n.labels(locale)[legend]
    assert set(KEYED[legend]) <= set(labels)
    for key in KEYED[legend]:
        assert labels[key] and labels[key] != key
        if locale != "en" and key not in ALSO_A_WORD:
            assert labels[key] != i18n.labels("en")[legend][key], f"{legend}.{key} is not translated to {locale}"


def _document(locale: str) -> dict:
    return {
        "schema": exports.SCHEMA_ID,
        "generated_at": "2026-12-01T10:00:00Z",
        "request_id": "dsr_ab",
        "available_until": "2026-12-08T10:00:00Z",
        "controller": {"name": "Operator", "site": "operator"},
        "subject": {"email": "mia@example.org"},
        "contact": {
            "email": "mia@example.org",
            "name": "Mia",
            "locale": locale,
            "subscriptions": ["policy_updates", "marketing", "policy_notices"],
            "suppressed": False,
            "restricted_since": None,
            "objected_since": None,
            "created_at": None,
            "updated_at": None,
        },
        "subscriptions": [],
        "consents": [
            {
                "purpose": p,
                "state": "granted",
                "granted_at": "2026-01-01T00:00:00Z",
                "granted_source": "form",
                "withdrawn_at": None,
                "withdrawn_source": None,
                "history": [],
            }
            for p in KEYED["purposes"]
        ],
        "requests": [
            {
                "request_id": "dsr_ab",
                "type": t,
                "status": s,
                "site": "operator",
                "relationship": r,
                "locale": locale,
                "purposes": ["analytics", "chat_transcripts"],
                "created_at": "2026-11-01T00:00:00Z",
                "verified_at": None,
                "due_at": None,
                "personal": {"email": None, "name": None, "details": None},
                "timeline": [{"at": "2026-11-01T00:00:00Z", "status": s}],
            }
            for t, s, r in zip(KEYED["request_types"], KEYED["statuses"], KEYED["relationships"] * 4)
        ],
        "notices": [],
        "suppression": None,
        "contact_history": [],
        "labels": {"locale": locale, **i18n.labels(locale)},
    }


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_the_export_page_prints_labels_not_keys(locale):
    doc = _document(locale)
    html = exports.page(doc, locale, "token")
    visible = re.sub(r"<[^>]+>", " ", html.split("<main", 1)[1].split("</main>", 1)[0])
    for words in (w for legend in i18n.labels(locale).values() for w in legend.values()):
        visible = visible.replace(words, " ")  # "Make a complaint" holds the key "complaint" as a word
    for keys in KEYED.values():
        for key in keys:
            if key in ALSO_A_WORD:
                continue
            assert not re.search(rf"(?<![\w-]){re.escape(key)}(?![\w-])", visible), f"{key} shown as a key ({locale})"
    assert i18n.labels(locale)["lists"]["policy_updates"] in html
    assert i18n.labels(locale)["relationships"]["guardian"] in html


def test_the_json_export_carries_the_legend_in_the_subjects_language():
    import jsonschema

    for locale in SUPPORTED_LOCALES:
        jsonschema.Draft202012Validator(SCHEMA).validate(_document(locale))
