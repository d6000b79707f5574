"""Free-text fields a person types (rightsdesk.kernel.free_text): what they may hold, for every field that
reaches a mail, and that no field can start a line of its own in a plain-text mail."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from rightsdesk.intake.submissions import Submission
from rightsdesk.kernel import free_text
from rightsdesk.platform import http
from rightsdesk.render import mail
from rightsdesk.routing.controller_requests import StatusReport

VALID = {"site": "demo", "type": "access", "email": "ana@example.org", "name": "Ana Novak", "details": "Chat on 3 May"}
ONE_LINE_FIELDS = ("site", "email", "name")

# The classes the rule refuses, one sample each besides the generated strings below.
REFUSED = {
    "NUL": "\x00",
    "LF": "\n",
    "CR": "\r",
    "TAB": "\t",
    "ESC": "\x1b",
    "DEL": "\x7f",
    "NEL (C1)": "\x85",
    "CSI (C1)": "\x9b",
    "RLO": "\u202e",
    "LRE": "\u202a",
    "RLI": "\u2067",
    "PDI": "\u2069",
    "ALM": "\u061c",
    "RLM": "\u200f",
    "ZWSP": "\u200b",
    "ZWJ": "\u200d",
    "ZWNJ": "\u200c",
    "word joiner": "\u2060",
    "BOM": "\ufeff",
    "soft hyphen": "\u00ad",
    "line separator": "\u2028",
    "paragraph separator": "\u2029",
    "lone surrogate": "\ud800",
}
ALLOWED = ("Ana Novak", "Ñuñez-Šimić", "José María O'Brien", "王小明", "محمد", "Zoë 😀", "Gr\u00fc\u00df Gott")


# What pydantic's str_strip_whitespace trims (Unicode White_Space; Python's str.strip also trims \x1c-\x1f).
WHITE_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


def _refused_char(char: str) -> bool:
    return unicodedata.category(char) in {"Cc", "Cf", "Cs", "Zl", "Zp"}


def _submission_fields(**changes) -> dict[str, str]:
    try:
        Submission.model_validate({**VALID, **changes})
    except ValidationError as error:
        return http.field_errors(error.errors())[2]
    return {}


@pytest.mark.parametrize("field", ONE_LINE_FIELDS)
@pytest.mark.parametrize("kind", REFUSED)
def test_one_line_fields_refuse_every_class(field, kind):
    value = {"email": f"an{REFUSED[kind]}a@example.org"}.get(field, f"An{REFUSED[kind]}a")
    fields = _submission_fields(**{field: value})
    assert fields.get(field) in ("invalid_characters", "invalid_email"), fields
    assert set(fields) == {field}


@pytest.mark.parametrize("kind", [k for k in REFUSED if k not in ("LF", "TAB")])
def test_details_refuse_every_class_but_line_feeds_and_tabs(kind):
    assert _submission_fields(details=f"first line{REFUSED[kind]}second") == {"details": "invalid_characters"}


@pytest.mark.parametrize("details", ["one\ntwo", "one\r\ntwo\r\n\r\nthree", "a\tb"])
def test_details_keep_their_lines_crlf_as_lf(details):
    assert _submission_fields(details=details) == {}
    assert Submission.model_validate({**VALID, "details": details}).details == details.replace("\r\n", "\n")


@pytest.mark.parametrize("name", ALLOWED)
def test_names_in_any_script_are_accepted(name):
    assert _submission_fields(name=name, details=name) == {}


@pytest.mark.parametrize("kind", REFUSED)
def test_a_controllers_reason_is_one_line(kind):
    with pytest.raises(ValidationError) as caught:
        StatusReport.model_validate({"status": "rejected", "reason": f"not{REFUSED[kind]}ours"})
    assert http.field_errors(caught.value.errors())[2] == {"reason": "invalid_characters"}


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_a_name_is_accepted_exactly_when_it_holds_no_refused_character(text):
    stripped = text.strip(WHITE_SPACE)
    fields = _submission_fields(name=text)
    if not text.strip():
        assert fields == {}  # blank is absent
    elif any(_refused_char(c) for c in stripped):
        assert fields == {"name": "invalid_characters"}
    else:
        assert fields == {}


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=60))
def test_details_are_accepted_exactly_when_only_line_feeds_and_tabs_are_controls(text):
    stripped = text.strip(WHITE_SPACE)
    fields = _submission_fields(details=text)
    normalized = free_text.normalize_newlines(stripped)
    if text.strip() and any(_refused_char(c) and c not in "\n\t" for c in normalized):
        assert fields == {"details": "invalid_characters"}
    else:
        assert fields == {}


def _mails(name: str | None, details: str | None, reason: str | None) -> list[str]:
    forwarded = mail.render(
        "request_forwarded",
        "en",
        {
            "controller_name": "Demo Shop",
            "request_id": "dsr_1",
            "request_type": "access",
            "relationship": "self",
            "purposes": [],
            "flags": [],
            "subject_email": "ana@example.org",
            "subject_name": name,
            "details": details,
            "due_at": "2025-12-23T13:15:00Z",
            "request_url": "https://x.example/r",
            "purge_after_minutes": 60,
        },
    )
    changed = mail.render(
        "status_changed",
        "en",
        {
            "request_type": "access",
            "status": "rejected",
            "status_url": "https://x.example/s",
            "reason": reason,
        },
    )
    return [forwarded.text, changed.text]


@settings(max_examples=150, deadline=None)
@given(name=st.text(max_size=30), details=st.text(max_size=80), reason=st.text(max_size=60))
def test_no_accepted_field_starts_a_line_of_a_plain_text_mail(name, details, reason):
    """Whatever a subject and a controller may send, every line of the plain-text mails that show it
    is one of the template's own lines (as with harmless values), a quoted line, or the name's own
    labelled line."""
    try:
        submission = Submission.model_validate({**VALID, "name": name, "details": details})
        report = StatusReport.model_validate({"status": "rejected", "reason": reason})
    except ValidationError:
        return
    baseline = _mails("N", "x", "x")
    for text, plain in zip(_mails(submission.name, submission.details or "x", report.reason or "x"), baseline):
        own = set(plain.split("\n"))
        for line in text.split("\n"):
            assert line in own or line.startswith(("> ", "Name: ")) or line == ">", repr(line)


def test_quoted_prefixes_every_line():
    assert mail.quoted("a\r\nb\n\nc") == "> a\n> b\n> \n> c"
    assert mail.quoted(None) == ""
