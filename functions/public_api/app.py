"""PublicApiFunction: the subject's form and API. Parses, calls the intake core, shapes the answer.

Browsers (Accept: text/html) get server-rendered pages that work without JavaScript; API
clients get JSON. Errors are `{"error": {"code", "message", "fields"?}}`; a 5xx says nothing
about internals. Nothing here logs a body, an address, a code or a token.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Annotated
from urllib.parse import parse_qs

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Query
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from rightsdesk.intake import submissions
from rightsdesk.kernel import clock, gpc, identifiers, retention
from rightsdesk.kernel.errors import InvalidInput
from rightsdesk.kernel.status import is_open
from rightsdesk.outbound import api_documents
from rightsdesk.platform import api_errors, api_gateway, handler_support, hashing, http
from rightsdesk.platform.config import settings
from rightsdesk.render import i18n, web

logger = Logger()
metrics = Metrics()
# Page views record no metric; an empty flush is expected, not worth a warning per request.
warnings.filterwarnings("ignore", message="No application metrics to publish")

_origins = settings().cors_allow_origins
# Idempotency-Key beside powertools' defaults (Authorization, Content-Type, ...): a page on another
# origin may retry a submission safely.
cors = (
    CORSConfig(
        allow_origin=_origins[0], extra_origins=list(_origins[1:]), max_age=600, allow_headers=["Idempotency-Key"]
    )
    if _origins
    else None
)
app = APIGatewayRestResolver(enable_validation=True, cors=cors)


# ------------------------------------------------------------------ helpers


def _wants_html() -> bool:
    return http.wants_html(app.current_event.headers.get("accept"))


def _locale(chosen: str | None = None) -> str:
    """The subject's language: `?lang=` (every link and form action of the pages carries it), else
    what the page knows was chosen (a form's locale, the request's own), else Accept-Language."""
    event = app.current_event
    query = (event.query_string_parameters or {}).get("lang")
    return i18n.negotiate(query if i18n.is_supported(query) else chosen, event.headers.get("accept-language"))


def _base_url() -> str:
    return api_gateway.base_url(app.current_event)


def _html(page: str, http_status: int = 200, **context) -> Response:
    return Response(
        status_code=http_status,
        content_type="text/html; charset=utf-8",
        body=web.render_page(page, context.pop("locale", None) or _locale(), **context),
        # exactly the inline style and script the pages carry, by hash
        headers={"Content-Security-Policy": web.content_security_policy()},
    )


def _source() -> str | None:
    """The caller's address, for rightsdesk.intake.guard (which stores only its keyed hash)."""
    return app.current_event.request_context.identity.source_ip or None


def _bearer() -> str | None:
    return http.bearer_token(app.current_event.headers.get("authorization"))


def _form_values() -> dict[str, str | list[str]]:
    """The raw form, only to re-fill the page the same person is looking at."""
    parsed = parse_qs(app.current_event.decoded_body or "", keep_blank_values=True)
    return {key: (values if key == "purposes" else values[0]) for key, values in parsed.items()}


# ------------------------------------------------------------------ pages


@app.get("/", include_in_schema=False)
def form_page(site: Annotated[str | None, Query(max_length=253)] = None):
    # Imported here: only the form names an authority, the other routes need not load own_data.
    from rightsdesk.own_data import own_requests

    return _html("form", values={}, errors={}, site=site, authority=own_requests.form_authority(site))


@app.get("/verify/<request_id>", include_in_schema=False)
def verify_page(request_id: str, code: Annotated[str | None, Query(max_length=6)] = None):
    return _html("verify", request_id=request_id, code=code, error=None, attempts_left=None)


@app.get("/status/<request_id>", include_in_schema=False)
def status_page(request_id: str, token: Annotated[str | None, Query(max_length=128)] = None):
    if not token:
        # Links in later emails carry no token (only its hash is kept): ask for the one the subject has.
        return _html("status_lookup", request_id=request_id)
    request = submissions.authorize(request_id, token, source=_source())
    view = submissions.status_view(request)
    return _html(
        "status",
        locale=_locale(request.locale),
        request_id=request_id,
        status=view["status"],
        request_type=view["type"],
        due_at=request.due_at,
        timeline=[{"at": clock.parse_iso(e["at"]), "status": e["status"]} for e in view["timeline"]],
        can_cancel=is_open(request.status),
        cancel_token=token,
        export_url=own_routes.export_link(request, token),
    )


GPC_SUPPORT = http.object_schema({"gpc": {"type": "boolean"}, "lastUpdate": {"type": "string", "format": "date"}})


# Global Privacy Control's site-wide statement (W3C GPC, "well-known resource"): static, cacheable.
@app.get(
    "/.well-known/gpc.json",
    summary="This service honours Global Privacy Control (W3C GPC)",
    responses=http.responses(200, "`gpc`: true; `lastUpdate`: when that statement last changed", GPC_SUPPORT, 429, 503),
)
def gpc_support():
    return Response(
        status_code=200,
        content_type="application/json",
        body=gpc.well_known(),
        headers={"Cache-Control": "public, max-age=86400"},
    )


