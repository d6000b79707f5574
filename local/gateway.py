"""The local API Gateway: `Api` events become REST (v1) proxy events, Lambda authorizers included."""

from __future__ import annotations

import base64
import fnmatch
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from local.functions import FunctionError, FunctionUnavailable, LoadedFunction
from local.intrinsics import Resolver
from local.resources import api_id
from local.servers import BodyTooLarge, RequestHandler, error_body
from local.template import Template

log = logging.getLogger("local")

IMPLICIT_API = "ServerlessRestApi"


class GatewayError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or []

    @property
    def response_type(self) -> str | None:
        """The API Gateway response type a template's GatewayResponses may restyle (None: local only)."""
        if self.code == "method_not_allowed":
            return None
        return _RESPONSE_TYPES.get(self.code, "DEFAULT_4XX" if self.status < 500 else "DEFAULT_5XX")


_RESPONSE_TYPES = {
    "unauthorized": "UNAUTHORIZED",
    "forbidden": "ACCESS_DENIED",
    "not_found": "MISSING_AUTHENTICATION_TOKEN",
    "authorizer_error": "AUTHORIZER_FAILURE",
    "payload_too_large": "REQUEST_TOO_LARGE",
}


@dataclass
class Authorizer:
    name: str
    function: LoadedFunction | None
    payload_type: str = "TOKEN"
    headers: list[str] = field(default_factory=list)
    query_strings: list[str] = field(default_factory=list)
    ttl: int = 300


@dataclass
class Api:
    logical_id: str
    id: str
    stage: str
    authorizers: dict[str, Authorizer]
    default_authorizer: str | None
    binary_media_types: list[str]
    gateway_responses: dict[str, dict] = field(default_factory=dict)

    def error_response(self, error: GatewayError) -> tuple[int, list[tuple[str, str]], bytes] | None:
        """The template's GatewayResponses for this error, if it styles it (status, headers, JSON body)."""
        kind = error.response_type
        default = self.gateway_responses.get("DEFAULT_4XX" if error.status < 500 else "DEFAULT_5XX")
        if kind is None:
            # An answer only the local gateway makes (405): its own status and body, the API's headers.
            if not default:
                return None
            body = json.dumps(error_body(error.code, error.message)).encode()
            return error.status, [*error.headers, *_static_headers(default), ("Content-Type", "application/json")], body
        spec = self.gateway_responses.get(kind) or default
        if not spec:
            return None
        headers = _static_headers(spec)
        template = (spec.get("ResponseTemplates") or {}).get("application/json")
        if template is None:
            body = json.dumps(error_body(error.code, error.message))
        else:  # the few $context variables such templates use; no VTL beyond that
            body = (
                template.replace("$context.error.messageString", json.dumps(error.message))
                .replace("$context.error.message", error.message)
                .replace("$context.error.responseType", kind)
            )
        headers.append(("Content-Type", "application/json"))
        return int(spec.get("StatusCode", error.status)), [*error.headers, *headers], body.encode()


def _static_headers(spec: dict) -> list[tuple[str, str]]:
    """A gateway response's headers: static values, each inside one pair of single quotes (which
    are not part of the value; quotes inside it are, as in a Content-Security-Policy's 'none')."""
    headers = []
    for name, value in ((spec.get("ResponseParameters") or {}).get("Headers") or {}).items():
        text = str(value)
        headers.append((name, text[1:-1] if len(text) >= 2 and text[0] == text[-1] == "'" else text))
    return headers


@dataclass
class Route:
    api: Api
    method: str
    resource: str
    function: LoadedFunction
    authorizer: Authorizer | None
    segments: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.segments = [part for part in self.resource.split("/") if part]

    def bind(self, parts: list[str]) -> tuple[tuple, dict[str, str]] | None:
        """(specificity, path parameters) if the path fits this resource; literals beat parameters."""
        params: dict[str, str] = {}
        rank: list[int] = []
        for index, segment in enumerate(self.segments):
            if segment.startswith("{") and segment.endswith("+}"):
                if index >= len(parts):
                    return None
                params[segment[1:-2]] = "/".join(parts[index:])
                return (*rank, 2), params
            if index >= len(parts):
                return None
            if segment.startswith("{") and segment.endswith("}"):
                params[segment[1:-1]] = parts[index]
                rank.append(1)
            elif segment == parts[index]:
                rank.append(0)
            else:
                return None
        return (tuple(rank), params) if len(parts) == len(self.segments) else None


