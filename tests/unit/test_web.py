"""The subject-facing pages: complete, localized, escaped, accessible, self-contained."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import datetime, timezone
from html.parser import HTMLParser

import pytest

from rightsdesk.kernel.rights import PURPOSES, RELATIONSHIPS, REQUEST_TYPES
from rightsdesk.kernel.status import Status
from rightsdesk.platform.config import SUPPORTED_LOCALES
from rightsdesk.render import i18n, web

DUE = datetime(2025, 12, 23, 13, 15, tzinfo=timezone.utc)
TOKEN = "rdst_" + "A" * 40

CONTEXTS = {
    "form": {"values": {}, "errors": {}, "site": None},
    "verify": {"request_id": "01JREQ", "code": None, "error": None, "attempts_left": None},
    "verified": {
        "request_id": "01JREQ",
        "status": "verified",
        "due_at": DUE,
        "status_url": f"https://privacy.example.com/status/01JREQ?token={TOKEN}",
        "status_token": TOKEN,
    },
    "status": {
        "request_id": "01JREQ",
        "status": "forwarded",
        "request_type": "erasure",
        "due_at": DUE,
        "timeline": [
            {"at": datetime(2025, 11, 23, 12, 0, tzinfo=timezone.utc), "status": "identity_unverified"},
            {"at": "2025-11-23T12:05:00Z", "status": "verified"},
        ],
        "can_cancel": True,
        "cancel_token": TOKEN,
    },
    "status_lookup": {"request_id": "01JREQ"},
    "message": {"title": "not_found", "message": "not_found", "status_code": 404},
}

# One phrase per page and locale that only that translation contains.
PHRASES = {
    "form": {"en": "What would you like to do?", "de": "Was möchten Sie tun?", "sl": "Kaj želite storiti?"},
    "verify": {"en": "Confirmation code", "de": "Bestätigungscode", "sl": "Potrditvena koda"},
    "verified": {
        "en": "Your request is confirmed",
        "de": "Ihre Anfrage ist bestätigt",
        "sl": "Vaša zahteva je potrjena",
    },
    "status": {"en": "Status of your request", "de": "Status Ihrer Anfrage", "sl": "Stanje vaše zahteve"},
    "status_lookup": {"en": "Status token", "de": "Status-Token", "sl": "Žeton stanja"},
    "message": {"en": "Request not found", "de": "Anfrage nicht gefunden", "sl": "Zahteve ni mogoče najti"},
}


# ------------------------------------------------------------------ a small DOM for assertions

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Node:
    def __init__(self, tag: str, attrs: dict, parent: Node | None):
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.content: list[Node | str] = []  # child elements and text, in document order

    @property
    def children(self) -> list[Node]:
        return [c for c in self.content if isinstance(c, Node)]

    @property
    def text(self) -> str:
        return "".join(c for c in self.content if isinstance(c, str))

    def iter(self):
        yield self
        for child in self.children:
            yield from child.iter()

    def find_all(self, tag: str | None = None, **attrs) -> list[Node]:
        return [
            n
            for n in self.iter()
            if (tag is None or n.tag == tag) and all(n.attrs.get(k.rstrip("_")) == v for k, v in attrs.items())
        ]

    def find(self, tag: str | None = None, **attrs) -> Node:
        found = self.find_all(tag, **attrs)
        assert found, f"no <{tag} {attrs}>"
        return found[0]

    def ancestors(self):
        node = self.parent
        while node is not None:
            yield node
            node = node.parent

    @property
    def all_text(self) -> str:
        parts = [c if isinstance(c, str) else c.all_text for c in self.content]
        return squash(" ".join(parts))


class Tree(HTMLParser):
    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.root = self.current = Node("#document", {}, None)
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: (v if v is not None else "") for k, v in attrs}, self.current)
        self.current.content.append(node)
        if tag not in VOID:
            self.current = node

    def handle_endtag(self, tag):
        node = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        assert node is not None, f"stray </{tag}>"
        self.current = node.parent

    def handle_data(self, data):
        self.current.content.append(data)


def squash(text: str) -> str:
    return " ".join(text.split())  # also folds the narrow no-break spaces CLDR puts in times


def dom(html: str) -> Node:
    return Tree(html).root


def render(page: str, locale: str = "en", **overrides) -> str:
    return web.render_page(page, locale, **{**CONTEXTS[page], **overrides})


# ------------------------------------------------------------------ every page, every locale


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
@pytest.mark.parametrize("page", web.PAGES)
def test_every_page_renders_in_every_locale(page, locale):
    html = render(page, locale)
    tree = dom(html)
    assert html.startswith("<!doctype html>")
    assert tree.find("html").attrs["lang"] == locale
    assert tree.find("meta", name="viewport").attrs["content"] == "width=device-width, initial-scale=1"
    assert tree.find("title").all_text
    assert "rightsdesk —" in tree.find("header").all_text
    assert PHRASES[page][locale] in html
    for other in SUPPORTED_LOCALES:
        if other != locale:
            assert PHRASES[page][other] not in html
    links = tree.find("footer").find_all("a")
    assert [a.attrs["hreflang"] for a in links] == list(SUPPORTED_LOCALES)
    assert all(f"lang={a.attrs['hreflang']}" in a.attrs["href"] for a in links)
    assert [a.attrs["hreflang"] for a in links if "aria-current" in a.attrs] == [locale]


def test_unknown_locale_falls_back_to_english_and_unknown_page_fails():
    assert 'lang="en"' in render("form", "fr")
    with pytest.raises(ValueError):
        web.render_page("admin", "en")


@pytest.mark.parametrize("page", web.PAGES)
def test_pages_are_self_contained(page):
    html = render(page)
    tree = dom(html)
    assert not tree.find_all("link") and not tree.find_all("img") and not tree.find_all("iframe")
    assert all("src" not in s.attrs for s in tree.find_all("script"))
    assert not re.search(r"""\bsrc=""", html)  # links may leave the page; nothing is loaded from elsewhere
    assert "@import" not in html and "url(" not in html


@pytest.mark.parametrize("page", web.PAGES)
def test_csp_hashes_match_the_inline_style_and_script(page):
    tree = dom(render(page))
    policy = dict(part.split(" ", 1) for part in web.content_security_policy().split("; "))

    def digest(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    assert digest(tree.find("style").text) == policy["style-src"]
    for script in tree.find_all("script"):
        assert digest(script.text) == policy["script-src"]
    assert policy["default-src"] == "'none'" and policy["form-action"] == "'self'"


# ------------------------------------------------------------------ escaping

EVIL = '<script>alert("x")</script>'


def test_form_values_are_escaped():
    html = render(
        "form",
        values={"site": EVIL, "email": EVIL, "name": EVIL, "details": EVIL, "type": EVIL, "purposes": [EVIL]},
        errors={"email": "invalid_email", EVIL: "required"},
        site=EVIL,
        authority={"name": EVIL, "url": "javascript:alert(1)"},
    )
    assert "<script>alert" not in html
    assert "&lt;script&gt;" in html
    tree = dom(html)
    assert tree.find("input", id="email").attrs["value"] == EVIL  # escaped in markup, intact as a value
    assert tree.find("textarea", id="details").text == EVIL


@pytest.mark.parametrize(
    ("page", "overrides"),
    [
        ("verify", {"request_id": EVIL, "code": EVIL}),
        ("verified", {"request_id": EVIL, "status": EVIL, "status_token": EVIL, "status_url": "/status/x?t=" + EVIL}),
        ("status", {"request_id": EVIL, "status": EVIL, "request_type": EVIL, "cancel_token": EVIL}),
        ("message", {"title": EVIL, "message": EVIL}),
    ],
)
def test_other_pages_escape_their_context(page, overrides):
    html = render(page, **overrides)
    assert "<script>alert" not in html and "&lt;script&gt;" in html


# ------------------------------------------------------------------ the form


def _labelled_controls(tree: Node) -> tuple[set, set]:
    controls = {
        n.attrs["id"]
        for n in tree.iter()
        if n.tag in ("input", "textarea", "select") and n.attrs.get("type") not in ("hidden", "submit")
    }
    labels = {n.attrs.get("for") for n in tree.find_all("label")}
    return controls, labels


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_form_structure(locale):
    tree = dom(render("form", locale, site="demo"))
    form = tree.find("form")
    assert form.attrs["method"] == "post" and form.attrs["action"] == f"/v1/requests?lang={locale}"
    assert "novalidate" in form.attrs  # errors come from the server, next to their fields, in the page's language
    assert form.find("input", type="hidden", name="locale").attrs["value"] == locale
    assert form.find("input", id="site").attrs["value"] == "demo"

    controls, labels = _labelled_controls(tree)
    assert controls <= labels, f"inputs without a label: {controls - labels}"
    types = [n.attrs["value"] for n in form.find_all("input", name="type")]
    assert types == list(REQUEST_TYPES)
    assert all(n.attrs["type"] == "radio" for n in form.find_all("input", name="type"))
    assert [n.attrs["value"] for n in form.find_all("input", name="relationship")] == list(RELATIONSHIPS)
    assert [n.attrs["value"] for n in form.find_all("input", name="purposes")] == list(PURPOSES)
    assert form.find("input", name="relationship", value="self").attrs.get("checked") == ""
    assert form.find("input", id="email").attrs["type"] == "email"
    assert form.find("input", id="email").attrs["autocomplete"] == "email"

    # Radio and checkbox groups are fieldsets with a legend; every option explains itself.
    for name in ("type", "relationship", "purposes"):
        first = form.find("input", name=name)
        fieldset = next(a for a in first.ancestors() if a.tag == "fieldset")
        assert fieldset.find("legend").all_text
    for value in REQUEST_TYPES:
        hint_id = form.find("input", id=f"type-{value}").attrs["aria-describedby"]
        assert tree.find(id=hint_id).all_text == i18n.gettext(i18n.REQUEST_TYPE_HINTS[value], locale)

    # Without JavaScript every conditional section is in the page (and visible).
    for section in ("purposes-section", "complaint-note", "guardian-note", "agent-note"):
        assert "hidden" not in tree.find(id=section).attrs


def test_form_refills_previous_input():
    tree = dom(
        render(
            "form",
            values={
                "site": "demo",
                "type": "consent_withdrawal",
                "email": "a@example.com",
                "name": "Ana",
                "purposes": ["newsletter", "analytics"],
                "relationship": "guardian",
            },
        )
    )
    assert "checked" in tree.find("input", id="type-consent_withdrawal").attrs
    assert "checked" in tree.find("input", id="purposes-newsletter").attrs
    assert "checked" in tree.find("input", id="purposes-analytics").attrs
    assert "checked" not in tree.find("input", id="purposes-marketing").attrs
    assert "checked" in tree.find("input", id="relationship-guardian").attrs
    assert "checked" not in tree.find("input", id="relationship-self").attrs
    assert tree.find("input", id="name").attrs["value"] == "Ana"


def test_details_label_speaks_of_corrections_for_rectification():
    plain = dom(render("form")).find("label", for_="details").all_text
    rectify = dom(render("form", values={"type": "rectification"})).find("label", for_="details").all_text
    assert plain.startswith("Details") and rectify.startswith("What should be corrected?")


def test_complaint_note_names_the_authority():
    authority = {"name": "Informacijski pooblaščenec", "url": "https://www.ip-rs.si/"}
    note = dom(render("form", "sl", authority=authority)).find(id="complaint-note")
    assert "Informacijski pooblaščenec" in note.all_text
    assert note.find("a").attrs["href"] == "https://www.ip-rs.si/"
    assert "nadzornem organu" in dom(render("form", "sl")).find(id="complaint-note").all_text


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_error_is_next_to_its_field_and_wired_for_assistive_tech(locale):
    tree = dom(render("form", locale, values={"email": "nope", "site": "demo"}, errors={"email": "invalid_email"}))
    field = tree.find("input", id="email")
    assert field.attrs["aria-invalid"] == "true"
    assert "autofocus" in field.attrs
    described = field.attrs["aria-describedby"].split()
    assert "email-error" in described and "email-hint" in described
    message = tree.find(id="email-error")
    expected = i18n.gettext(web.FORM_ERRORS[("email", "invalid_email")], locale)
    assert expected in message.all_text
    # Same container as the field, so it is read and seen right beside it.
    assert field.parent is message.parent
    summary = tree.find(role="alert")
    link = summary.find("a")
    assert link.attrs["href"] == "#email" and link.all_text == expected
    # Fields without problems stay unmarked.
    assert "aria-invalid" not in tree.find("input", id="site").attrs


def test_errors_on_groups_and_unknown_fields():
    tree = dom(render("form", errors={"type": "required", "purposes": "purposes_required", "body": "invalid_input"}))
    assert tree.find("fieldset", **{"aria-describedby": "type-error"})
    assert "autofocus" in tree.find("input", id="type-access").attrs  # the first field in page order
    assert "autofocus" not in tree.find("input", id="purposes-marketing").attrs
    assert "purposes-error" in tree.find(id="purposes-marketing").parent.parent.attrs["aria-describedby"]
    items = tree.find(role="alert").find_all("li")
    assert [li.find_all("a")[0].attrs["href"] if li.find_all("a") else None for li in items] == [
        "#type-access",
        "#purposes-marketing",
        None,
    ]
    assert items[2].all_text == "Please check this entry."


def test_every_error_code_has_a_message_in_every_locale():
    codes = [
        "required",
        "invalid_email",
        "too_long",
        "unknown_site",
        "invalid_choice",
        "purposes_required",
        "invalid_input",
    ]
    for locale in ("de", "sl"):
        tree = dom(render("form", locale, errors={"site": "unknown_site", "email": "too_long", "name": "too_long"}))
        assert tree.find(id="site-error").all_text.endswith(
            i18n.gettext(web.FORM_ERRORS[("site", "unknown_site")], locale)
        )
        for code in codes:
            assert i18n.translations(locale)._catalog.get(web.FORM_ERRORS[code])


# ------------------------------------------------------------------ verify, verified, status, message


def test_verify_form():
    tree = dom(render("verify", "de", request_id="01JREQ", code="123456"))
    form = tree.find("form")
    assert form.attrs["method"] == "post" and form.attrs["action"] == "/v1/requests/01JREQ/verify?lang=de"
    code = form.find("input", name="code")
    assert code.attrs["value"] == "123456"
    assert (code.attrs["inputmode"], code.attrs["autocomplete"], code.attrs["pattern"]) == (
        "numeric",
        "one-time-code",
        "[0-9]{6}",
    )
    assert tree.find("label", for_="code")
    assert form.find("input", type="hidden", name="locale").attrs["value"] == "de"
    assert "15 Minuten" in tree.all_text
    links = [a.attrs["href"] for a in tree.find("footer").find_all("a")]
    assert links[2] == "/verify/01JREQ?code=123456&lang=sl"


@pytest.mark.parametrize(
    ("attempts", "words"), [(1, "poskus."), (2, "poskusa."), (3, "poskuse."), (4, "poskuse."), (5, "poskusov.")]
)
def test_verify_error_counts_attempts_in_slovenian(attempts, words):
    tree = dom(render("verify", "sl", error="invalid_code", attempts_left=attempts))
    error = tree.find(id="code-error")
    assert f"še {attempts} {words}" in error.all_text
    code = tree.find("input", id="code")
    assert code.attrs["aria-invalid"] == "true" and "code-error" in code.attrs["aria-describedby"]


@pytest.mark.parametrize("error", ["code_expired", "too_many_attempts", "not_awaiting_verification"])
def test_verify_dead_ends_offer_a_new_request_instead_of_a_code_field(error):
    tree = dom(render("verify", "en", error=error))
    assert not tree.find_all("form")
    assert tree.find(role="alert").all_text.endswith(i18n.gettext(web.VERIFY_ERRORS[error], "en"))
    assert tree.find("a", class_="button").attrs["href"] == "/?lang=en"


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_verified_page_shows_due_date_status_link_and_token(locale):
    tree = dom(render("verified", locale))
    assert tree.find("time").all_text == squash(i18n.format_datetime(DUE, locale))
    assert tree.find("time").attrs["datetime"] == "2025-12-23T13:15:00Z"
    assert (
        tree.find("a", **{"data-status-link": ""}).attrs["href"]
        == CONTEXTS["verified"]["status_url"] + f"&lang={locale}"
    )
    assert tree.find(id="status-token").all_text == TOKEN
    # The language links lead to the status page (a GET), keeping its token.
    assert tree.find("footer").find("a").attrs["href"] == f"/status/01JREQ?token={TOKEN}&lang=en"


@pytest.mark.parametrize("locale", ("de", "sl"))
@pytest.mark.parametrize("status", [s.value for s in Status])
def test_status_page_names_every_status(status, locale):
    tree = dom(render("status", locale, status=status))
    shown = tree.find(**{"class": "status"})
    assert shown.attrs["data-status"] == status
    assert shown.all_text == i18n.status_name(status, locale) != i18n.STATUS_NAMES[status]


def test_status_page_timeline_and_cancel_form():
    tree = dom(render("status", "de"))
    entries = tree.find("ol").find_all("li")
    assert [li.find("span").attrs["data-status"] for li in entries] == ["identity_unverified", "verified"]
    assert entries[1].find("time").attrs["datetime"] == "2025-11-23T12:05:00Z"
    form = tree.find("form")
    assert form.attrs["action"] == "/v1/requests/01JREQ/cancel?lang=de" and form.attrs["method"] == "post"
    assert form.find("input", type="hidden", name="token").attrs["value"] == TOKEN
    assert tree.find("footer").find("a").attrs["href"] == f"/status/01JREQ?token={TOKEN}&lang=en"


def test_status_page_without_cancel():
    assert not dom(render("status", can_cancel=False)).find_all("form")
    assert not dom(render("status", can_cancel=True, cancel_token=None)).find_all("form")
    html = render("status", due_at=None, timeline=[])
    assert "Answer due by" not in html and "<ol" not in html


def test_message_page_localizes_known_keys_and_shows_other_text_as_given():
    tree = dom(render("message", "de", title=None, message="link_invalid", status_code=410))
    assert tree.find("h1").all_text == "Dieser Link ist nicht mehr gültig"
    assert "410" in tree.all_text
    tree = dom(render("message", "en", title="Custom title", message="Custom message", status_code=200))
    assert tree.find("h1").all_text == "Custom title" and "Custom message" in tree.all_text
    assert "Error code" not in tree.all_text


def test_a_missing_value_leaves_a_gap_not_a_server_error():
    context = {k: v for k, v in CONTEXTS["verified"].items() if k not in ("status", "due_at")}
    tree = dom(web.render_page("verified", "en", **context))
    assert tree.find(**{"class": "status"}).all_text == ""
