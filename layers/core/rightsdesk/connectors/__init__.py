"""Connectors: carry a subject's request out where the data lives (DynamoDB, S3, Cognito, HTTP).

- definitions: what an operator declares per connector (typed, validated, no secrets).
- base: the interface (find, export, erase, verify), the shared run rules and the Outcome.
- access: the assumed-role session each connector acts through.
- dynamodb, s3, cognito, http: one module per kind.
- identity_graph: the order connectors run in, from the identities they need and yield.
- receipts: the signed, hash-chained record of what a run touched.

`build` turns a definition into a connector for one request. Heavy imports (boto3) stay inside
the kind modules, which are imported only when a connector of that kind is built.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_KIND_CLASSES = {
    "dynamodb": ("rightsdesk.connectors.dynamodb", "DynamoDbConnector"),
    "s3": ("rightsdesk.connectors.s3", "S3Connector"),
    "cognito": ("rightsdesk.connectors.cognito", "CognitoConnector"),
    "http": ("rightsdesk.connectors.http", "HttpConnector"),
}


def build(definition: Any, request_id: str, *, session_factory: Any = None, **options: Any) -> Any:
    """The connector for `definition`, acting for `request_id`.

    AWS kinds act through `session_factory(definition, request_id)` (default: assume the
    definition's role, rightsdesk.connectors.access); `options` go to the kind's class (the HTTP
    kind's secret resolver, say)."""
    module_name, class_name = _KIND_CLASSES[definition.kind]
    connector_class = getattr(import_module(module_name), class_name)
    if definition.kind == "http":
        return connector_class(definition, request_id=request_id, **options)
    if session_factory is None:
        from rightsdesk.connectors.access import assumed_role_session

        session_factory = assumed_role_session
    connector = connector_class(definition, session_factory(definition, request_id), **options)
    connector.request_id = request_id  # records kept for a legal basis are scheduled under it
    return connector