# ---------------------------------------------------------------------------------------- routes from the template
def build_routes(template: Template, resolver: Resolver, functions: dict[str, LoadedFunction]) -> list[Route]:
    by_arn = {resolver.resources.get_att(lid, "Arn"): fn for lid, fn in functions.items()}
    api_ids = {api_id(lid): lid for lid in template.of_type("AWS::Serverless::Api")}
    apis: dict[str, Api] = {}
    routes: list[Route] = []
    for function in functions.values():
        for source, event in function.spec.events.items():
            if event.get("Type") != "Api":
                continue
            properties = event.get("Properties") or {}
            rest_api = properties.get("RestApiId")
            logical_api = api_ids.get(resolver.resolve(rest_api)) if rest_api else IMPLICIT_API
            if logical_api is None:
                log.warning(
                    "%s.%s: RestApiId is not an API in the template; no route", function.spec.logical_id, source
                )
                continue
            if logical_api not in apis:
                apis[logical_api] = _api(template, resolver, logical_api, by_arn)
            api = apis[logical_api]
            auth = resolver.resolve(properties.get("Auth") or {})
            name = auth.get("Authorizer", api.default_authorizer)
            authorizer = None
            if name and name != "NONE":
                authorizer = api.authorizers.get(name) or Authorizer(name, None)
            routes.append(
                Route(
                    api,
                    str(resolver.resolve(properties["Method"])).upper(),
                    str(resolver.resolve(properties["Path"])),
                    function,
                    authorizer,
                )
            )
    return routes


def _api(template: Template, resolver: Resolver, logical_id: str, by_arn: dict[str, LoadedFunction]) -> Api:
    properties = template.api_properties(None if logical_id == IMPLICIT_API else logical_id)
    auth = resolver.resolve(properties.get("Auth") or {})
    authorizers = {}
    for name, spec in (auth.get("Authorizers") or {}).items():
        function = by_arn.get(spec.get("FunctionArn"))
        if function is None:
            log.warning(
                "%s: authorizer %s is not a Lambda function in the template; its routes answer 500", logical_id, name
            )
        identity = spec.get("Identity") or {}
        payload_type = str(spec.get("FunctionPayloadType", "TOKEN")).upper()
        headers = identity.get("Headers") or (
            [identity.get("Header", "Authorization")] if payload_type == "TOKEN" else []
        )
        authorizers[name] = Authorizer(
            name=name,
            function=function,
            payload_type=payload_type,
            headers=list(headers),
            query_strings=list(identity.get("QueryStrings") or []),
            ttl=int(identity.get("ReauthorizeEvery", 300)),
        )
    return Api(
        logical_id=logical_id,
        id=api_id(logical_id),
        stage=str(resolver.resolve(properties.get("StageName", "Prod"))),
        authorizers=authorizers,
        default_authorizer=auth.get("DefaultAuthorizer"),
        binary_media_types=[t.replace("~1", "/") for t in resolver.resolve(properties.get("BinaryMediaTypes") or [])],
        gateway_responses=resolver.resolve(properties.get("GatewayResponses") or {}),
    )


