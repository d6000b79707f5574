"""`POST /v1/controller/requests/{id}/execute` and `GET .../receipt` through the controller API's
handler in-process against moto: the key, another controller's request (404), the request's type
and status, the identities' validation (4xx in the error shape, nothing started), idempotency per
request run, the controller's tenant passed to the execution, and no identity in logs or answers.

The execution itself (rightsdesk.connectors.execution) is replaced by a recorder through the route
module's `_execution()`; the end-to-end run is the orchestration's."""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest
from moto import mock_aws

from rightsdesk.connectors import receipts, registry, runs
from rightsdesk.kernel import clock, retention
from rightsdesk.kernel.errors import Conflict, InvalidInput
from rightsdesk.platform import hashing
from rightsdesk.routing import controller_lookup
from rightsdesk.routing import registry as controllers
from rightsdesk.store.items.requests import RequestItem
from tests.support.aws import moto_cloud

ROOT = Path(__file__).resolve().parents[2]
FUNCTION = ROOT / "functions" / "controller_api"
SECRET_USER = "user-4711-secret"


def _load():
    sys.path.insert(0, str(FUNCTION))
    try:
        spec = importlib.util.spec_from_file_location("_execute_controller_app", FUNCTION / "app.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(FUNCTION))
    return module


class Context:
    function_name, memory_limit_in_mb, aws_request_id = "controller", 128, "r"
    invoked_function_arn = "arn:aws:lambda:eu-central-1:123456789012:function:controller"

    def get_remaining_time_in_millis(self):
        return 10000


@dataclass
class View:
    request_id: str
    status: str = "waiting"
    dry_run: bool = False
    run: int = 1
    execution_id: str = field(default_factory=lambda: hashing.new_id("exe"))
    steps: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


class Recorder:
    """Stands in for rightsdesk.connectors.execution: records each start, answers view."""

    ACTIVE, SUCCEEDED = runs.ACTIVE, runs.SUCCEEDED

    def __init__(self):
        self.started: list[dict] = []
        self.views: dict[str, View] = {}

    def start(self, request_id, *, actor, identities=None, tenant_id=None):
        self.started.append(
            {"request_id": request_id, "actor": actor, "identities": identities, "tenant_id": tenant_id}
        )
        view = View(request_id, run=len(self.started))
        self.views[request_id] = view
        return view

    def view(self, request_id):
        return self.views.get(request_id)


@pytest.fixture(scope="module")
def cloud():
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        found = moto_cloud(
            patch, prefix="rightsdesk-execute", data_key=True, env={"POWERTOOLS_METRICS_NAMESPACE": "rightsdesk-test"}
        )
        registry.add(
            {
                "kind": "s3",
                "id": "tenant-files",
                "role_arn": "arn:aws:iam::123456789012:role/rightsdesk-connector-tenant-files",
                "bucket": "tenant-files",
                "tenant_scoped": True,
                "subject_prefixes": ["tenants/{tenant_id}/users/{user_id}/"],
            },
            actor="operator",
        )
        registry.enable("tenant-files", actor="operator")
        yield found


@pytest.fixture(scope="module")
def api(cloud):
    return _load()


@pytest.fixture
def execution(api, monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(api.execution_routes, "_execution", lambda: recorder)
    return recorder


def new_controller(tenant_id: str | None = None) -> tuple[str, str]:
    site = hashing.new_id("s").split("_")[1]
    created = controllers.register(
        name="Acme", site_key=f"acme-{site}", contact_email=f"dpo-{site}@acme.example", delivery="pull"
    )
    controller = created.controller
    if tenant_id:
        controllers.set_tenant(controller.controller_id, tenant_id, actor="operator")
    return controller.controller_id, created.api_key


def new_request(controller_id: str, *, kind: str = "erasure", status: str = "acknowledged") -> str:
    request_id, now = hashing.new_id("dsr"), clock.now()
    RequestItem(
        RequestItem.key(request_id),
        RequestItem.SK,
        request_id=request_id,
        controller_id=controller_id,
        site="acme.test",
        request_type=kind,
        status=status,
        created_at=now,
        verified_at=now,
        expires_at=retention.request_expires_at(now, now),
    ).save()
    return request_id


def call(api, method: str, path: str, caller: tuple[str, str], body: dict | str | None = None) -> tuple[int, dict]:
    resource = path.replace(path.split("/")[4], "{id}", 1)
    headers = {"Authorization": f"Bearer {caller[1]}", "Content-Type": "application/json"}
    event = {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "pathParameters": {"id": path.split("/")[4]},
        "body": body if isinstance(body, str) or body is None else json.dumps(body),
        "isBase64Encoded": False,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "stage": "dev",
            "requestId": "r",
            "identity": {"sourceIp": "192.0.2.1"},
            "authorizer": {"controller_id": caller[0]},
        },
    }
    answer = api.lambda_handler(event, Context())
    return answer["statusCode"], json.loads(answer["body"])


def execute(api, caller, request_id, body):
    return call(api, "POST", f"/v1/controller/requests/{request_id}/execute", caller, body)


BODY = {"identities": {"user_id": SECRET_USER}}


def test_an_erasure_is_started_for_the_callers_tenant_with_its_identities(api, execution, capsys):
    caller = new_controller(tenant_id="tenant-acme-7")
    request_id = new_request(caller[0])
    status, answer = execute(api, caller, request_id, BODY)
    assert status == 202 and answer["request_id"] == request_id and answer["dry_run"] is False
    [started] = execution.started
    assert started == {
        "request_id": request_id,
        "actor": f"controller:{caller[0]}",
        "identities": {"user_id": SECRET_USER},
        "tenant_id": "tenant-acme-7",
    }
    assert SECRET_USER not in json.dumps(answer)
    assert SECRET_USER not in capsys.readouterr().out  # nothing logged it


def test_a_controller_without_a_tenant_id_is_its_own_tenant(api, execution):
    caller = new_controller()
    execute(api, caller, new_request(caller[0], kind="portability", status="delivered"), BODY)
    assert execution.started[0]["tenant_id"] == caller[0]


def test_another_controllers_request_is_not_found_and_nothing_starts(api, execution):
    owner, stranger = new_controller(), new_controller()
    request_id = new_request(owner[0])
    for path in (f"/v1/controller/requests/{request_id}/execute", f"/v1/controller/requests/{request_id}/receipt"):
        status, answer = call(api, "POST" if path.endswith("execute") else "GET", path, stranger, BODY)
        assert (status, answer["error"]["code"]) == (404, "not_found")
    status, _ = execute(api, owner, "dsr_doesnotexist0000000", BODY)
    assert status == 404 and execution.started == []


def test_a_wrong_or_missing_key_is_refused(api, execution):
    owner = new_controller()
    request_id = new_request(owner[0])
    status, answer = execute(api, (owner[0], "rk_not-the-key"), request_id, BODY)
    assert status == 401 and execution.started == []


@pytest.mark.parametrize(
    ("kind", "state", "code"),
    [
        ("rectification", "acknowledged", "not_executable"),
        ("objection", "in_progress", "not_executable"),
        ("erasure", "completed", "not_executable"),
        ("erasure", "rejected", "not_executable"),
    ],
)
def test_only_erasure_access_and_portability_between_delivery_and_closing(api, execution, kind, state, code):
    caller = new_controller()
    status, answer = execute(api, caller, new_request(caller[0], kind=kind, status=state), BODY)
    assert (status, answer["error"]["code"]) == (409, code) and execution.started == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"identities": {}}, "identities"),
        ({}, "identities"),
        ({"identities": {"account_no": "7"}}, "identities.account_no"),
        ({"identities": {"tenant_id": "someone-elses-tenant"}}, "identities.tenant_id"),
        ({"identities": {"user_id": ""}}, "identities"),
        ({"identities": {"user_id": "x" * 513}}, "identities"),
        ({"identities": {"user_id": "a\nb"}}, "identities"),
        ({"identities": {"Not A Kind": "x"}}, "identities"),
        ({"identities": {f"k{n}": "x" for n in range(11)}}, "identities"),
        # no dry run for a controller: a plan's finds would run in this function (docs/decisions.md)
        ({"identities": {"user_id": "u"}, "dry_run": True}, "dry_run"),
        ({"identities": {"user_id": "u"}, "extra": 1}, "extra"),
    ],
)
def test_bad_bodies_are_422_naming_the_field_and_start_nothing(api, execution, body, field):
    caller = new_controller()
    status, answer = execute(api, caller, new_request(caller[0]), body)
    assert status == 422 and answer["error"]["code"] == "invalid_input", answer
    assert any(name.startswith(field) for name in answer["error"]["fields"]), answer
    assert execution.started == []
    assert "someone-elses-tenant" not in json.dumps(answer) and "x" * 513 not in json.dumps(answer)


