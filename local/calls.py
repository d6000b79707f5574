"""Which AWS calls each function makes, for tests that hold the template's IAM statements to them.

With RIGHTSDESK_LOCAL_RECORD_CALLS=<file>, every call a handler makes through botocore (boto3's,
pynamodb's, powertools' clients) is appended to <file> as one JSON line: the function (logical ID,
from local.faults.running), the service, the IAM action, the resource's name and, for DynamoDB, the
index; for a KMS Encrypt or Decrypt the `rightsdesk:purpose` of its encryption context. A
transaction is recorded as the action of each of its items, as IAM authorizes it. Every row also
names its API call: `operation` (TransactWriteItems for each of a transaction's rows) and `call`,
an id shared by the rows of one call and unique across processes, so counting distinct `call`s
counts API calls (bench/aws_calls.py). Names only: never a key, an item or a message.

Every container (local/zygote.py) appends to the same file: each call's rows go in one write to a
descriptor opened with O_APPEND, so rows from concurrent processes never interleave.
"""

from __future__ import annotations

import itertools
import json
import os
from typing import Any

from local import faults

_installed: str | None = None
_call_numbers = itertools.count(1)

_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


def _rows(service: str, operation: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    if service == "dynamodb" and operation in ("TransactWriteItems", "TransactGetItems"):
        return [
            {"action": _TRANSACT_ACTIONS[kind], "resource": body.get("TableName")}
            for item in params.get("TransactItems") or []
            for kind, body in item.items()
        ]
    if service == "dynamodb" and operation in ("BatchWriteItem", "BatchGetItem"):
        return [{"action": operation, "resource": table} for table in params.get("RequestItems") or {}]
    if service == "dynamodb":
        return [{"action": operation, "resource": params.get("TableName"), "index": params.get("IndexName")}]
    if service == "kms":
        context = params.get("EncryptionContext") or {}
        return [{"action": operation, "resource": params.get("KeyId"), "purpose": context.get("rightsdesk:purpose")}]
    return [{"action": operation, "resource": params.get("QueueUrl") or params.get("SecretId")}]


def install(path: str) -> None:
    """Record every handler's AWS calls to `path` from now on (once per process)."""
    global _installed
    if _installed:
        return
    from botocore.client import BaseClient

    make_api_call = BaseClient._make_api_call

    def _make_api_call(self, operation_name, api_params):
        function = faults.current_function()
        if function is not None:
            service = self.meta.service_model.service_name
            call = f"{os.getpid()}-{next(_call_numbers)}"
            lines = "".join(
                json.dumps({"function": function, "service": service, "operation": operation_name, "call": call, **row})
                + "\n"
                for row in _rows(service, operation_name, api_params)
            )
            out = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(out, lines.encode("utf-8"))
            finally:
                os.close(out)
        return make_api_call(self, operation_name, api_params)

    BaseClient._make_api_call = _make_api_call
    _installed = path
