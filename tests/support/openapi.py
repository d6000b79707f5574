"""The API's OpenAPI documents, built from the handler modules as their routes serve them
(scripts/openapi_documents.py imports each in a child process, so its module-level settings do not
leak into the tests' own process), and checks of answers against them.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator

from scripts.openapi_documents import generate


@lru_cache(maxsize=1)
def controller_openapi() -> dict:
    return generate("controller_api")


@lru_cache(maxsize=1)
def public_openapi() -> dict:
    return generate("public_api")


@lru_cache(maxsize=1)
def callback_openapi() -> dict:
    return generate("connector_callback")


def resolved(document: dict, schema: Any) -> Any:
    """`schema` with the document's `#/components/schemas/...` references inlined."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            return resolved(document, document["components"]["schemas"][ref.rsplit("/", 1)[1]])
        return {key: resolved(document, value) for key, value in schema.items()}
    if isinstance(schema, list):
        return [resolved(document, value) for value in schema]
    return schema


def closed(schema: Any) -> Any:
    """`schema` with every object that names its properties closed to others: a key the code sends
    and the document does not name fails, where the published schema lets receivers ignore it."""
    if isinstance(schema, list):
        return [closed(value) for value in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: closed(value) for key, value in schema.items()}
    if "properties" in result and "additionalProperties" not in result:
        result["additionalProperties"] = False
    return result


def _operation(document: dict, method: str, path: str) -> tuple[str, dict]:
    """The operation (by its template) that answers a concrete path, e.g. /v1/requests/dsr_1."""
    for template, item in document["paths"].items():
        pattern = "^" + re.sub(r"\\{[^/]+\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in item:
            return template, item[method.lower()]
    raise AssertionError(f"{method} {path} is not in the document")


def answer_problems(
    document: dict, method: str, path: str, status: int, body: Any, *, strict: bool = True
) -> list[str]:
    """Why a JSON answer does not match what the document says `method path` answers with `status`
    (empty: it matches). `strict` closes every documented object (closed())."""
    template, operation = _operation(document, method, path.split("?", 1)[0])
    answers = operation["responses"]
    documented = answers.get(str(status)) or answers.get(f"{str(status)[0]}XX") or answers.get("default")
    if documented is None:
        return [f"{method} {template}: status {status} is not documented"]
    schema = ((documented.get("content") or {}).get("application/json") or {}).get("schema")
    if schema is None:
        return [f"{method} {template} {status}: no JSON schema documented"]
    schema = resolved(document, schema)
    validator = Draft202012Validator(closed(schema) if strict else schema)
    problems = [
        f"{method} {template} {status}: {error.json_path}: {error.message}" for error in validator.iter_errors(body)
    ]
    return problems + _unnamed_code(documented.get("description") or "", body, f"{method} {template} {status}")


def _unnamed_code(description: str, body: Any, where: str) -> list[str]:
    """An error whose documented answer names its codes (`Codes: ...`) must carry one of them."""
    code = (body.get("error") or {}).get("code") if isinstance(body, dict) else None
    if not isinstance(code, str) or "Codes: " not in description or f"`{code}`" in description:
        return []
    return [f"{where}: code {code!r} is not among the codes documented ({description})"]


def check_every_answer(session, base_url: str, *documents: dict) -> None:
    """Make `session` (requests) hold every JSON answer to a documented operation to the document:
    a status it does not document, or a body its schema (closed) refuses, fails the test that made
    the call. Answers to paths no document has (the dev routes, the documents themselves) pass."""
    from urllib.parse import urlsplit

    prefix = urlsplit(base_url).path.rstrip("/")

    def hook(response, *args, **kwargs):
        if not response.headers.get("content-type", "").startswith("application/json"):
            return
        method, path = response.request.method, urlsplit(response.request.url).path.removeprefix(prefix)
        for document in documents:
            try:
                _operation(document, method, path)
            except AssertionError:
                continue
            problems = answer_problems(document, method, path, response.status_code, response.json())
            assert not problems, "the answer is not what the OpenAPI document says:\n" + "\n".join(problems)
            return

    session.hooks["response"].append(hook)


def event_problems(event: bytes | dict) -> list[str]:
    """Why a webhook body does not match its type's schema in the event catalog, closed (a key the
    code sends and the schema does not name fails); empty when it matches."""
    import json

    from rightsdesk.outbound import event_catalog

    event = json.loads(event) if isinstance(event, bytes) else event
    if event.get("type") not in event_catalog.BY_NAME:
        return [f"{event.get('type')!r} is not in the event catalog"]
    schema = closed(event_catalog.envelope_schema(event["type"]))
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return [f"{event['type']} {error.json_path}: {error.message}" for error in validator.iter_errors(event)]
