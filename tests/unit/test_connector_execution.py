"""Connector executions (rightsdesk.connectors.execution) against moto in-process, the worker's steps
called as the state machine would: the run's states, idempotent steps across runs, resume skipping
what is done, stop between connectors, retries on the injectable clock, the dry run writing
nothing, the grace period's due index, ambiguity parking, and no identity in any message, input,
record or log line."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import pytest
from moto import mock_aws

from rightsdesk import connectors as connectors_package
from rightsdesk.connectors import base, execution, receipts, registry
from rightsdesk.connectors.base import Connector, Erased, Found, Located
from rightsdesk.kernel import clock, retention
from rightsdesk.kernel.errors import Conflict
from rightsdesk.platform import config, operator_identity
from rightsdesk.store.items.requests import RequestItem
from tests.support.aws import moto_cloud

SECRET_ARN = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:product-hook"
EMAIL = "ada.execution@example.org"
SUB = "sub-7f3a9c"
USER_ID = "user-4242"


class Stub(Connector):
    """A store in memory: identity value -> rows; `failures` makes the next finds fail."""

    kind = "stub"

    def __init__(self, definition, world: World):
        super().__init__(definition)
        self.world = world

    @property
    def rows(self) -> dict[str, list[dict]]:
        return self.world.stores.setdefault(self.id, {})

    def find(self, identities):
        self.world.calls.append(("find", self.id))
        if self.world.failures.get(self.id, 0) > 0:
            self.world.failures[self.id] -= 1
            raise base.ConnectorFailure("store_unavailable")
        need = sorted(self.needs)[0]
        records = [Located(key=f"{need}/{n}", data=row) for n, row in enumerate(self.rows.get(identities[need], []))]
        return self._found(identities, records)

    def export(self, found: Found):
        return [dict(r.data or {}) for r in found.records]

    def erase(self, found: Found):
        self.world.calls.append(("erase", self.id))
        value = found.identities[sorted(self.needs)[0]]
        gone = self.rows.pop(value, [])
        return Erased(erased=len(gone), touched=tuple(found.key_hashes()))


class World:
    def __init__(self, cloud):
        self.cloud = cloud
        self.stores: dict[str, dict[str, list[dict]]] = {}
        self.failures: dict[str, int] = {}
        self.calls: list[tuple[str, str]] = []


def definition(connector_id: str, needs: list[str], yields: dict[str, str] | None = None) -> dict:
    return {
        "kind": "http",
        "id": connector_id,
        "url": "https://product.example/rightsdesk",
        "needs": needs,
        "yields": yields or {},
        "signing_secret_arn": SECRET_ARN,
    }


@pytest.fixture(scope="module")
def cloud():
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        found = moto_cloud(patch, "rightsdesk-exec", data_key=True)
        kms = found.session.client("kms")
        key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
        sfn = found.session.client("stepfunctions")
        machine = sfn.create_state_machine(
            name="connector-runs",
            definition=json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Pass", "End": True}}}),
            roleArn="arn:aws:iam::123456789012:role/connector-runs",
        )["stateMachineArn"]
        patch.setenv("CONNECTOR_STATE_MACHINE_ARN", machine)
        patch.setenv("RECEIPT_SIGNING_KEY_ID", key)
        config.reload()
        yield found, sfn, kms, key
    config.reload()


@pytest.fixture
def world(cloud, monkeypatch):
    """Three stored connectors over stub stores: a pool (email -> sub, user id), a users table
    (user id) and a newsletter (email). Each test gets them afresh and enabled."""
    operator = operator_identity.local("execution-tester")
    for stored in sorted(registry.list_connectors(), key=lambda s: -len(s.definition.needs - {"email"})):
        registry.remove(stored.connector_id, actor=operator)
    for document in (
        definition("pool", ["email"], {"cognito_sub": "sub", "user_id": "user_id"}),
        definition("users", ["user_id"]),
        definition("newsletter", ["email"]),
    ):
        registry.add(document, actor=operator)
        registry.enable(document["id"], actor=operator)
    made = World(cloud)
    made.stores = {
        "pool": {EMAIL: [{"sub": SUB, "user_id": USER_ID, "email": EMAIL}]},
        "users": {USER_ID: [{"user_id": USER_ID, "name": "Ada"}, {"user_id": USER_ID, "note": "second"}]},
        "newsletter": {EMAIL: [{"email": EMAIL}]},
    }
    monkeypatch.setattr(connectors_package, "build", lambda d, request_id, **_: Stub(d, made))
    return made


def new_request(kind: str = "erasure", status: str = "in_progress") -> str:
    request_id = "req_" + clock.now().strftime("%H%M%S%f")
    now = clock.now()
    RequestItem(
        RequestItem.key(request_id),
        RequestItem.SK,
        request_id=request_id,
        controller_id="ctl_exec",
        site="exec.test",
        request_type=kind,
        status=status,
        email=EMAIL,
        created_at=now,
        verified_at=now,
        expires_at=retention.request_expires_at(now, now),
    ).save()
    return request_id


def run_to_the_end(request_id: str, execution_id: str) -> dict:
    planned = execution.plan_step(request_id, execution_id)
    for stage in planned["stages"]:
        for connector_id in stage:
            execution.connector_step(request_id, execution_id, connector_id)
    execution.finish_step(request_id, execution_id)
    return planned


def public_key_pem(cloud) -> bytes:
    _, _, kms, key = cloud
    return receipts.public_key_pem(kms.get_public_key(KeyId=key)["PublicKey"]).encode()


def test_a_run_erases_dependents_first_and_leaves_a_receipt_that_verifies_offline(world, cloud):
    request_id = new_request()
    started = execution.start(request_id, actor=operator_identity.local("ops"))
    assert (started.run, started.status, started.dry_run) == (1, "running", False)

    planned = run_to_the_end(request_id, started.execution_id)

    # erasure: the users table (needs the pool's user id) before the pool that yields it
    assert planned["stages"] == [["users"], ["newsletter", "pool"]]
    assert world.stores["users"] == {} and world.stores["pool"] == {} and world.stores["newsletter"] == {}
    done = execution.view(request_id)
    assert done.status == "succeeded" and done.finished_at
    assert {(s["connector_id"], s["state"], s["erased"], s["remaining"]) for s in done.steps} == {
        ("users", "done", 2, 0),
        ("pool", "done", 1, 0),
        ("newsletter", "done", 1, 0),
    }
    verified = receipts.verify(receipts.export(request_id), public_key_pem(cloud))
    assert verified.valid and verified.sealed and verified.entries == 4
    assert execution.latest_item(request_id).sealed_identities is None  # identities go with the run


def test_a_step_recorded_done_is_not_done_again_and_a_resume_skips_it(world):
    request_id = new_request()
    first = execution.start(request_id, actor="operator")
    execution.plan_step(request_id, first.execution_id)
    execution.connector_step(request_id, first.execution_id, "users")
    again = execution.connector_step(request_id, first.execution_id, "users")  # a redelivered message
    assert again["erased"] == 2
    assert world.calls.count(("erase", "users")) == 1
    world.failures["newsletter"] = 99
    with pytest.raises(execution.StepFailed):
        execution.connector_step(request_id, first.execution_id, "newsletter", attempt=execution.MAX_ATTEMPTS)
    parked = execution.park(request_id, first.execution_id, "store_unavailable")
    assert parked.status == "parked" and parked.reason == "store_unavailable"

    world.failures["newsletter"] = 0  # the operator fixed the store
    resumed = execution.start(request_id, actor="operator")
    assert resumed.run == 2 and resumed.execution_id != first.execution_id
    run_to_the_end(request_id, resumed.execution_id)

    assert world.calls.count(("erase", "users")) == 1  # done in run 1, skipped in run 2
    final = execution.view(request_id)
    assert final.status == "succeeded"
    assert {s["connector_id"]: s["run"] for s in final.steps} == {"users": 1, "newsletter": 2, "pool": 2}


def test_the_users_table_resumes_with_the_user_id_an_earlier_run_derived(world):
    """The pool that yields the user id is erased; a later run still reaches the users table."""
    request_id = new_request()
    first = execution.start(request_id, actor="operator")
    execution.plan_step(request_id, first.execution_id)
    world.failures["users"] = 99
    with pytest.raises(execution.StepFailed):
        execution.connector_step(request_id, first.execution_id, "users", attempt=execution.MAX_ATTEMPTS)
    execution.connector_step(request_id, first.execution_id, "pool")  # say it ran in parallel
    execution.park(request_id, first.execution_id, "store_unavailable")

    world.failures["users"] = 0
    second = execution.start(request_id, actor="operator")
    run_to_the_end(request_id, second.execution_id)
    assert world.stores["users"] == {}


def test_stop_lets_no_further_connector_start(world, cloud):
    _, sfn, _, _ = cloud
    request_id = new_request()
    started = execution.start(request_id, actor="operator")
    execution.plan_step(request_id, started.execution_id)
    execution.connector_step(request_id, started.execution_id, "users")

    stopped = execution.stop(request_id, actor=operator_identity.local("ops"))

    assert stopped.status == "stopped"
    with pytest.raises(execution.StepSkipped):
        execution.connector_step(request_id, started.execution_id, "pool")
    assert world.stores["pool"]  # untouched
    arn = execution.latest_item(request_id).sfn_execution_arn
    assert sfn.describe_execution(executionArn=arn)["status"] in ("ABORTED", "SUCCEEDED")
    with pytest.raises(Conflict):
        execution.stop(request_id, actor="operator")
    resumed = execution.start(request_id, actor="operator")
    assert resumed.run == 2


def test_a_failing_connector_is_retried_on_the_schedule_then_fails(world):
    request_id = new_request()
    started = execution.start(request_id, actor="operator")
    execution.plan_step(request_id, started.execution_id)
    world.failures["newsletter"] = 99
    delays = []
    for attempt in range(1, execution.MAX_ATTEMPTS):
        with pytest.raises(execution.RetryStep) as retry:
            execution.connector_step(request_id, started.execution_id, "newsletter", attempt=attempt)
        delays.append(retry.value.delay)
    assert delays == [execution.RETRY.delay(n) for n in range(1, execution.MAX_ATTEMPTS)]
    assert delays == sorted(delays) and delays[0] < delays[-1]  # backoff
    with pytest.raises(execution.StepFailed) as failed:
        execution.connector_step(request_id, started.execution_id, "newsletter", attempt=execution.MAX_ATTEMPTS)
    assert failed.value.code == "store_unavailable"
    row = next(s for s in execution.view(request_id).steps if s["connector_id"] == "newsletter")
    assert (row["state"], row["attempts"], row["failure"]) == ("failed", execution.MAX_ATTEMPTS, "store_unavailable")


def test_a_step_that_keeps_failing_past_its_timeout_fails_on_the_clock(world):
    request_id = new_request()
    started = execution.start(request_id, actor="operator")
    execution.plan_step(request_id, started.execution_id)
    world.failures["newsletter"] = 99
    with pytest.raises(execution.RetryStep):
        execution.connector_step(request_id, started.execution_id, "newsletter", attempt=1)
    clock.advance(config.connector_step_timeout_seconds() + 1)
    with pytest.raises(execution.StepFailed) as failed:
        execution.connector_step(request_id, started.execution_id, "newsletter", attempt=2)
    assert failed.value.code == "step_timeout"


def test_a_dry_run_counts_what_each_connector_would_touch_and_writes_nothing(world, cloud):
    found, _, _, _ = cloud
    request_id = new_request()
    dynamodb = found.session.client("dynamodb")
    before = dynamodb.scan(TableName=found.tables["RightsTable"])["Items"]

    plan = execution.start(request_id, actor="operator", dry_run=True)

    after = dynamodb.scan(TableName=found.tables["RightsTable"])["Items"]
    assert sorted(map(str, before)) == sorted(map(str, after))
    assert plan.dry_run and plan.status == "succeeded"
    assert {s["connector_id"]: s["found"] for s in plan.steps} == {"pool": 1, "newsletter": 1, "users": 2}
    assert ("erase", "users") not in world.calls and execution.view(request_id) is None


def test_two_users_for_one_email_park_the_run_and_nothing_is_erased(world):
    world.stores["pool"][EMAIL].append({"sub": "sub-other", "user_id": "user-other", "email": EMAIL})
    request_id = new_request()
    started = execution.start(request_id, actor="operator")
    with pytest.raises(execution.StepFailed) as failed:
        execution.plan_step(request_id, started.execution_id)
    assert failed.value.code == "ambiguous_identity"
    assert not [call for call in world.calls if call[0] == "erase"]


def test_a_running_or_finished_run_is_not_started_twice(world):
    request_id = new_request()
    started = execution.start(request_id, actor="operator")
    with pytest.raises(Conflict) as running:
        execution.start(request_id, actor="operator")
    assert running.value.code == "execution_running"
    run_to_the_end(request_id, started.execution_id)
    with pytest.raises(Conflict) as done:
        execution.start(request_id, actor="operator")
    assert done.value.code == "execution_succeeded"


def test_the_grace_period_is_found_through_the_due_index_on_the_clock(world, cloud):
    found, _, _, _ = cloud
    waiting_id = new_request()
    cancelled_id = new_request()
    for request_id in (waiting_id, cancelled_id):
        view = execution.schedule(request_id, not_before=clock.now() + timedelta(hours=24), actor="rightsdesk")
        assert view.status == "waiting" and view.not_before
    assert execution.begin_due() == []
    RequestItem.get(RequestItem.key(cancelled_id), RequestItem.SK).update(actions=[RequestItem.status.set("cancelled")])

    clock.advance(24 * 3600 + 1)
    started = execution.begin_due()

    assert waiting_id in started and cancelled_id not in started
    assert execution.view(waiting_id).status == "running"
    assert (execution.view(cancelled_id).status, execution.view(cancelled_id).reason) == ("stopped", "request_closed")
    assert execution.begin_due() == []  # each run starts once


def test_a_stopped_waiting_run_never_starts(world):
    request_id = new_request()
    execution.schedule(request_id, not_before=clock.now() + timedelta(hours=1), actor="rightsdesk")
    execution.stop(request_id, actor="operator")
    clock.advance(3601)
    assert request_id not in execution.begin_due()
    assert execution.view(request_id).status == "stopped"


def test_an_access_request_keeps_each_connectors_records_as_an_export_section(world):
    from rightsdesk.connectors import export_store

    request_id = new_request("access")
    started = execution.start(request_id, actor="operator")
    planned = run_to_the_end(request_id, started.execution_id)
    assert planned["stages"] == [["newsletter", "pool"], ["users"]]  # graph order: nothing is erased
    sections = export_store.sections(request_id)
    assert [(s["connector_id"], len(s["records"])) for s in sections] == [("newsletter", 1), ("pool", 1), ("users", 2)]
    assert world.stores["users"]  # nothing erased


def test_a_large_export_goes_to_the_bucket(world, cloud, monkeypatch):
    from rightsdesk.connectors import export_store

    found, _, _, _ = cloud
    found.session.client("s3").create_bucket(
        Bucket="rightsdesk-exec-exports", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"}
    )
    monkeypatch.setenv("EXPORT_BUCKET", "rightsdesk-exec-exports")
    request_id = new_request("portability")
    big = [{"row": n, "text": "x" * 1000} for n in range(400)]
    export_store.save(request_id, "users", "stub", big)
    assert export_store.sections(request_id) == [{"connector_id": "users", "kind": "stub", "records": big}]
    keys = found.session.client("s3").list_objects_v2(Bucket="rightsdesk-exec-exports")["Contents"]
    assert [k["Key"] for k in keys] == [f"exports/{request_id}/users.json"]


def test_no_identity_reaches_the_state_machine_the_records_or_the_logs(world, cloud, caplog):
    found, sfn, _, _ = cloud
    caplog.set_level(logging.DEBUG, logger="rightsdesk")
    request_id = new_request()
    started = execution.start(request_id, actor="operator")
    outputs: list[Any] = [execution.plan_step(request_id, started.execution_id)]
    for stage in outputs[0]["stages"]:
        for connector_id in stage:
            outputs.append(execution.connector_step(request_id, started.execution_id, connector_id))
    arn = execution.latest_item(request_id).sfn_execution_arn
    state_machine_input = sfn.describe_execution(executionArn=arn)["input"]
    items = found.session.client("dynamodb").query(
        TableName=found.tables["RightsTable"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": RequestItem.key(request_id)}},
    )["Items"]
    trail = found.session.client("dynamodb").query(
        TableName=found.tables["RightsTable"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"EXEC#{request_id}"}},
    )["Items"]
    stored = [item for item in items if item["sk"]["S"] != "REQUEST"]  # the request holds the address itself
    ours = [f"{r.getMessage()} {r.__dict__}" for r in caplog.records if r.name.startswith("rightsdesk")]
    for text in (state_machine_input, json.dumps(outputs), json.dumps(stored), json.dumps(trail), "\n".join(ours)):
        for personal in (EMAIL, SUB, USER_ID, "Ada"):
            assert personal not in text
    assert any("sealed_identities" in item for item in stored)


def test_a_legal_hold_on_the_request_stops_its_erasure_between_connectors(world):
    from rightsdesk.retention import holds

    request_id = new_request()
    started = execution.start(request_id, actor="operator")
    execution.plan_step(request_id, started.execution_id)
    execution.connector_step(request_id, started.execution_id, "users")
    holds.place(request_id, "litigation hold, case 2026-18", actor="operator")

    with pytest.raises(execution.StepFailed) as held:
        execution.connector_step(request_id, started.execution_id, "pool")
    assert held.value.code == "legal_hold"
    assert world.stores["pool"]  # untouched while held
    holds.release(request_id, actor="operator")
    execution.park(request_id, started.execution_id, held.value.code)
    resumed = execution.start(request_id, actor="operator")
    run_to_the_end(request_id, resumed.execution_id)
    assert world.stores["pool"] == {}


@pytest.mark.parametrize(
    ("locale", "grace_words", "receipt_words"),
    [
        ("en", "We will delete your personal data", "4 checked"),
        ("de", "Wir löschen Ihre personenbezogenen Daten", "4 geprüft"),
        ("sl", "Vaše osebne podatke", "preverjenih: 4"),
    ],
)
def test_the_grace_and_completion_mails_speak_the_subjects_language(locale, grace_words, receipt_words):
    from rightsdesk.render import own_mail

    status_url = "https://privacy.example/status/req_1?token=rst_x&lang=" + locale
    grace = own_mail.render(
        "own_request_received",
        locale,
        {
            "request_id": "req_1",
            "request_type": "erasure",
            "due_at": "2026-12-31T00:00:00Z",
            "erase_after": "2026-12-05T10:00:00Z",
            "status_url": status_url,
        },
    )
    assert grace_words in " ".join(grace.text.split()) and status_url in grace.text
    assert status_url.replace("&", "&amp;") in grace.html
    receipt = {"receipt_connectors": 4, "receipt_erased": 9, "receipt_kept": 0, "receipt_remaining": 0}
    answered = own_mail.render(
        "own_request_answered",
        locale,
        {"request_id": "req_1", "request_type": "erasure", "outcome": "completed", "receipt": receipt},
    )
    text = " ".join(answered.text.split())
    assert receipt_words in text and "35" in text
    assert receipt_words in " ".join(answered.html.split())


def test_a_request_closed_meanwhile_stops_its_run_and_its_identities_go(world):
    request_id = new_request()
    started = execution.start(request_id, actor="operator")
    execution.plan_step(request_id, started.execution_id)
    RequestItem.get(RequestItem.key(request_id), RequestItem.SK).update(actions=[RequestItem.status.set("cancelled")])

    with pytest.raises(execution.StepSkipped):
        execution.connector_step(request_id, started.execution_id, "users")

    assert world.stores["users"]  # nothing more erased
    stopped = execution.latest_item(request_id)
    assert (stopped.status, stopped.reason, stopped.sealed_identities) == ("stopped", "request_closed", None)


def test_forgetting_a_parked_runs_identities_keeps_its_steps(world):
    request_id = new_request()
    started = execution.start(request_id, actor="operator")
    execution.plan_step(request_id, started.execution_id)
    execution.park(request_id, started.execution_id, "store_unavailable")
    assert execution.latest_item(request_id).sealed_identities

    execution.forget_identities(request_id)

    item = execution.latest_item(request_id)
    assert item.sealed_identities is None and item.status == "parked"


def test_a_controllers_run_reaches_only_tenant_scoped_connectors_and_only_its_own_tenant(world):
    """The processor role: the controller's identities may not name a tenant, and a connector
    without a tenant condition (it would reach every tenant) is not part of its run."""
    operator = operator_identity.local("execution-tester")
    scoped = {**definition("tenant-users", ["user_id", "tenant_id"]), "tenant_scoped": True}
    registry.add(scoped, actor=operator)
    registry.enable("tenant-users", actor=operator)
    world.stores["tenant-users"] = {"tn-own": [{"user_id": USER_ID}], "tn-other": [{"user_id": USER_ID}]}
    request_id = new_request()

    started = execution.start(
        request_id,
        actor="controller:ctl_exec",
        identities={"user_id": USER_ID, "tenant_id": "tn-other"},  # refused silently: the tenant is the controller's
        tenant_id="tn-own",
    )
    planned = execution.plan_step(request_id, started.execution_id)
    assert planned["stages"] == [["tenant-users"]], "the pool, users and newsletter connectors name no tenant"
    with pytest.raises(execution.StepFailed) as refused:  # a step message naming another connector
        execution.connector_step(request_id, started.execution_id, "users")
    assert refused.value.code == "connector_not_tenant_scoped"
    execution.connector_step(request_id, started.execution_id, "tenant-users")
    execution.finish_step(request_id, started.execution_id)

    assert world.stores["tenant-users"] == {"tn-other": [{"user_id": USER_ID}]}
    assert world.stores["users"][USER_ID] and world.stores["pool"][EMAIL] and world.stores["newsletter"][EMAIL]
    assert ("erase", "users") not in world.calls


def test_a_controllers_run_needs_the_controllers_tenant(world):
    request_id = new_request()
    with pytest.raises(Conflict) as refused:
        execution.start(request_id, actor="controller:ctl_exec", identities={"user_id": USER_ID})
    assert refused.value.code == "no_tenant"