def test_malformed_json_is_400(api, execution):
    caller = new_controller()
    status, answer = execute(api, caller, new_request(caller[0]), "{not json")
    assert status == 400 and execution.started == []


def test_asking_again_answers_the_run_under_way_and_starts_nothing_more(api, execution):
    caller = new_controller()
    request_id = new_request(caller[0])
    first = execute(api, caller, request_id, BODY)
    again = execute(api, caller, request_id, BODY)
    assert first == again and len(execution.started) == 1
    # once it succeeded, asking again answers it
    execution.views[request_id].status = "succeeded"
    assert execute(api, caller, request_id, BODY)[1]["execution_id"] == first[1]["execution_id"]
    # a failed run is resumed by a new one
    execution.views[request_id].status = "failed"
    status, resumed = execute(api, caller, request_id, BODY)
    assert status == 202 and resumed["run"] == 2 and len(execution.started) == 2


def test_the_receipt_is_the_signed_chain_of_the_callers_request(api, execution, cloud):
    caller = new_controller()
    request_id = new_request(caller[0])
    status, answer = call(api, "GET", f"/v1/controller/requests/{request_id}/receipt", caller)
    assert (status, answer["error"]["code"]) == (404, "not_found")  # none yet
    kms = cloud.session.client("kms")
    signer = receipts.KmsSigner(
        kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"], client=kms
    )
    started = clock.now()
    receipts.record(
        request_id,
        receipts.Outcome(
            connector_id="tenant-files",
            kind="s3",
            action=receipts.Action.ERASE,
            result=receipts.Result.DONE,
            started_at=started,
            finished_at=started,
            counts=receipts.Counts(found=1, erased=1),
            key_hashes=[hashing.keyed_hash("receipt_key", "k")],
            remaining=0,
        ),
        signer=signer,
    )
    receipts.seal(request_id, signer=signer)
    status, answer = call(api, "GET", f"/v1/controller/requests/{request_id}/receipt", caller)
    assert status == 200 and answer["request_id"] == request_id and answer["head"]["sealed"] is True
    pem = receipts.public_key_pem(signer.public_key_der()).encode()
    assert receipts.verify(answer, pem).valid


