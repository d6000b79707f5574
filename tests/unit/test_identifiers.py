"""One spelling of a site and one rule for addresses (rightsdesk.kernel.identifiers), whichever
entry point a value comes through."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rightsdesk.intake.submissions import Submission
from rightsdesk.kernel import identifiers
from rightsdesk.store.items.controllers import SiteItem

SPELLINGS = [" Demo ", "demo", "DEMO\t", "\ndemo", "dEmO  "]


def _submitted_site(site: str) -> str:
    return Submission(site=site, type="access", email="someone@example.org").site


# Every way a site key reaches a key of the store, the registry or the idempotency record
# (public_api passes the parsed submission's site through normalize_site_key; the registry's
# lookups and claims: tests/unit/test_registry.py::test_a_site_key_is_one_site_however_it_is_spelled).
ENTRY_POINTS = {
    "normalize_site_key": identifiers.normalize_site_key,
    "submission": _submitted_site,
    "idempotency_key": lambda site: identifiers.normalize_site_key(_submitted_site(site)),
    "site_item_key": lambda site: SiteItem.key(site).removeprefix("SITE#"),
}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("spelling", SPELLINGS)
def test_every_entry_point_gives_one_key_for_every_spelling(entry, spelling):
    assert ENTRY_POINTS[entry](spelling) == "demo"


@given(
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9.-]{0,30}", fullmatch=True),
    st.sampled_from(["", " ", "\t", "  \n"]),
    st.sampled_from(["", " ", "\t", "\r\n"]),
)
def test_surrounding_whitespace_and_case_never_make_another_site(core, before, after):
    keys = {
        entry(before + spelling + after)
        for entry in ENTRY_POINTS.values()
        for spelling in (core, core.upper(), core.lower())
    }
    assert keys == {core.lower()}


@pytest.mark.parametrize(
    ("address", "valid"),
    [
        ("someone@example.org", True),
        ("Some.One+tag@sub.example.co.uk", True),
        ("no-at-sign.example.org", False),
        ("two@@example.org", False),
        ("space in@example.org", False),
        ("someone@localhost", False),
        ("someone@example.c", False),
        ("a" * 64 + "@" + "b" * 185 + ".org", True),  # 254 characters
        ("a" * 64 + "@" + "b" * 186 + ".org", False),  # 255
    ],
)
def test_an_address_is_valid_by_one_rule(address, valid):
    assert identifiers.is_valid_email(address) is valid


def test_the_registry_and_the_audience_use_the_kernel_rule():
    """A second copy of the pattern anywhere in the core would drift: the text exists once."""
    import pathlib

    import rightsdesk

    core = pathlib.Path(rightsdesk.__file__).parent
    copies = [
        path.relative_to(core).as_posix()
        for path in core.rglob("*.py")
        if identifiers.EMAIL_PATTERN[:20] in path.read_text(encoding="utf-8")
    ]
    assert copies == ["kernel/identifiers.py"]