# ---------------------------------------------------------------------------------------- the server's logic
class Gateway:
    def __init__(
        self,
        routes: list[Route],
        *,
        region: str,
        account_id: str,
        dev: Callable[[RequestHandler, str, str, bytes], int] | None = None,
    ):
        self.routes = routes
        self.region = region
        self.account_id = account_id
        self.dev = dev
        self._cache: dict[tuple, tuple[float, dict]] = {}
        self._cache_lock = threading.Lock()

    def __call__(self, request: RequestHandler) -> None:
        started = time.monotonic()
        url = urlsplit(request.path)
        path = unquote(url.path) or "/"
        label, status, route = "(no route)", 0, None
        try:
            try:
                body = request.read_body()
            except BodyTooLarge:
                raise GatewayError(413, "payload_too_large", "Request body too large") from None
            if self.dev and (path == "/_dev" or path.startswith("/_dev/")):
                label = path
                status = self.dev(request, path, url.query, body)
                return
            route, params = self.match(request.command, path)
            label = route.resource
            status = self._serve(request, route, params, path, url.query, body)
        except GatewayError as error:
            status = self._answer_error(request, error, route)
        except ConnectionError:  # the client hung up (e.g. a health probe that timed out); nobody to answer
            request.close_connection = True
        except Exception as error:  # noqa: BLE001 - a gateway bug answers 500 rather than dropping the connection
            status = 500
            log.error("gateway failed on %s %s: %s", request.command, label, type(error).__name__)
            request.respond_json(500, error_body("gateway_error", "The local gateway failed; see its log"))
        finally:
            # Method, route template and status only: paths, queries and headers may carry personal data.
            log.info("%s %s -> %s (%d ms)", request.command, label, status, (time.monotonic() - started) * 1000)

    def _answer_error(self, request: RequestHandler, error: GatewayError, route: Route | None) -> int:
        apis = list({id(r.api): r.api for r in self.routes}.values())
        # With no route matched, only a template with a single API says whose error this is.
        api = route.api if route else (apis[0] if len(apis) == 1 else None)
        styled = api.error_response(error) if api else None
        if styled is None:
            request.respond_json(error.status, error_body(error.code, error.message), error.headers)
            return error.status
        status, headers, body = styled
        request.respond(status, headers, body)
        return status

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        parts = [part for part in path.split("/") if part]
        candidates = [(bound[0], route, bound[1]) for route in self.routes if (bound := route.bind(parts))]
        if not candidates:
            raise GatewayError(
                404, "not_found", "No route matches this path (API Gateway: Missing Authentication Token)"
            )
        best = min(rank for rank, _, _ in candidates)
        at_best = [(route, params) for rank, route, params in candidates if rank == best]
        for route, params in at_best:
            if route.method in (method, "ANY"):
                return route, params
        allowed = ", ".join(sorted({route.method for route, _ in at_best}))
        raise GatewayError(
            405, "method_not_allowed", f"{method} is not allowed on this path; allowed: {allowed}", [("Allow", allowed)]
        )

    def _serve(
        self, request: RequestHandler, route: Route, params: dict[str, str], path: str, query: str, body: bytes
    ) -> int:
        event = self.proxy_event(request, route, params, path, query, body)
        if route.authorizer is not None:
            event["requestContext"]["authorizer"] = self.authorize(route, event)
        try:
            result = route.function.invoke(event)
        except FunctionUnavailable:
            raise GatewayError(502, "function_unavailable", f"{route.function.spec.logical_id} is not loaded") from None
        except FunctionError:
            raise GatewayError(502, "internal_error", "Internal server error") from None
        status, headers, payload = _http_response(result)
        request.respond(status, headers, payload)
        return status

    # ------------------------------------------------------------------ events
    def proxy_event(
        self, request: RequestHandler, route: Route, params: dict[str, str], path: str, query: str, body: bytes
    ) -> dict:
        headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        for name, value in request.headers.items():
            headers[name] = value
            multi_headers.setdefault(name, []).append(value)
        lower = {name.lower() for name in headers}
        forwarded = {
            "X-Forwarded-For": request.client_address[0],
            "X-Forwarded-Proto": "http",
            "X-Forwarded-Port": str(request.server.server_address[1]),
        }
        for name, value in forwarded.items():
            if name.lower() not in lower:
                headers[name] = value
                multi_headers[name] = [value]
        query_single: dict[str, str] = {}
        query_multi: dict[str, list[str]] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            query_single[name] = value  # API Gateway keeps the last value
            query_multi.setdefault(name, []).append(value)
        text, encoded = self._body(route, headers, body)
        now = datetime.now(timezone.utc)
        request_id = str(uuid.uuid4())
        host = request.headers.get("Host") or f"127.0.0.1:{request.server.server_address[1]}"
        return {
            "resource": route.resource,
            "path": path,
            "httpMethod": request.command,
            "headers": headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": query_single or None,
            "multiValueQueryStringParameters": query_multi or None,
            "pathParameters": params or None,
            "stageVariables": None,
            "requestContext": {
                "accountId": self.account_id,
                "apiId": route.api.id,
                "domainName": host,
                "domainPrefix": host.split(".")[0],
                "extendedRequestId": request_id,
                "httpMethod": request.command,
                "identity": {
                    "sourceIp": request.client_address[0],
                    "userAgent": request.headers.get("User-Agent"),
                    "accessKey": None,
                    "accountId": None,
                    "apiKey": None,
                    "apiKeyId": None,
                    "caller": None,
                    "cognitoAuthenticationProvider": None,
                    "cognitoAuthenticationType": None,
                    "cognitoIdentityId": None,
                    "cognitoIdentityPoolId": None,
                    "principalOrgId": None,
                    "user": None,
                    "userArn": None,
                    "clientCert": None,
                },
                "path": f"/{route.api.stage}{path}",
                "protocol": request.request_version,
                "requestId": request_id,
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "requestTimeEpoch": int(now.timestamp() * 1000),
                "resourceId": api_id(route.resource)[:6],
                "resourcePath": route.resource,
                "stage": route.api.stage,
            },
            "body": text,
            "isBase64Encoded": encoded,
        }

    @staticmethod
    def _body(route: Route, headers: dict[str, str], body: bytes) -> tuple[str | None, bool]:
        if not body:
            return None, False
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        content_type = content_type.split(";")[0].strip()
        if any(fnmatch.fnmatch(content_type, pattern) for pattern in route.api.binary_media_types):
            return base64.b64encode(body).decode(), True
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            return base64.b64encode(body).decode(), True

    # ------------------------------------------------------------------ authorizers
    def authorize(self, route: Route, event: dict) -> dict:
        authorizer = route.authorizer
        assert authorizer is not None
        if authorizer.function is None or not authorizer.function.available:
            raise GatewayError(500, "authorizer_error", "Authorizer is not available")
        headers = {name.lower(): value for name, value in (event["headers"] or {}).items()}
        query = event["queryStringParameters"] or {}
        identity = [headers.get(name.lower()) for name in authorizer.headers]
        identity += [query.get(name) for name in authorizer.query_strings]
        if any(value in (None, "") for value in identity):
            raise GatewayError(401, "unauthorized", "Unauthorized")
        context = event["requestContext"]
        method_arn = (
            f"arn:aws:execute-api:{self.region}:{self.account_id}:{route.api.id}/{context['stage']}/"
            f"{event['httpMethod']}/{event['path'].lstrip('/')}"
        )
        key = (route.api.id, authorizer.name, tuple(identity)) if identity and authorizer.ttl > 0 else None
        policy = self._cached(key)
        if policy is None:
            policy = self._call_authorizer(authorizer, event, method_arn)
            if key is not None:
                with self._cache_lock:
                    self._cache[key] = (time.monotonic() + authorizer.ttl, policy)
        # A cached policy is evaluated against each request's ARN, as API Gateway does.
        if not _policy_allows(policy.get("policyDocument") or {}, method_arn):
            raise GatewayError(403, "forbidden", "User is not authorized to access this resource")
        out = {key: _context_value(value) for key, value in (policy.get("context") or {}).items()}
        out["principalId"] = policy.get("principalId")
        out["integrationLatency"] = 0
        return out

    def _cached(self, key: tuple | None) -> dict | None:
        if key is None:
            return None
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit and hit[0] > time.monotonic():
                return hit[1]
            self._cache.pop(key, None)
        return None

    def _call_authorizer(self, authorizer: Authorizer, event: dict, method_arn: str) -> dict:
        if authorizer.payload_type == "TOKEN":
            header = authorizer.headers[0].lower()
            token = next(v for k, v in (event["headers"] or {}).items() if k.lower() == header)
            auth_event: dict = {"type": "TOKEN", "authorizationToken": token, "methodArn": method_arn}
        else:
            auth_event = {
                "type": "REQUEST",
                "methodArn": method_arn,
                **{k: v for k, v in event.items() if k not in ("body", "isBase64Encoded")},
            }
        assert authorizer.function is not None
        try:
            result = authorizer.function.invoke(auth_event)
        except FunctionError as error:
            # The one message API Gateway reads: raising "Unauthorized" means 401.
            if error.unauthorized:
                raise GatewayError(401, "unauthorized", "Unauthorized") from None
            raise GatewayError(500, "authorizer_error", "Authorizer failed") from None
        if not isinstance(result, dict) or "principalId" not in result or "policyDocument" not in result:
            raise GatewayError(500, "authorizer_error", "Authorizer returned a malformed policy")
        if any(isinstance(v, (dict, list)) for v in (result.get("context") or {}).values()):
            raise GatewayError(500, "authorizer_error", "Authorizer context values must be scalars")
        return result