@app.get("/openapi.json", include_in_schema=False)
def openapi():
    return Response(status_code=200, content_type="application/json", body=_document())


@functools.cache
def _document() -> dict:
    return api_documents.public_api(app)


# ------------------------------------------------------------------ API


def _gpc_signal() -> bool:
    """Whether the caller sent `Sec-GPC: 1`. A repeated header counts as its values joined (the
    spec's `1, 1` is no signal); rightsdesk.kernel.gpc holds the rule."""
    event = app.current_event
    values = [
        value
        for name, found in (event.multi_value_headers or {}).items()
        if name.lower() == gpc.HEADER
        for value in (found or [])
    ]
    if not values:
        single = event.headers.get(gpc.HEADER)
        values = [single] if single is not None else []
    return bool(values) and gpc.signal_present(", ".join(values))


def _submit_once(*, client_key: dict, submission: submissions.Submission, locale: str) -> dict:
    result = submissions.submit(submission, locale=locale, source=_source(), gpc=_gpc_signal())
    return {"request_id": result.request_id, "status": result.status}


# Built on first use: only a submission with an Idempotency-Key needs the store. The record holds a
# hash of the client's key, the answer (request id, status) and, to refuse the key with another
# body, a hash of the body's keyed hash (hashing.fingerprint): no personal data, nothing an address
# could be guessed back from. Records are keyed on _submit_once's module and name: rename neither.
_idempotent_submit = handler_support.IdempotentOnFirstUse(
    _submit_once,
    data_keyword_argument="client_key",
    event_key_jmespath="[site, key]",
    payload_validation_jmespath="body",
    expires_after_seconds=retention.keep_seconds(retention.Rule.IDEMPOTENT_SUBMISSION),
)


# The answers each route documents in /openapi.json (errors in the shape of http.ERROR_SCHEMA).
SUBMITTED = http.object_schema({"request_id": {"type": "string"}, "status": {"type": "string"}})
VERIFIED = http.object_schema(
    {name: {"type": "string"} for name in ("request_id", "status", "status_token", "due_at", "status_url")}
)
STATUS_VIEW = submissions.STATUS_VIEW_SCHEMA
IDEMPOTENCY_KEY = Annotated[
    str | None,
    Header(
        description="Makes a retry safe: the same key with the same body gets the first answer for 24 h; "
        "with another body, 422 `idempotency_key_reused`. Scoped to the body's site",
        json_schema_extra={"minLength": 1, "maxLength": http.MAX_IDEMPOTENCY_KEY_LENGTH, "pattern": "^[ -~]+$"},
    ),
]


# An Idempotency-Key makes a retry safe: the same key with the same body gets the first answer; with
# another body, a 422 (idempotency_key_reused). Keys are scoped to the site the body names.
@app.post(
    "/v1/requests",
    summary="Submit a request",
    responses=http.responses(
        202,
        "Accepted; a code was emailed (or, over the address's hourly limit of "
        "codes, nothing was: the answer is the same)",
        SUBMITTED,
        400,
        409,
        413,
        415,
        422,
        429,
        503,
        codes={
            422: "Codes: `invalid_input` (`fields`), `unknown_site`, `site_unavailable`, "
            "`idempotency_key_reused` (the Idempotency-Key was used with another body)",
            429: "Codes: `rate_limited` (this source's submissions this minute), `too_many_requests`",
        },
    ),
)
def submit(submission: Annotated[submissions.Submission, Body()], idempotency_key: IDEMPOTENCY_KEY = None):
    locale = submission.locale or _locale()
    client_key = idempotency_key
    if client_key is not None and not http.valid_idempotency_key(client_key):
        raise InvalidInput(
            "the Idempotency-Key must be 1 to 255 printable ASCII characters",
            fields={"idempotency-key": "invalid_format"},
        )
    if client_key:
        answer = _idempotent_submit(
            client_key={
                "site": identifiers.normalize_site_key(submission.site),
                "key": client_key,
                "body": hashing.fingerprint("idempotency_body", submission.model_dump(mode="json")),
            },
            submission=submission,
            locale=locale,
        )
    else:
        result = submissions.submit(submission, locale=locale, source=_source(), gpc=_gpc_signal())
        answer = {"request_id": result.request_id, "status": result.status}
    metrics.add_metric(name="RequestSubmitted", unit=MetricUnit.Count, value=1)
    logger.info("request submitted", extra={"request_id": answer["request_id"], "type": submission.type.value})
    if _wants_html():
        return Response(
            status_code=303,
            content_type="text/plain",
            body="",
            headers={"Location": f"{_base_url()}/verify/{answer['request_id']}?lang={locale}"},
        )
    return Response(status_code=202, content_type="application/json", body=answer)


