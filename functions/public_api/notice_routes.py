"""Public routes of the notices: the policy archive and one-click unsubscribe.

Included by app.py with `app.include_router(notice_routes.router)`; app.py's error handlers and
security headers apply. Nothing here logs a token or an address.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from rightsdesk.outbound import schema_files
from rightsdesk.platform import http
from rightsdesk.render import i18n, web

if TYPE_CHECKING:
    from rightsdesk.audience import unsubscribe

logger = Logger(child=True)
router = Router()

TOKEN = Annotated[str | None, Query(max_length=512, description="The token from the email's unsubscribe link")]


# ------------------------------------------------------------------ policy archive


# A browser (Accept: text/html) gets a page in the reader's language; API clients get JSON. Both
# show each version's SHA-256 of its full text, recorded when it was published.


# A version as the archive shows it is the `data` of the `policy.updated` webhook event: one schema.
POLICY_VERSION = schema_files.load("policy.updated")
POLICY_VERSION["description"] = "A published version of a policy document"
POLICY_ARCHIVE = {
    "type": "object",
    "required": ["doc", "current", "upcoming", "versions"],
    "properties": {
        "doc": {"type": "string"},
        "current": {"anyOf": [POLICY_VERSION, {"type": "null"}], "description": "The version in effect"},
        "upcoming": {"type": "array", "items": POLICY_VERSION, "description": "Published, not in effect yet"},
        "versions": {"type": "array", "items": POLICY_VERSION, "description": "Every version"},
    },
}


def _archive_answer(data: dict, render) -> Response | dict:
    if not http.wants_html(router.current_event.headers.get("accept")):
        return data
    return Response(
        status_code=200,
        content_type="text/html; charset=utf-8",
        body=render(data, _locale()),
        headers={"Content-Security-Policy": web.content_security_policy()},
    )


@router.get(
    "/v1/policies/<doc>",
    summary="A policy document: its current version and every earlier one",
    responses=http.responses(
        200,
        "The document's versions (an HTML page for Accept: text/html)",
        POLICY_ARCHIVE,
        404,
        503,
        media=(http.JSON, "text/html"),
    ),
)
def policy_archive(doc: str):
    from rightsdesk.notices import notice_pages, policies  # the archive's records: loaded by its routes alone

    return _archive_answer(policies.archive(doc), notice_pages.policy_archive_page)


@router.get(
    "/v1/policies/<doc>/versions/<version>",
    summary="One version of a policy document, as published",
    responses=http.responses(
        200,
        "The version, as published (an HTML page for Accept: text/html)",
        POLICY_VERSION,
        404,
        503,
        media=(http.JSON, "text/html"),
    ),
)
def policy_version(doc: str, version: str):
    from rightsdesk.notices import notice_pages, policies

    return _archive_answer(policies.view(policies.get(doc, version)), notice_pages.policy_version_page)


# ------------------------------------------------------------------ unsubscribe (RFC 8058)


def _locale(chosen: str | None = None) -> str:
    """`?lang=`, else the language the page knows was chosen (the contact's own), else Accept-Language."""
    event = router.current_event
    query = (event.query_string_parameters or {}).get("lang")
    return i18n.negotiate(query if i18n.is_supported(query) else chosen, event.headers.get("accept-language"))


def _contact_locale(claims: unsubscribe.Claims | None) -> str | None:
    """The language the contact chose: the mail's unsubscribe link was in it."""
    from rightsdesk.audience import contacts

    contact = contacts.get(claims.email_hash) if claims else None
    return contact.locale if contact else None


def _page(
    state: str,
    status: int,
    token: str | None = None,
    list_name: str | None = None,
    claims: unsubscribe.Claims | None = None,
) -> Response:
    from rightsdesk.notices import notice_pages

    return Response(
        status_code=status,
        content_type="text/html; charset=utf-8",
        body=notice_pages.unsubscribe_page(state, _locale(_contact_locale(claims)), token, list_name),
        headers={"Content-Security-Policy": web.content_security_policy()},
    )


def _refused(error: unsubscribe.InvalidToken | unsubscribe.SpentToken) -> Response:
    from rightsdesk.audience import unsubscribe

    state = "used" if isinstance(error, unsubscribe.SpentToken) else "invalid"
    if http.wants_html(router.current_event.headers.get("accept")):
        return _page(state, error.status)
    return Response(status_code=error.status, content_type=http.JSON, body=error.to_body())


# The confirmation page answers a bad or spent token with a page too (its status says which).
UNSUBSCRIBE_PAGE_ANSWERS = {
    200: {"description": "A page asking to confirm (a GET never unsubscribes: mail scanners follow links)"},
    400: {"description": "A page: the link is not valid"},
    410: {"description": "A page: the link was used already"},
}
for _answer in UNSUBSCRIBE_PAGE_ANSWERS.values():
    _answer["content"] = {"text/html": {}}


@router.get(
    "/v1/unsubscribe",
    summary="The one-click unsubscribe link's page: asks to confirm; no login",
    responses={**UNSUBSCRIBE_PAGE_ANSWERS, 503: http.responses(200, "", None, 503)[503]},
)
def unsubscribe_page(token: TOKEN = None):
    # Only a page: mail scanners fetch every link, and a GET must never unsubscribe anyone.
    from rightsdesk.audience import unsubscribe  # the list's records: loaded by its routes alone

    try:
        claims = unsubscribe.check(token)
    except (unsubscribe.InvalidToken, unsubscribe.SpentToken) as error:
        return _page("used" if isinstance(error, unsubscribe.SpentToken) else "invalid", error.status)
    return _page("confirm", 200, token, claims.list_name, claims=claims)


ONE_CLICK = {"schema": {"type": "object", "properties": {"List-Unsubscribe": {"const": "One-Click"}}}}


@router.post(
    "/v1/unsubscribe",
    summary="One-click unsubscribe from an optional list (RFC 8058); no login",
    responses=http.responses(200, "Unsubscribed", None, 400, 410, 413, 415, 422, 503, media=(http.JSON, "text/html")),
    # RFC 8058: the mail client POSTs `List-Unsubscribe=One-Click`; the token in the URL is all that is read.
    openapi_extensions={
        "requestBody": {"required": False, "content": {http.FORM: ONE_CLICK, http.MULTIPART: ONE_CLICK}}
    },
)
def unsubscribe_now(token: TOKEN = None):
    from rightsdesk.audience import unsubscribe

    try:
        claims = unsubscribe.spend(token)
    except (unsubscribe.InvalidToken, unsubscribe.SpentToken) as error:
        logger.info("unsubscribe refused", extra={"reason": error.code})
        return _refused(error)
    logger.info("unsubscribed", extra={"list": claims.list_name})
    if http.wants_html(router.current_event.headers.get("accept")):
        return _page("done", 200, list_name=claims.list_name, claims=claims)
    return Response(status_code=200, content_type=http.JSON, body={"unsubscribed": True, "list": claims.list_name})
