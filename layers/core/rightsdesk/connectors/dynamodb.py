"""DynamoDB table connector: the subject's items by key or GSI query, erased by conditional writes.

Find queries the table's partition key or a GSI's (`lookup`), page by page; a scan only where the
definition allows it, and it fails past `scan_item_cap` items read rather than read a large table.
A GSI answers eventually consistently and may project few attributes, so each item a GSI query
names is read again from the table (GetItem, strongly consistent) and kept only if it still holds
the identity: reads follow the subject's items, not the table's size.

Erase deletes each item, or removes or overwrites the named attributes, always on the condition
that the item still holds the identity: an item that changed hands meanwhile is left alone (counted),
an item already gone is counted as such, so a second erase is harmless.

Rectify sets the declared `rectifiable` attributes on each item, on the same condition, and only
where a value differs (`#a <> :v OR attribute_not_exists(#a)` as part of the condition): an item
that already holds the corrected values is counted unchanged and not written again.

A tenant-scoped table (definition `tenant_scoped`) is read and written only within the seed
`tenant_id`: either the lookup key holds it (`value_format` "T#{tenant_id}#U#{value}") or the
definition's `tenant_filter` names the attribute that must hold it, which is then a filter on
every query or scan, a check on every item read back and a condition on every erase write.
Without a tenant id such a connector finds nothing.
"""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

from rightsdesk.connectors.base import (
    Check,
    Connector,
    ConnectorFailure,
    Erased,
    Found,
    Identities,
    Located,
    Rectified,
    checked,
    key_hash,
    probe_value,
)
from rightsdesk.connectors.definitions import TENANT_IDENTITY, DynamoDbDefinition

_CONDITION_FAILED = "ConditionalCheckFailedException"