def _context_value(value: Any) -> Any:
    # REST APIs hand authorizer context to the integration as strings.
    if isinstance(value, bool):
        return str(value).lower()
    return value if value is None else str(value)


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _arn_pattern(pattern: str) -> re.Pattern:
    return re.compile("^" + re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".") + "$")


def _policy_allows(document: dict, method_arn: str) -> bool:
    allowed = denied = False
    for statement in _as_list(document.get("Statement") or []):
        actions = _as_list(statement.get("Action") or [])
        if not any(_arn_pattern(str(action)).match("execute-api:Invoke") for action in actions):
            continue
        if not any(
            _arn_pattern(str(resource)).match(method_arn) for resource in _as_list(statement.get("Resource") or [])
        ):
            continue
        if statement.get("Effect") == "Deny":
            denied = True
        elif statement.get("Effect") == "Allow":
            allowed = True
    return allowed and not denied


def _http_response(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """A Lambda proxy answer as status, headers and bytes; anything else is API Gateway's 502."""
    malformed = GatewayError(502, "bad_gateway", "Malformed Lambda proxy response")
    if not isinstance(result, dict):
        raise malformed
    try:
        status = int(result["statusCode"])
    except (KeyError, TypeError, ValueError):
        raise malformed from None
    body = result.get("body")
    if body is None:
        payload = b""
    elif not isinstance(body, str):
        raise malformed
    elif result.get("isBase64Encoded"):
        payload = base64.b64decode(body)
    else:
        payload = body.encode("utf-8")
    multi = {
        name: [str(v) for v in _as_list(values)] for name, values in (result.get("multiValueHeaders") or {}).items()
    }
    headers = [(name, value) for name, values in multi.items() for value in values]
    taken = {name.lower() for name in multi}
    headers += [
        (name, str(value)) for name, value in (result.get("headers") or {}).items() if name.lower() not in taken
    ]
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    return status, headers, payload