def test_a_tenant_id_belongs_to_one_controller_and_can_be_given_back(api, execution):
    first, second = new_controller(), new_controller()
    tenant = f"tenant-{hashing.new_id('t')}"
    controllers.set_tenant(first[0], tenant, actor="operator")
    with pytest.raises(Conflict):
        controllers.set_tenant(second[0], tenant, actor="operator")
    for taken in (first[0], "a/b", "", "x" * 129):
        with pytest.raises(InvalidInput):
            controllers.set_tenant(second[0], taken, actor="operator")
    assert controllers.describe(controller_lookup.require_controller(first[0]))["tenant_id"] == tenant
    controllers.set_tenant(first[0], None, actor="operator")  # back to its controller id: the tenant is free
    controllers.set_tenant(second[0], tenant, actor="operator")
    execute(api, second, new_request(second[0]), BODY)
    assert execution.started[0]["tenant_id"] == tenant
    execute(api, first, new_request(first[0]), BODY)
    assert execution.started[1]["tenant_id"] == first[0]


class Carrying(Recorder):
    """Stands in for the orchestration by running the processor connectors at once, with the seeds
    the route gave: what the two-controller isolation test needs of an execution."""

    def start(self, request_id, *, actor, identities=None, tenant_id=None):
        import boto3

        from rightsdesk.connectors import build, identity_graph
        from rightsdesk.routing import controller_execution

        view = super().start(request_id, actor=actor, identities=identities, tenant_id=tenant_id)
        connectors = [
            build(d, request_id, session_factory=lambda d, r: boto3.session.Session(region_name="eu-central-1"))
            for d in controller_execution.processor_connectors()
        ]
        _, outcomes = identity_graph.carry_out(connectors, {**identities, "tenant_id": tenant_id})
        view.steps = [o.to_dict() for o in outcomes]
        view.status = "succeeded"
        return view


def test_controller_a_never_reaches_controller_bs_tenant_through_the_api(api, monkeypatch, cloud):
    s3 = cloud.session.client("s3")
    if "tenant-files" not in [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket="tenant-files", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    a, b = new_controller(tenant_id="tenant-a"), new_controller(tenant_id="tenant-b")
    for tenant in ("tenant-a", "tenant-b"):
        s3.put_object(Bucket="tenant-files", Key=f"tenants/{tenant}/users/{SECRET_USER}/profile.json", Body=b"{}")
    carrying = Carrying()
    monkeypatch.setattr(api.execution_routes, "_execution", lambda: carrying)
    # A asks, with B's tenant tucked into the identities too: refused before anything runs
    status, _ = execute(api, a, new_request(a[0]), {"identities": {"user_id": SECRET_USER, "tenant_id": "tenant-b"}})
    assert status == 422 and carrying.started == []
    status, answer = execute(api, a, new_request(a[0]), BODY)
    assert status == 202 and [(s["result"], s["erased"]) for s in answer["steps"]] == [("done", 1)]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="tenant-files").get("Contents", [])]
    assert keys == [f"tenants/tenant-b/users/{SECRET_USER}/profile.json"], "only A's tenant was erased"
    status, answer = execute(api, b, new_request(b[0]), BODY)
    assert [(s["result"], s["erased"]) for s in answer["steps"]] == [("done", 1)]
    assert s3.list_objects_v2(Bucket="tenant-files").get("KeyCount") == 0
