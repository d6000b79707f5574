"""API Gateway REST (v1 proxy) events for benchmarks."""

from __future__ import annotations

import json
import uuid


def api_event(method: str, resource: str, path: str, *, body=None, path_parameters=None, headers=None) -> dict:
    all_headers = {"Content-Type": "application/json", "Accept": "application/json", **(headers or {})}
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/local{path}",
            "stage": "local",
            "requestId": str(uuid.uuid4()),
            "domainName": "127.0.0.1",
            "identity": {"sourceIp": "127.0.0.1"},
        },
    }
