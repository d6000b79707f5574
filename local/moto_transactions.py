"""moto's TransactWriteItems without its whole-table copies.

Before writing, moto backs up every table a transaction touches with copy.deepcopy: all items, the
indexes and the table's whole stream history. A transaction then costs time in proportion to all
that was ever written: after a few hundred requests one verification took seconds, and the
2,000-request load run (`make load`) would have taken hours.

DynamoDB requests take turns in the local run (cloud._OneDynamoDBRequestAtATime), so nothing can
change between checking and writing: every condition is checked first, like DynamoDB answers a
transaction, and the writes are made only if all hold. Only the few items touched are copied, for
the one case in which moto may still fail midway (an update expression it rejects).
"""

from __future__ import annotations

import copy
from typing import Any

_OPERATIONS = {"ConditionCheck", "Put", "Delete", "Update"}


def install() -> None:
    from moto.dynamodb import models

    if getattr(models.DynamoDBBackend, "_checks_before_writing", False):
        return
    models.DynamoDBBackend.transact_write_items = transact_write_items
    models.DynamoDBBackend._checks_before_writing = True


def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    planned, touched, reasons = [], set(), []
    for entry in transact_items:
        if len(entry) > 1:
            raise TransactWriteSingleOpException
        kind, op = next(iter(entry.items()))
        if kind not in _OPERATIONS:
            reasons.append(("ValidationException", "Unsupported transaction operation", None))
            continue
        table_name = op["TableName"]
        key = _key(self.get_table(table_name), op["Item"]) if kind == "Put" else op["Key"]
        unique = (str(table_name), str(dict(sorted(key.items()))))
        if unique in touched:
            raise MultipleTransactionsException()
        touched.add(unique)
        current = self.get_item(table_name, key)
        condition = op.get("ConditionExpression")
        holds = condition is None or get_filter_expression(
            condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
        ).expr(current)
        if holds:
            reasons.append((None, None, None))
        else:
            old = current.to_json()["Attributes"] if current and op.get(
                "ReturnValuesOnConditionCheckFailure") == "ALL_OLD" else None
            reasons.append(("ConditionalCheckFailed", "The conditional request failed", old))
        planned.append((kind, op, table_name, key, copy.deepcopy(current)))
    if any(code is not None for code, _, _ in reasons):
        raise TransactionCanceledException(reasons)

    written: list[tuple[str, dict, Any]] = []
    try:
        for kind, op, table_name, key, before in planned:
            _write(self, kind, op, table_name, key)
            written.append((table_name, key, before))
    except Exception:
        for table_name, key, before in reversed(written):
            if before is None:
                self.delete_item(table_name, key)
            else:
                self.put_item(table_name, before.to_json()["Attributes"])
        raise


def _key(table: Any, attributes: dict[str, Any]) -> dict[str, Any]:
    key = {table.hash_key_attr: attributes[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attributes[table.range_key_attr]
    return key


def _write(self: Any, kind: str, op: dict[str, Any], table_name: str, key: dict[str, Any]) -> None:
    # The condition goes along again (it holds): moto checks every expression name is used.
    expressions = {
        "condition_expression": op.get("ConditionExpression"),
        "expression_attribute_names": op.get("ExpressionAttributeNames"),
        "expression_attribute_values": op.get("ExpressionAttributeValues"),
    }
    if kind == "Put":
        self.put_item(table_name, op["Item"], **expressions)
    elif kind == "Delete":
        self.delete_item(table_name, key, **expressions)
    elif kind == "Update":
        self.update_item(table_name, key, update_expression=op["UpdateExpression"], **expressions)