def _plain(value: Any) -> Any:
    """A deserialized DynamoDB value as JSON-able data."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    if hasattr(value, "value") and isinstance(value.value, (bytes, bytearray)):  # boto3 Binary
        return base64.b64encode(bytes(value.value)).decode()
    if isinstance(value, (set, frozenset)):
        return sorted((_plain(v) for v in value), key=str)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class DynamoDbConnector(Connector):
    kind = "dynamodb"
    definition: DynamoDbDefinition

    def __init__(self, definition: DynamoDbDefinition, session: Any):
        super().__init__(definition, session)
        self.client = session.client("dynamodb")
        from boto3.dynamodb.types import TypeDeserializer

        self._deserializer = TypeDeserializer()

    # ------------------------------------------------------------------ helpers

    def _value(self, identities: Identities) -> dict[str, str] | None:
        lookup = self.definition.lookup
        identity = identities.get(lookup.identity)
        if identity is None or identity == "":
            return None
        if self.definition.tenant_scoped:
            tenant = identities.get(TENANT_IDENTITY)
            if not tenant:
                return None  # no tenant, no lookup: a tenant-scoped store is never read across tenants
            return {lookup.value_type: lookup.value_format.format(value=identity, tenant_id=tenant)}
        return {lookup.value_type: lookup.value_format.format(value=identity)}

    def _tenant(self, identities: Identities) -> dict[str, str] | None:
        """The tenant filter's attribute value, or None where the definition has no filter."""
        tenant_filter = self.definition.tenant_filter
        if tenant_filter is None:
            return None
        return {"S": tenant_filter.value_format.format(tenant_id=identities[TENANT_IDENTITY])}

    def _conditions(self, identities: Identities, value: dict[str, str]) -> tuple[str, dict[str, str], dict[str, Any]]:
        """(the condition an item of the subject's meets, its names, its values): the identity,
        and the tenant where a filter names it."""
        names = {"#lookup": self.definition.lookup.attribute}
        values: dict[str, Any] = {":value": value}
        expression = "#lookup = :value"
        tenant = self._tenant(identities)
        if tenant is not None:
            names["#tenant"] = self.definition.tenant_filter.attribute  # type: ignore[union-attr]
            values[":tenant"] = tenant
            expression += " AND #tenant = :tenant"
        return expression, names, values

    def _key_of(self, item: dict[str, Any]) -> dict[str, Any]:
        names = [self.definition.partition_key] + ([self.definition.sort_key] if self.definition.sort_key else [])
        return {name: item[name] for name in names}

    def _located(self, item: dict[str, Any]) -> Located:
        key = self._key_of(item)
        data = {name: _plain(self._deserializer.deserialize(value)) for name, value in item.items()}
        canonical = json.dumps({k: _plain(self._deserializer.deserialize(v)) for k, v in key.items()}, sort_keys=True)
        return Located(key=canonical, handle=key, data=data)

    def _still_holds(self, item: dict[str, Any] | None, value: dict[str, str], tenant: dict[str, str] | None) -> bool:
        if not item or item.get(self.definition.lookup.attribute) != value:
            return False
        return tenant is None or item.get(self.definition.tenant_filter.attribute) == tenant  # type: ignore[union-attr]

    def _items(self, value: dict[str, str], identities: Identities) -> list[dict[str, Any]]:
        lookup = self.definition.lookup
        _, names, values = self._conditions(identities, value)
        tenant = values.get(":tenant")
        if lookup.index_name is None and lookup.allow_scan and lookup.attribute != self.definition.partition_key:
            return self._scan(names, values)
        parameters: dict[str, Any] = {
            "TableName": self.definition.table_name,
            "KeyConditionExpression": "#lookup = :value",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if tenant is not None and not lookup.index_name:
            # On the table, a filter; an index may not project the tenant (KEYS_ONLY): every item it
            # names is read back from the table and checked there (_confirmed).
            parameters["FilterExpression"] = "#tenant = :tenant"
        else:
            names.pop("#tenant", None)
            parameters["ExpressionAttributeValues"] = {":value": value}
        if lookup.index_name:
            parameters["IndexName"] = lookup.index_name
        else:
            parameters["ConsistentRead"] = True
        items: list[dict[str, Any]] = []
        for page in self.client.get_paginator("query").paginate(**parameters):
            items.extend(page.get("Items", []))
            if len(items) > self.definition.ceiling and lookup.index_name is None:
                break  # already over the ceiling: the count parks the request, reading on proves nothing
        if lookup.index_name:
            # Another tenant's items under the same identity are dropped before the ceiling counts.
            named = items if tenant is not None else items[: self.definition.ceiling + 1]
            items = self._confirmed(named, value, tenant)[: self.definition.ceiling + 1]
        return items

    def _confirmed(
        self, index_items: list[dict[str, Any]], value: dict[str, str], tenant: dict[str, str] | None
    ) -> list[dict[str, Any]]:
        """Each item a GSI named, read from the table and kept if it still holds the identity
        (and the tenant: a KEYS_ONLY index cannot filter on it)."""
        confirmed = []
        for index_item in index_items:
            answer = self.client.get_item(
                TableName=self.definition.table_name, Key=self._key_of(index_item), ConsistentRead=True
            )
            if self._still_holds(answer.get("Item"), value, tenant):
                confirmed.append(answer["Item"])
        return confirmed

    def _scan(self, names: dict[str, str], values: dict[str, Any]) -> list[dict[str, Any]]:
        cap = self.definition.scan_item_cap
        items: list[dict[str, Any]] = []
        scanned = 0
        paginator = self.client.get_paginator("scan")
        pages = paginator.paginate(
            TableName=self.definition.table_name,
            FilterExpression="#lookup = :value" + (" AND #tenant = :tenant" if ":tenant" in values else ""),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ConsistentRead=True,
            PaginationConfig={"PageSize": min(cap + 1, 1000)},
        )
        for page in pages:
            scanned += page.get("ScannedCount", 0)
            if scanned > cap:
                raise ConnectorFailure("scan_cap_exceeded")
            items.extend(page.get("Items", []))
        return items

    # ------------------------------------------------------------------ the interface

    def find(self, identities: Identities) -> Found:
        value = self._value(identities)
        if value is None:
            return Found(self.id, dict(identities))
        records = [self._located(item) for item in self._items(value, identities)]
        if self.definition.erase.mode != "delete_item":
            # An item whose named attributes are already erased holds nothing more of the subject's.
            records = [record for record in records if self._held_data(record)]
        return self._found(identities, records)

    def export(self, found: Found) -> list[dict[str, Any]]:
        wanted = self.definition.export_attributes
        records = []
        for record in found.records:
            data = dict(record.data or {})
            records.append({name: data[name] for name in wanted if name in data} if wanted is not None else data)
        return records

    def erase(self, found: Found) -> Erased:
        value = self._value(found.identities)
        if value is None:
            return Erased()
        erase = self.definition.erase
        expression, names, values = self._conditions(found.identities, value)
        condition = {"ConditionExpression": expression, "ExpressionAttributeNames": names}
        erased = gone = changed = 0
        touched = []
        for record in found.records:
            touched.append(key_hash(self.id, record.key))
            try:
                if erase.mode == "delete_item":
                    self.client.delete_item(
                        TableName=self.definition.table_name,
                        Key=record.handle,
                        ExpressionAttributeValues=values,
                        **condition,
                    )
                else:
                    attribute_names = {f"#e{i}": name for i, name in enumerate(erase.attributes)}
                    if erase.mode == "remove_attributes":
                        update = "REMOVE " + ", ".join(attribute_names)
                        update_values = values
                    else:
                        update = "SET " + ", ".join(f"{alias} = :overwrite" for alias in attribute_names)
                        update_values = {**values, ":overwrite": {"S": erase.overwrite_value}}
                    self.client.update_item(
                        TableName=self.definition.table_name,
                        Key=record.handle,
                        UpdateExpression=update,
                        ConditionExpression=condition["ConditionExpression"],
                        ExpressionAttributeNames={**names, **attribute_names},
                        ExpressionAttributeValues=update_values,
                    )
            except self.client.exceptions.ConditionalCheckFailedException:
                still = self.client.get_item(
                    TableName=self.definition.table_name, Key=record.handle, ConsistentRead=True
                ).get("Item")
                if still is None:
                    gone += 1
                else:
                    changed += 1  # it no longer holds this identity: someone else's now
                continue
            erased += 1
        return Erased(erased=erased, already_gone=gone, changed_hands=changed, touched=tuple(touched))

    def find_to_rectify(self, identities: Identities) -> Found:
        """Every item of the subject's, whether or not its erasable attributes are still there."""
        value = self._value(identities)
        if value is None:
            return Found(self.id, dict(identities))
        return self._found(identities, [self._located(item) for item in self._items(value, identities)])

    def rectify(self, found: Found, changes: Any) -> Rectified:
        value = self._value(found.identities)
        if value is None or not changes:
            return Rectified()
        expression, names, values = self._conditions(found.identities, value)
        aliases = {f"#r{i}": name for i, name in enumerate(changes)}
        new_values = {f":r{i}": {"S": str(changes[name])} for i, name in enumerate(changes)}
        differs = " OR ".join(f"attribute_not_exists({a}) OR {a} <> :r{i}" for i, a in enumerate(aliases))
        rectified = unchanged = gone = changed = 0
        touched = []
        for record in found.records:
            touched.append(key_hash(self.id, record.key))
            data = record.data or {}
            if all(data.get(name) == changes[name] for name in changes):
                unchanged += 1
                continue
            try:
                self.client.update_item(
                    TableName=self.definition.table_name,
                    Key=record.handle,
                    UpdateExpression="SET " + ", ".join(f"{a} = :r{i}" for i, a in enumerate(aliases)),
                    ConditionExpression=f"{expression} AND ({differs})",
                    ExpressionAttributeNames={**names, **aliases},
                    ExpressionAttributeValues={**values, **new_values},
                )
            except self.client.exceptions.ConditionalCheckFailedException:
                still = self.client.get_item(
                    TableName=self.definition.table_name, Key=record.handle, ConsistentRead=True
                ).get("Item")
                if still is None:
                    gone += 1
                elif self._still_holds(still, value, values.get(":tenant")):
                    unchanged += 1  # the values were set meanwhile (a concurrent or earlier run)
                else:
                    changed += 1  # no longer this subject's: left alone
                continue
            rectified += 1
        return Rectified(
            rectified=rectified, unchanged=unchanged, already_gone=gone, changed_hands=changed, touched=tuple(touched)
        )

    def kept_by(self, record: Located, identities: Identities) -> int | None:
        """The index of the first keep rule (legal exception) the item meets, or None."""
        for index, rule in enumerate(self.definition.keep):
            if rule.match.matches(dict(record.data or {})):
                return index
        return None

    def _held_data(self, record: Located) -> bool:
        """For an attribute erasure: did the item still hold something to erase when found?"""
        erase = self.definition.erase
        data = record.data or {}
        if erase.mode == "remove_attributes":
            return any(name in data for name in erase.attributes)
        return any(name in data and data[name] != erase.overwrite_value for name in erase.attributes)

    def probe(self) -> list[Check]:
        """The lookup (a query or a capped scan for a value nobody has) and the erase write, made
        conditional on an item that does not exist (ConditionalCheckFailed proves the permission)."""
        value = probe_value()
        sentinel = {name: {"S": value} for name in (self.definition.partition_key, self.definition.sort_key) if name}
        lookup = self.definition.lookup
        reading = (
            "dynamodb:Scan"
            if lookup.allow_scan and lookup.attribute != self.definition.partition_key
            else "dynamodb:Query"
        )
        # A tenant-scoped table is read only with a tenant: the probe names one nobody has too.
        nobody = {lookup.identity: value, **({TENANT_IDENTITY: value} if self.definition.tenant_scoped else {})}
        checks = [checked(reading, lambda: self.find(nobody))]
        condition = {
            "ConditionExpression": "attribute_exists(#key)",
            "ExpressionAttributeNames": {"#key": self.definition.partition_key},
        }
        table = self.definition.table_name
        checks.append(checked("dynamodb:GetItem", lambda: self.client.get_item(TableName=table, Key=sentinel)))
        if self.definition.erase.mode == "delete_item":
            write = ("dynamodb:DeleteItem", lambda: self.client.delete_item(TableName=table, Key=sentinel, **condition))
        else:
            write = (
                "dynamodb:UpdateItem",
                lambda: self.client.update_item(
                    TableName=table,
                    Key=sentinel,
                    UpdateExpression="REMOVE #probe",
                    ConditionExpression=condition["ConditionExpression"],
                    ExpressionAttributeNames={
                        **condition["ExpressionAttributeNames"],
                        "#probe": self.definition.erase.attributes[0],
                    },
                ),
            )
        checks.append(checked(write[0], write[1], "ConditionalCheckFailedException"))
        if self.definition.rectifiable and write[0] != "dynamodb:UpdateItem":
            # a correction is an UpdateItem, whatever the erase mode
            attribute = next(iter(self.definition.rectifiable.values()))
            checks.append(
                checked(
                    "dynamodb:UpdateItem",
                    lambda: self.client.update_item(
                        TableName=table,
                        Key=sentinel,
                        UpdateExpression="REMOVE #probe",
                        ConditionExpression=condition["ConditionExpression"],
                        ExpressionAttributeNames={**condition["ExpressionAttributeNames"], "#probe": attribute},
                    ),
                    "ConditionalCheckFailedException",
                )
            )
        return checks
