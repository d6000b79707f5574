"""Public routes of the operator's own data: the subject's export, and its JSON Schema.

Included by app.py with `app.include_router(own_routes.router)`; app.py's error handlers and
security headers apply. Only the status token opens an export: `Authorization: Bearer <token>`,
or `?token=` in the links of the status page (a browser cannot send a header from a link).
Nothing here logs a token or the export's contents.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from rightsdesk.kernel.errors import InvalidInput
from rightsdesk.outbound import api_documents
from rightsdesk.platform import http
from rightsdesk.render import i18n, web

logger = Logger(child=True)
router = Router()


def _token(query_token: str | None) -> str | None:
    return http.bearer_token(router.current_event.headers.get("authorization")) or query_token or None


@router.get(
    "/v1/requests/<request_id>/export",
    summary="The subject's data, for an access or portability request to the operator itself "
    "(Authorization: Bearer <status_token>); for 7 days after the request was completed",
    responses=http.responses(
        200,
        "The export (JSON as GET /v1/schemas/export.json describes it, the readable page, or one "
        "source's records as CSV)",
        None,
        401,
        404,
        409,
        410,
        422,
        429,
        503,
        media=(http.JSON, "text/html", "text/csv"),
        codes={
            404: "Codes: `not_found`, `no_export`, `no_section` (format=csv: no source of that id)",
            409: "Codes: `export_not_ready`, `section_not_tabular` (format=csv: its records nest; use the JSON)",
            422: "Codes: `invalid_input` (`section`: required with format=csv)",
        },
    ),
    security=api_documents.STATUS_TOKEN_OR_LINK,
)
def export(
    request_id: str,
    format: Annotated[
        Literal["json", "html", "csv"] | None,
        Query(description="json (default for API clients), html, or csv (one source's records, with `section`)"),
    ] = None,
    section: Annotated[
        str | None,
        Query(max_length=63, pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", description="With format=csv: the source's id"),
    ] = None,
    token: Annotated[
        str | None, Query(max_length=128, description="The status token, for links from the status page")
    ] = None,
    lang: Annotated[str | None, Query(max_length=16)] = None,
):
    from rightsdesk.own_data import exports  # the export's route alone needs the subject's holdings

    status_token = _token(token)
    headers = router.current_event.headers
    wants_html = format == "html" or (format is None and http.wants_html(headers.get("accept")))
    try:
        request, until = exports.authorize(
            request_id, status_token, source=router.current_event.request_context.identity.source_ip
        )
    except (exports.NotReady, exports.Expired) as error:
        if not wants_html:
            raise
        # A subject following a link: a page in their language rather than an error code.
        return Response(
            status_code=error.status,
            content_type="text/html; charset=utf-8",
            body=exports.unavailable_page(error.code, i18n.negotiate(lang, headers.get("accept-language"))),
            headers={"Content-Security-Policy": web.content_security_policy()},
        )
    document = exports.document(request, until, exports.connector_sections(request.request_id))
    if format == "csv":
        if not section:
            raise InvalidInput("format=csv needs the section to download", fields={"section": "required"})
        filename, text = exports.csv_file(document, section)
        logger.info("export opened", extra={"request_id": request_id, "format": "csv", "section": section})
        return Response(
            status_code=200,
            content_type="text/csv; charset=utf-8",
            body=text,
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    logger.info("export opened", extra={"request_id": request_id, "format": "html" if wants_html else "json"})
    if wants_html:
        locale = i18n.negotiate(lang, headers.get("accept-language")) if lang else request.locale
        return Response(
            status_code=200,
            content_type="text/html; charset=utf-8",
            body=exports.page(document, locale, status_token or ""),
            headers={"Content-Security-Policy": web.content_security_policy()},
        )
    download = {}
    if format == "json":  # asked for the file: the browser saves it
        download["Content-Disposition"] = f'attachment; filename="rightsdesk-export-{request.request_id}.json"'
    return Response(status_code=200, content_type="application/json", body=document, headers=download)


@router.get(
    "/v1/schemas/export.json",
    summary="The JSON Schema of a data export",
    responses=http.responses(200, "JSON Schema (2020-12)", None, media=("application/schema+json",)),
)
def export_schema():
    from rightsdesk.own_data import exports

    # Serialized here: the resolver serializes dict bodies of application/json only.
    return Response(status_code=200, content_type="application/schema+json", body=json.dumps(exports.schema()))


# ------------------------------------------------------------------ for app.py's pages


def export_link(request, token: str | None) -> str | None:
    from rightsdesk.own_data import exports  # a status page, not every cold start

    return exports.link(request, token)
