"""Stored connectors against moto in-process: a new one runs dry, ids are unique, the identity graph
over every stored connector stays valid through add, enable and remove, every change names the
operator on its audit event, a removed one is gone, and `probe` proves access through the role."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import boto3
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from rightsdesk.connectors import identity_graph, registry
from rightsdesk.connectors.definitions import DefinitionError
from rightsdesk.kernel.errors import Conflict, NotFound
from rightsdesk.platform import config, operator_identity
from rightsdesk.store.items.connectors import ConnectorItem
from tests.support.aws import moto_cloud
from tests.support.denied import deny

REGION = "eu-central-1"
ACCOUNT = "123456789012"


def role(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/rightsdesk-connector-{name}"


def pool(cid: str, **extra) -> dict:
    return {
        "kind": "cognito",
        "id": cid,
        "role_arn": role(cid),
        "user_pool_id": "eu-central-1_AbCdEf123",
        "yields": {"cognito_sub": "sub", "user_id": "custom:user_id"},
        **extra,
    }


def users_table(cid: str, needs: str = "user_id", yields: dict | None = None, table: str = "Users") -> dict:
    return {
        "kind": "dynamodb",
        "id": cid,
        "role_arn": role(cid),
        "table_name": table,
        "partition_key": "pk",
        "lookup": {"identity": needs, "attribute": "owner", "index_name": "by-owner"},
        "yields": yields or {},
    }


@pytest.fixture(scope="module")
def cloud():
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        world = moto_cloud(patch, "rightsdesk-connreg", region=REGION, no_scans="the registry must not scan")
        yield world
    config.reload()


@pytest.fixture
def operator():
    return operator_identity.local("connector-tester")


@pytest.fixture
def clean(cloud, operator):
    """Each test starts with no stored connectors (the set is shared by the table)."""
    for stored in sorted(registry.list_connectors(), key=lambda s: -len(s.definition.needs - {"email"})):
        registry.remove(stored.connector_id, actor=operator)
    yield
    for _ in range(3):  # dependents first: retry until what remains can go
        for stored in registry.list_connectors():
            try:
                registry.remove(stored.connector_id, actor=operator)
            except Conflict:
                pass


def audit_events(cloud, connector_id: str) -> list[dict]:
    page = cloud.session.client("dynamodb").query(
        TableName=cloud.tables["RightsTable"],
        KeyConditionExpression="pk = :pk AND begins_with(sk, :audit)",
        ExpressionAttributeValues={":pk": {"S": ConnectorItem.key(connector_id)}, ":audit": {"S": "AUDIT#"}},
    )
    return page["Items"]


def test_a_new_connector_is_stored_disabled_and_runs_dry(clean, operator):
    stored = registry.add(pool("pool-a"), actor=operator)
    assert stored.state == registry.DISABLED
    assert stored.definition.dry and not stored.definition.enabled
    assert "enabled" not in stored.document  # the state says it once
    assert [s.connector_id for s in registry.list_connectors()] == ["pool-a"]


def test_a_definition_asking_to_be_enabled_at_once_is_refused(clean, operator):
    with pytest.raises(DefinitionError) as refused:
        registry.add(pool("pool-b", enabled=True), actor=operator)
    assert "enabled" in refused.value.fields
    assert registry.list_connectors() == []


def test_a_duplicate_id_is_refused_and_the_first_stays(clean, operator):
    registry.add(pool("pool-c"), actor=operator)
    with pytest.raises(Conflict) as refused:
        registry.add(pool("pool-c", description="another"), actor=operator)
    assert refused.value.code == "connector_exists"
    assert registry.get("pool-c").document["description"] == ""


def test_an_invalid_definition_names_the_field_and_stores_nothing(clean, operator):
    with pytest.raises(DefinitionError) as refused:
        registry.add({**pool("pool-d"), "role_arn": "arn:aws:iam::123456789012:role/admin"}, actor=operator)
    assert "role_arn" in refused.value.fields
    assert registry.list_connectors() == []


@pytest.mark.parametrize(
    ("documents", "reason"),
    [
        # nobody yields account_id
        ([users_table("orders", needs="account_id")], "orders.needs"),
        # users: cognito_sub -> account_id (valid alone); accounts: account_id -> cognito_sub closes a cycle
        (
            [
                users_table("users", needs="cognito_sub", yields={"account_id": "account"}),
                users_table("accounts", needs="account_id", yields={"cognito_sub": "sub"}, table="Accounts"),
            ],
            "cycle",
        ),
    ],
    ids=["unsatisfiable", "cyclic"],
)
def test_an_add_that_breaks_the_identity_graph_is_refused_with_the_reason(clean, operator, documents, reason):
    registry.add(pool("pool-e", yields={"cognito_sub": "sub"}), actor=operator)
    before = {s.connector_id for s in registry.list_connectors()}
    with pytest.raises(DefinitionError) as refused:
        for document in documents:
            registry.add(document, actor=operator)
    assert reason in refused.value.fields
    # only the definitions added before the refused one are stored
    assert {s.connector_id for s in registry.list_connectors()} - before == {d["id"] for d in documents[:-1]}


def test_the_graph_is_checked_over_all_stored_connectors_in_order(clean, operator):
    registry.add(pool("pool-f"), actor=operator)  # yields cognito_sub and user_id
    registry.add(users_table("users-f", yields={"account_id": "account"}), actor=operator)
    registry.add(users_table("orders-f", needs="account_id", table="Orders"), actor=operator)
    assert registry.plan().stages == (("pool-f",), ("users-f",), ("orders-f",))


def test_enable_and_disable_change_the_state_with_operator_audit_events(cloud, clean, operator):
    registry.add(pool("pool-g"), actor=operator)
    assert registry.enable("pool-g", actor=operator).definition.enabled
    with pytest.raises(Conflict):
        registry.enable("pool-g", actor=operator)
    assert registry.disable("pool-g", actor=operator).definition.dry
    events = sorted(audit_events(cloud, "pool-g"), key=lambda e: e["sk"]["S"])
    assert [e["action"]["S"] for e in events] == ["connector_added", "connector_enabled", "connector_disabled"]
    for event in events:
        assert event["actor"]["S"] == "operator"
        assert event["operator"]["M"]["principal"]["S"] == "local:connector-tester"
    assert [(e.get("from_status", {}).get("S"), e["to_status"]["S"]) for e in events] == [
        (None, "disabled"),
        ("disabled", "enabled"),
        ("enabled", "disabled"),
    ]


def test_enable_rechecks_the_graph_over_all_stored_connectors(cloud, clean, operator):
    registry.add(pool("pool-h"), actor=operator)
    registry.add(users_table("users-h"), actor=operator)
    # The yielding connector's stored definition changed under us (an older release stored it):
    cloud.session.client("dynamodb").update_item(
        TableName=cloud.tables["RightsTable"],
        Key={"pk": {"S": ConnectorItem.key("pool-h")}, "sk": {"S": "CONNECTOR"}},
        UpdateExpression="SET #d = :d",
        ExpressionAttributeNames={"#d": "definition"},
        ExpressionAttributeValues={":d": {"S": json.dumps(pool("pool-h", yields={"cognito_sub": "sub"}))}},
    )
    with pytest.raises(DefinitionError) as refused:
        registry.enable("users-h", actor=operator)
    assert "users-h.needs" in refused.value.fields
    assert registry.get("users-h").state == registry.DISABLED


def test_remove_is_final_and_audited_and_the_id_is_free_again(cloud, clean, operator):
    registry.add(pool("pool-i"), actor=operator)
    registry.enable("pool-i", actor=operator)
    registry.remove("pool-i", actor=operator)
    with pytest.raises(NotFound):
        registry.get("pool-i")
    assert registry.list_connectors() == []
    for change in (registry.enable, registry.disable, registry.remove):
        with pytest.raises(NotFound):
            change("pool-i", actor=operator)
    removed = [e for e in audit_events(cloud, "pool-i") if e["action"]["S"] == "connector_removed"]
    assert len(removed) == 1 and removed[0]["operator"]["M"]["principal"]["S"] == "local:connector-tester"
    assert registry.add(pool("pool-i"), actor=operator).state == registry.DISABLED


def test_a_connector_another_one_needs_cannot_be_removed(clean, operator):
    registry.add(pool("pool-j"), actor=operator)
    registry.add(users_table("users-j"), actor=operator)
    with pytest.raises(Conflict) as refused:
        registry.remove("pool-j", actor=operator)
    assert refused.value.code == "connector_needed" and "users-j" in refused.value.message
    registry.remove("users-j", actor=operator)
    registry.remove("pool-j", actor=operator)


def test_a_change_raced_by_another_operator_is_refused(clean, operator, monkeypatch):
    registry.add(pool("pool-k"), actor=operator)
    read_set = registry._set
    raced = []

    def stale_set():
        current = read_set()
        if not raced:  # another operator adds one between this read and the write
            raced.append(True)
            monkeypatch.setattr(registry, "_set", read_set)
            registry.add(users_table("users-k"), actor=operator)
            monkeypatch.setattr(registry, "_set", stale_set)
        return current

    monkeypatch.setattr(registry, "_set", stale_set)
    with pytest.raises(Conflict) as refused:
        registry.add(users_table("orders-k", table="Orders"), actor=operator)
    assert refused.value.code == "connector_conflict"
    monkeypatch.undo()
    assert {s.connector_id for s in registry.list_connectors()} == {"pool-k", "users-k"}


# ------------------------------------------------------------------ probe


@pytest.fixture
def users_store(cloud):
    client = boto3.client("dynamodb", region_name=REGION)
    if "Users" not in client.list_tables()["TableNames"]:
        client.create_table(
            TableName="Users",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "owner", "AttributeType": "S"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by-owner",
                    "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    client.put_item(TableName="Users", Item={"pk": {"S": "USER#1"}, "owner": {"S": "u-1"}})
    return client


def test_probe_assumes_the_role_and_proves_each_permission_without_changing_data(clean, operator, users_store):
    registry.add(pool("pool-p"), actor=operator)
    registry.add(users_table("users-p"), actor=operator)
    before = users_store.scan(TableName="Users")["Items"]
    report = registry.probe("users-p")
    assert report.ok, report.to_dict()
    assert [c.operation for c in report.checks] == [
        "sts:AssumeRole",
        "dynamodb:Query",
        "dynamodb:GetItem",
        "dynamodb:DeleteItem",
    ]
    assert users_store.scan(TableName="Users")["Items"] == before


def test_probe_reports_a_role_that_cannot_be_assumed_and_stops(clean, operator):
    registry.add(pool("pool-q"), actor=operator)

    def refusing(definition, request_id):
        sts = boto3.client("sts", region_name=REGION)
        deny(sts, "AssumeRole")
        from rightsdesk.connectors.access import assumed_role_session

        return assumed_role_session(definition, request_id, sts_client=sts)

    report = registry.probe("pool-q", session_factory=refusing)
    assert not report.ok
    assert [(c.operation, c.result, c.code) for c in report.checks] == [
        ("sts:AssumeRole", "denied", "AccessDeniedException")
    ]


def test_probe_names_a_permission_the_role_lacks(clean, operator, users_store):
    registry.add(pool("pool-r"), actor=operator)
    registry.add(users_table("users-r"), actor=operator)

    def lacking_delete(definition, request_id):
        from rightsdesk.connectors.access import assumed_role_session

        session = assumed_role_session(definition, request_id)
        real_client = session.client

        def client(service, *args, **kwargs):
            made = real_client(service, *args, **kwargs)
            if service == "dynamodb":
                deny(made, "DeleteItem")
            return made

        session.client = client
        return session

    report = registry.probe("users-r", session_factory=lacking_delete)
    assert not report.ok
    assert ("dynamodb:DeleteItem", "denied", "AccessDeniedException") in [
        (c.operation, c.result, c.code) for c in report.checks
    ]


def test_the_worked_example_in_the_docs_adds_and_orders_as_written(clean, operator):
    """docs/connectors.md, "Worked example": the three definition files, as printed there."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "connectors.md").read_text(encoding="utf-8")
    example = docs.split("### Worked example", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(yaml|json)\n(.*?)```", example, flags=re.S)
    documents = [yaml.safe_load(textwrap.dedent(body)) for _, body in blocks]
    assert [d["id"] for d in documents] == ["users-pool", "users-table", "transcripts"]
    for document in documents:
        registry.add(document, actor=operator)
    assert registry.plan().stages == (("users-pool",), ("transcripts", "users-table"))


KINDS = ("user_id", "account_id")
_connector = st.tuples(
    st.sampled_from(("email", *KINDS)),  # the identity it needs
    st.sets(st.sampled_from(KINDS), max_size=2),  # the identities it yields
).filter(lambda connector: connector[0] not in connector[1])  # a self-loop teaches nothing


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    connectors=st.lists(_connector, min_size=2, max_size=3),
    changes=st.lists(
        st.tuples(st.sampled_from(("remove", "enable", "add")), st.integers(0, 2)), min_size=1, max_size=5
    ),
)
def test_whatever_operators_do_the_stored_graph_stays_valid(cloud, operator, connectors, changes):
    """Connectors added (each twice over, so dependents follow what they need), then any removes,
    enables and re-adds, accepted or refused: the stored connectors always form a graph that orders
    (every need yielded, no cycle)."""
    for stored in registry.list_connectors():  # a clean set for each example
        registry._transact(lambda tx, s=stored: _force_remove(tx, s.connector_id), "cleanup")
    adds = [("add", n) for n in range(len(connectors))]
    for action, n in adds + adds + changes:
        if n >= len(connectors):
            continue
        needs, yields = connectors[n]
        cid = f"prop-{n}"
        try:
            if action == "add":
                document = users_table(cid, needs=needs, yields={kind: kind for kind in sorted(yields)})
                registry.add(document, actor=operator)
            elif action == "remove":
                registry.remove(cid, actor=operator)
            else:
                registry.enable(cid, actor=operator)
        except (DefinitionError, Conflict, NotFound):
            pass
        stored = registry.list_connectors()
        identity_graph.order([s.definition for s in stored])  # raises if the stored graph broke


def _force_remove(tx, connector_id: str) -> None:
    """Test cleanup only: drop a connector and its id from the set, whatever the graph says."""
    tx.delete(ConnectorItem(ConnectorItem.key(connector_id), ConnectorItem.SK))
    tx.update(
        registry.ConnectorSetItem(registry.ConnectorSetItem.PK, registry.ConnectorSetItem.SK),
        actions=[registry.ConnectorSetItem.ids.delete({connector_id})],
    )