@app.post(
    "/v1/requests/<request_id>/verify",
    summary="Prove control of the address with the emailed code",
    responses=http.responses(
        200, "Verified; keep the status token", VERIFIED, 400, 404, 409, 410, 413, 415, 422, 429, 503
    ),
)
def verify(request_id: str, body: Annotated[submissions.VerifyInput, Body()]):
    result = submissions.verify(request_id, body.code, source=_source())
    if result.repeated:
        logger.info("verification repeated", extra={"request_id": request_id})
    else:
        metrics.add_metric(name="RequestVerified", unit=MetricUnit.Count, value=1)
        logger.info("request verified", extra={"request_id": request_id})
    status_url = f"{_base_url()}/status/{request_id}?token={result.status_token}"
    if _wants_html():
        return _html(
            "verified",
            locale=body.locale or result.locale,
            request_id=request_id,
            status=result.status,
            due_at=result.due_at,
            status_url=status_url,
            status_token=result.status_token,
        )
    return Response(
        status_code=200,
        content_type="application/json",
        body={
            "request_id": request_id,
            "status": result.status,
            "status_token": result.status_token,
            "due_at": clock.isoformat(result.due_at),
            "status_url": status_url,
        },
    )


@app.get(
    "/v1/requests/<request_id>",
    summary="Follow a request (Authorization: Bearer <status_token>)",
    responses=http.responses(200, "The request's progress; no personal data", STATUS_VIEW, 401, 404, 429, 503),
    security=api_documents.STATUS_TOKEN_REQUIRED,
)
def get_status(request_id: str) -> dict:
    return submissions.status_view(submissions.authorize(request_id, _bearer(), source=_source()))


@app.post(
    "/v1/requests/<request_id>/cancel",
    summary="Cancel a request (Authorization: Bearer <status_token>)",
    responses=http.responses(200, "Cancelled", SUBMITTED, 401, 404, 409, 413, 415, 429, 503),
    security=api_documents.STATUS_TOKEN_REQUIRED,
)
def cancel(request_id: str):
    token = _bearer()
    if token is None and _wants_html():
        token = str(_form_values().get("token") or "") or None
    request = submissions.cancel(request_id, token, source=_source())
    logger.info("request cancelled", extra={"request_id": request_id})
    if _wants_html():
        return Response(
            status_code=303,
            content_type="text/plain",
            body="",
            headers={"Location": f"{_base_url()}/status/{request_id}?token={token}&lang={_locale(request.locale)}"},
        )
    return Response(
        status_code=200,
        content_type="application/json",
        body={"request_id": request.request_id, "status": request.status},
    )


# ------------------------------------------------------------------ notices: policy archive, unsubscribe

import notice_routes  # noqa: E402 - this function's own module, kept with the one line that uses it

app.include_router(notice_routes.router)

# ------------------------------------------------------------------ the operator's own data: exports

import own_routes  # noqa: E402 - this function's own module, kept with the one line that uses it

app.include_router(own_routes.router)


# ------------------------------------------------------------------ errors


def _html_error(status: int, code: str, fields: dict[str, str], message: str) -> Response:
    """Send the person back to the page they came from, with the problem shown next to the field.
    The route is API Gateway's resource (the template's path), its request id the `{id}` parameter."""
    event = app.current_event
    request_id = (event.path_parameters or {}).get("id")
    if event.resource == "/v1/requests":
        values = _form_values()
        return _html(
            "form",
            status,
            locale=_locale(str(values.get("locale") or "")),
            values=values,
            errors=fields or {"form": code},
            site=None,
        )
    if event.resource == "/v1/requests/{id}/verify":
        return _html(
            "verify", status, request_id=request_id, code=None, error=fields.get("code", code), attempts_left=None
        )
    if code == "not_found" and request_id is None:
        code = message = "page_not_found"  # a policy, a page: "request not found" would mislead
    return _html("message", status, title=code, message=message, status_code=status)


def _for_browsers(page: Callable[..., Response]) -> Callable[..., Response | None]:
    """The page for a browser; None (the JSON answer) for API clients."""
    return lambda *args: page(*args) if _wants_html() else None


api_errors.install(
    app,
    logger=logger,
    metrics=metrics,
    rate_limited_metric="SubmissionRateLimited",
    pages=api_errors.ErrorPages(
        error=_for_browsers(_html_error),
        not_found=_for_browsers(
            lambda: _html("message", 404, title="page_not_found", message="page_not_found", status_code=404)
        ),
        server_error=_for_browsers(
            lambda: _html("message", 500, title="server_error", message="server_error", status_code=500)
        ),
    ),
)


# ------------------------------------------------------------------ entry point


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    _idempotent_submit.register_lambda_context(context)
    # With an origin list the answer depends on the Origin header: caches must key on it.
    vary = {"Vary": "Origin"} if cors else {}
    return api_gateway.answer(event, lambda: app.resolve(event, context), extra_headers=vary)
