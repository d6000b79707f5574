"""The local runner itself (local/), mostly on a fixture template whose functions live in fixtures/.

The fixture keeps these tests independent of the real handlers; one test at the end checks that the
repo's own template.yaml starts and serves through its handlers.
"""

from __future__ import annotations

import base64
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import boto3
import pytest
import requests
from standardwebhooks.webhooks import Webhook

from local.intrinsics import NO_VALUE, Resolver, parameter_values
from local.patterns import any_match, matches
from local.pollers import interval_seconds
from local.template import load
from tests.support.flows import eventually

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
FIXTURE_TEMPLATE = Path(__file__).parent / "fixtures" / "template.yaml"


@pytest.fixture(scope="module")
def fx(launch_stack):
    return launch_stack("--template", str(FIXTURE_TEMPLATE))


@pytest.fixture(scope="module")
def fx_aws(fx):
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-central-1"
    )
    return lambda service: session.client(service, endpoint_url=fx.moto_url)


def scan(client, table: str) -> list[dict]:
    return client.scan(TableName=table, ConsistentRead=True)["Items"]


# ---------------------------------------------------------------------------------------- pure parts, no process
class _FakeResources:
    def ref(self, logical_id):
        return f"ref-{logical_id}"

    def get_att(self, logical_id, attribute):
        return f"{attribute}-of-{logical_id}"


def test_short_tags_and_intrinsics_resolve():
    template = load(FIXTURE_TEMPLATE)
    resolver = Resolver(
        template,
        parameter_values(template, {"Stage": "local"}),
        _FakeResources(),
        region="eu-central-1",
        account_id="123456789012",
    )
    env = template.function_properties("EchoFunction")["Environment"]["Variables"]
    assert env["POWERTOOLS_SERVICE_NAME"] == "echo", "Globals merge with the function's own variables"
    assert resolver.resolve(env["WORK_QUEUE_NAME"]) == "QueueName-of-WorkQueue"
    assert resolver.resolve(env["STAGE_FLAG"]) == "local-stage"
    assert resolver.resolve(env["SUBBED"]) == "eu-central-1/123456789012/aws/local/Arn-of-WorkQueue"
    assert resolver.resolve(env["JOINED"]) == "a-local-y"
    assert resolver.resolve(env["DROPPED"]) is NO_VALUE
    assert (
        resolver.resolve({"Fn::Sub": ["${A}-${!Literal}", {"A": {"Ref": "Sender"}}]})
        == "sender@fixture.localhost-${Literal}"
    )
    assert resolver.active(template.resources["NeverCreatedQueue"]) is False


def test_filter_patterns():
    record = {"eventName": "INSERT", "dynamodb": {"Keys": {"pk": {"S": "EVT#1"}}, "n": 5}, "tags": ["a", "b"]}
    assert matches({"eventName": ["INSERT", "MODIFY"]}, record)
    assert matches({"dynamodb": {"Keys": {"pk": {"S": [{"prefix": "EVT#"}]}}}}, record)
    assert not matches({"dynamodb": {"Keys": {"pk": {"S": [{"prefix": "REQ#"}]}}}}, record)
    assert matches({"eventName": [{"anything-but": ["REMOVE"]}]}, record)
    assert not matches({"eventName": [{"anything-but": "INSERT"}]}, record)
    assert matches({"userIdentity": [{"exists": False}]}, record)
    assert not matches({"userIdentity": [{"exists": True}]}, record)
    assert matches({"dynamodb": {"n": [{"numeric": [">", 1, "<=", 5]}]}}, record)
    assert matches({"tags": ["b"]}, record), "a list value matches when any element does"
    assert any_match([], record), "no filters: everything is delivered"
    # Leaf paths: under a missing object every leaf is missing, which only {"exists": false} accepts.
    assert matches({"dynamodb": {"OldImage": {"purged": {"S": [{"exists": False}]}}}}, record)
    assert not matches({"dynamodb": {"OldImage": {"purged": {"S": [{"exists": True}]}}}}, record)
    assert not matches({"dynamodb": {"OldImage": {"purged": {"S": ["x"]}}}}, record)


def test_a_schedule_timer_runs_repeatedly_and_survives_failures():
    from local.functions import FunctionError
    from local.pollers import ScheduleTimer

    class Flaky:
        account_id = "123456789012"

        class spec:  # noqa: N801 - stands in for FunctionSpec
            name, logical_id = "rightsdesk-local-Flaky", "Flaky"

        def __init__(self):
            self.events = []

        def invoke(self, event):
            self.events.append(event)
            if len(self.events) == 1:
                raise FunctionError("RuntimeError")

    function, stop = Flaky(), threading.Event()
    timer = ScheduleTimer(function, "Tick", {}, 0.05, "eu-central-1", "123456789012", stop)
    timer.start()
    try:
        eventually(lambda: len(function.events) >= 3, timeout=5)
    finally:
        stop.set()
        timer.join(timeout=2)
    assert not timer.is_alive()
    assert function.events[0]["detail-type"] == "Scheduled Event"


def test_schedule_expressions():
    assert interval_seconds("rate(10 minutes)") == 600
    assert interval_seconds("rate(1 hour)") == 3600
    assert interval_seconds("rate(2 days)") == 172800
    assert interval_seconds("cron(0 * * * ? *)") == 3600  # the documented local approximation
    assert interval_seconds("at(2030-01-01T00:00:00)") is None


# ---------------------------------------------------------------------------------------- health and routing
def test_health_reports_functions_resources_and_clock(fx):
    health = fx.health()
    assert health["ok"] is True and health["moto"] == fx.moto_url
    assert set(health["functions"]["loaded"]) == {
        "EchoFunction",
        "AuthorizerFunction",
        "WorkerFunction",
        "StreamFunction",
        "SweepFunction",
        "MailerFunction",
        "SlowFunction",
    }
    assert "not found" in health["functions"]["unavailable"]["BrokenFunction"]
    containers = health["functions"]["containers"]
    assert containers["SlowFunction"]["max"] == 2, "ReservedConcurrentExecutions bounds the pool"
    assert containers["EchoFunction"]["max"] == 4, "the runner's default (--max-containers) elsewhere"
    assert all(pool["started"] >= 1 for pool in containers.values()), (
        "each function's first container starts with the stack"
    )
    assert health["degraded"] is True
    assert health["resources"]["FixtureTable"]["name"] == "rightsdesk-local-FixtureTable"
    assert "NeverCreatedQueue" not in health["resources"], "a false Condition means no resource"
    assert "WorkAlarm" not in health["resources"], "alarms have no local meaning"
    assert set(health["pollers"]) == {
        "Work -> WorkerFunction",
        "Batches -> WorkerFunction",
        "Changes -> StreamFunction",
    }
    assert health["schedules"] is False
    assert health["clock"]["offset_seconds"] >= 0 and health["clock"]["now"].endswith("Z")
    assert health["demo"]["status"].startswith("skipped")


def test_unknown_route_is_a_json_404_and_wrong_method_a_405(fx):
    missing = fx.get("/nothing/here")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong = fx.http.delete(f"{fx.base_url}/public/ana")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"
    assert wrong.headers["Allow"] == "GET, POST"


def test_the_proxy_event_and_the_response_mapping(fx):
    response = fx.get("/public/ana", params=[("x", "1"), ("x", "2"), ("status", "201")], headers={"X-Custom": "value"})
    assert response.status_code == 201
    assert response.headers["X-Echo"] == "yes"
    assert response.raw.headers.getlist("Set-Cookie") == ["a=1", "b=2"], "multiValueHeaders keep every value"
    seen = response.json()
    assert seen["resource"] == seen["resourcePath"] == "/public/{name}"
    assert seen["path"] == "/public/ana" and seen["method"] == "GET"
    assert seen["pathParameters"] == {"name": "ana"}
    assert seen["query"]["x"] == "2" and seen["multiQuery"]["x"] == ["1", "2"]
    assert {"x-custom", "x-forwarded-for", "x-forwarded-proto"} <= set(seen["header_names"])
    assert seen["stage"] == "local" and seen["sourceIp"] == "127.0.0.1"
    assert seen["authorizer"] is None and seen["body"] is None
    assert seen["function_name"] == "rightsdesk-local-EchoFunction" and 0 < seen["remaining_ms"] <= 10_000
    assert seen["service_at_import"] == "echo", "a function's own variables are set while its module imports"


def test_environment_is_resolved_from_the_template(fx):
    env = fx.get("/public/env").json()["env"]
    assert env["STAGE_FLAG"] == "local-stage", "Stage is overridden to local"
    assert (
        env["SUBBED"]
        == "eu-central-1/123456789012/aws/local/arn:aws:sqs:eu-central-1:123456789012:rightsdesk-local-WorkQueue"
    )
    assert env["JOINED"] == "a-local-y" and env["DROPPED"] is None
    assert env["WORK_QUEUE_NAME"] == "rightsdesk-local-WorkQueue"
    assert env["WORK_QUEUE_URL"].startswith(fx.moto_url) and env["WORK_QUEUE_URL"].endswith(
        "/rightsdesk-local-WorkQueue"
    )
    assert env["SECRET_ARN"].startswith(
        "arn:aws:secretsmanager:eu-central-1:123456789012:secret:rightsdesk-local-FixtureSecret"
    )
    assert env["FIXTURE_TABLE"] == "rightsdesk-local-FixtureTable" and env["MAIL_SET"] == "rightsdesk-local-MailSet"
    assert env["RIGHTSDESK_STAGE"] == "local" and env["PUBLIC_BASE_URL"] == fx.base_url
    assert env["ALLOW_HTTP_WEBHOOKS"] == "true" and env["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert env["AWS_ENDPOINT_URL"] == fx.moto_url


def test_bodies_text_and_binary(fx):
    text = fx.post("/public/ana", data="héllo".encode(), headers={"Content-Type": "text/plain"}).json()
    assert text["body"] == "héllo" and text["isBase64Encoded"] is False
    raw = bytes(range(256))
    binary = fx.post("/public/ana", data=raw, headers={"Content-Type": "application/octet-stream"}).json()
    assert binary["isBase64Encoded"] is True and base64.b64decode(binary["body"]) == raw


def test_literal_segments_win_and_greedy_paths_match(fx):
    assert fx.get("/public/fixed").json()["resource"] == "/public/fixed"
    files = fx.http.put(f"{fx.base_url}/files/a/b/c.txt").json()
    assert files["resource"] == "/files/{path+}" and files["pathParameters"] == {"path": "a/b/c.txt"}
    assert files["method"] == "PUT", "ANY takes every method"


def test_handler_failures_are_502_and_logged_by_type_only(fx):
    boom = fx.get("/public/boom")
    assert boom.status_code == 502
    assert boom.json()["error"]["code"] == "internal_error"
    malformed = fx.get("/public/malformed")
    assert malformed.status_code == 502 and malformed.json()["error"]["code"] == "bad_gateway"
    unavailable = fx.get("/broken")
    assert unavailable.status_code == 502 and unavailable.json()["error"]["code"] == "function_unavailable"
    logs = eventually(lambda: "RuntimeError" in fx.logs() and fx.logs())
    assert "EchoFunction raised RuntimeError at functions/echo/app.py:" in logs, (
        "type and place, relative to the template"
    )
    assert "boom-secret@example.org" not in logs, "exception messages never reach the log"
    assert "/public/boom" not in logs, "request paths are not logged, only route templates"


# ---------------------------------------------------------------------------------------- authorizer
def test_authorizer_allows_denies_and_caches(fx):
    private = f"{fx.base_url}/private/42"
    assert requests.get(private).status_code == 401, "no identity header: 401 without calling the authorizer"
    refused = requests.get(private, headers={"Authorization": "Bearer nonsense"})
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "fixture: a token is required", "the API's GatewayResponses apply"
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    denied = requests.get(private, headers={"Authorization": "Bearer deny"})
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"

    tenant = uuid.uuid4().hex[:8]
    first = requests.get(private, headers={"Authorization": f"Bearer allow-{tenant}"})
    assert first.status_code == 200
    context = first.json()["authorizer"]
    assert context["tenant"] == tenant and context["principalId"] == f"user-{tenant}"
    assert context["admin"] == "false", "REST APIs pass authorizer context values as strings"
    again = requests.post(f"{fx.base_url}/private/43", headers={"Authorization": f"Bearer allow-{tenant}"})
    assert again.status_code == 200
    assert again.json()["authorizer"]["calls"] == context["calls"], "the second request used the cached policy"

    narrow = {"Authorization": "Bearer narrow"}
    assert requests.get(f"{fx.base_url}/private/7", headers=narrow).status_code == 200
    # The cached policy names only GET /private/7, and is evaluated against each request's method ARN.
    assert requests.post(f"{fx.base_url}/private/7", headers=narrow).status_code == 403
    assert requests.get(f"{fx.base_url}/private/8", headers=narrow).status_code == 403

    public = requests.get(f"{fx.base_url}/public/x", headers={"Authorization": "Bearer nonsense"})
    assert public.status_code == 200 and public.json()["authorizer"] is None, "Authorizer: NONE skips the default"


# ---------------------------------------------------------------------------------------- dev routes
def test_the_dev_clock(fx):
    start = fx.clock()
    moved = fx.advance_clock(3600)
    assert moved["offset_seconds"] == pytest.approx(start["offset_seconds"] + 3600)
    now = datetime.fromisoformat(moved["now"].replace("Z", "+00:00"))
    assert (now - datetime.now(timezone.utc)).total_seconds() > 3500
    backwards = fx.post("/_dev/clock", json={"advance_seconds": -5})
    assert backwards.status_code == 400 and backwards.json()["error"]["code"] == "bad_request"
    assert fx.post("/_dev/clock", json={}).status_code == 400
    assert fx.set_clock_offset(0)["offset_seconds"] == 0


def test_a_scheduled_function_runs_on_demand_and_reads_the_dev_clock(fx):
    before = fx.run("SweepFunction")
    assert before["function"] == "SweepFunction"
    result = before["result"]
    assert result["source"] == "aws.events" and result["detail_type"] == "Scheduled Event"
    assert result["stage"] == "local"
    fx.advance_clock(7200)
    after = fx.run("SweepFunction")["result"]
    assert after["offset_seconds"] - result["offset_seconds"] == pytest.approx(7200)
    fx.set_clock_offset(0)
    custom = fx.run("SweepFunction", event={"source": "custom"})["result"]
    assert custom["source"] == "custom", "an explicit event replaces the scheduled one"
    assert fx.post("/_dev/run/NoSuchFunction").status_code == 404
    assert fx.post("/_dev/run/BrokenFunction").status_code == 503


def test_the_outbox_lists_sent_emails_with_both_bodies_and_headers(fx):
    fx.clear_outbox()
    assert fx.run("MailerFunction")["result"] == {"sent": 2}, "a ScheduleV2 Input is the event"
    simple, raw = fx.outbox()
    assert simple["to"] == ["someone@example.org"] and simple["from"] == "sender@fixture.localhost"
    assert simple["subject"] == "Simple subject"
    assert simple["text"] == "plain text 123456" and simple["html"] == "<p>html 123456</p>"
    assert ["List-Unsubscribe", "<https://example.org/u>"] in simple["headers"]
    assert simple["configuration_set"] == "rightsdesk-local-MailSet"
    assert raw["subject"] == "Raw subject" and raw["to"] == ["someone@example.org"]
    assert raw["text"].strip() == "raw text part" and raw["html"].strip() == "<p>raw html part</p>"
    assert ["X-Fixture", "raw"] in raw["headers"]
    fx.clear_outbox()
    assert fx.outbox() == []
    assert "123456" not in fx.logs(), "email content never reaches the log"


def test_the_webhook_receiver_records_and_verifies(fx):
    receiver = fx.health()["demo"]["webhook_url"]
    assert fx.http.delete(f"{fx.base_url}/_dev/webhooks").status_code == 200
    payload = json.dumps({"type": "dsr.request.forwarded", "timestamp": "2026-01-01T00:00:00Z", "data": {"x": 1}})
    assert requests.post(receiver, data=payload).status_code == 204
    secret = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
    assert fx.post("/_dev/webhooks", json={"secret": secret}).json()["secret_set"] is True
    message_id, now = "msg_1", datetime.now(timezone.utc)
    signed = {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, now, payload),
    }
    assert requests.post(receiver, data=payload, headers=signed).status_code == 204
    forged = {**signed, "webhook-signature": "v1,AAAA"}
    assert requests.post(receiver, data=payload, headers=forged).status_code == 401
    deliveries = fx.webhooks()
    assert [d["verified"] for d in deliveries] == [None, True, False]
    assert deliveries[1]["body"]["type"] == "dsr.request.forwarded" and deliveries[1]["webhook_id"] == "msg_1"
    fx.post("/_dev/webhooks", json={"secret": None})


# ---------------------------------------------------------------------------------------- pollers
def test_sqs_partial_batch_failure_redelivers_only_the_failed_message(fx, fx_aws):
    sqs, dynamodb = fx_aws("sqs"), fx_aws("dynamodb")
    queue = sqs.get_queue_url(QueueName="rightsdesk-local-WorkQueue")["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName="rightsdesk-local-WorkDeadLetterQueue")["QueueUrl"]
    good, bad = f"ok-{uuid.uuid4().hex[:8]}", f"bad-{uuid.uuid4().hex[:8]}"
    sqs.send_message_batch(
        QueueUrl=queue,
        Entries=[
            {"Id": "1", "MessageBody": json.dumps({"id": good})},
            {"Id": "2", "MessageBody": json.dumps({"id": bad, "fail": True})},
        ],
    )

    def deliveries(message_id: str) -> int:
        item = dynamodb.get_item(
            TableName="rightsdesk-local-FixtureTable",
            Key={"pk": {"S": f"MSG#{message_id}"}, "sk": {"S": "deliveries"}},
            ConsistentRead=True,
        )
        return int(item.get("Item", {}).get("deliveries", {}).get("N", 0))

    # maxReceiveCount 2, visibility timeout 1 s: the failed message is tried twice, then moved to the DLQ.
    eventually(lambda: deliveries(bad) >= 2)
    dead = eventually(lambda: sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1).get("Messages"))
    assert json.loads(dead[0]["Body"])["id"] == bad
    time.sleep(1.5)  # past another visibility timeout: the successful message must not come back
    assert deliveries(good) == 1, "the message that succeeded was deleted"
    assert deliveries(bad) == 2
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
    assert good not in fx.logs() and bad not in fx.logs(), "message bodies are never logged"


def test_stream_records_are_filtered_and_delivered(fx, fx_aws):
    dynamodb = fx_aws("dynamodb")
    table = "rightsdesk-local-FixtureTable"
    wanted, other = f"EVT#{uuid.uuid4().hex[:8]}", f"OTHER#{uuid.uuid4().hex[:8]}"
    dynamodb.put_item(TableName=table, Item={"pk": {"S": other}, "sk": {"S": "x"}})
    dynamodb.put_item(TableName=table, Item={"pk": {"S": wanted}, "sk": {"S": "x"}})
    dynamodb.put_item(TableName=table, Item={"pk": {"S": wanted}, "sk": {"S": "x"}, "changed": {"BOOL": True}})

    def seen() -> set[str]:
        return {item["pk"]["S"] for item in scan(dynamodb, table) if item["pk"]["S"].startswith("SEEN#")}

    eventually(lambda: f"SEEN#{wanted}" in seen())
    fx.drain()  # the other records were in the same or an earlier batch: handed on by now
    marks = [i for i in scan(dynamodb, table) if i["pk"]["S"] == f"SEEN#{wanted}"]
    assert [m["sk"]["S"] for m in marks] == ["INSERT"], "the MODIFY is filtered out"
    assert marks[0]["source"]["S"].startswith("arn:aws:dynamodb:")
    assert f"SEEN#{other}" not in seen(), "a key outside the prefix is filtered out"


def test_a_stream_batch_that_keeps_failing_goes_to_the_on_failure_queue(fx, fx_aws):
    dynamodb, sqs = fx_aws("dynamodb"), fx_aws("sqs")
    failures = sqs.get_queue_url(QueueName="rightsdesk-local-StreamFailureQueue")["QueueUrl"]
    key = f"EVT#{uuid.uuid4().hex[:8]}"
    dynamodb.put_item(
        TableName="rightsdesk-local-FixtureTable",
        Item={"pk": {"S": key}, "sk": {"S": "x"}, "explode": {"S": "subject@example.org"}},
    )
    messages = eventually(lambda: sqs.receive_message(QueueUrl=failures, WaitTimeSeconds=1).get("Messages"))
    record = json.loads(messages[0]["Body"])
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2, "MaximumRetryAttempts: 1"
    info = record["DDBStreamBatchInfo"]
    assert info["batchSize"] == 1 and info["streamArn"].startswith("arn:aws:dynamodb:")
    assert "subject@example.org" not in messages[0]["Body"], "coordinates only, never the records"
    assert "subject@example.org" not in fx.logs()


# ---------------------------------------------------------------------------------------- process behaviour
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _local(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "local", "--template", str(FIXTURE_TEMPLATE), "--no-schedules", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    "flag, env_var",
    [
        ("--port", "RIGHTSDESK_LOCAL_PORT"),
        ("--moto-port", "RIGHTSDESK_LOCAL_MOTO_PORT"),
        ("--receiver-port", "RIGHTSDESK_LOCAL_RECEIVER_PORT"),
    ],
)
def test_a_busy_port_is_a_one_line_error_and_exit_code_2(flag, env_var):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        ports = {"--port": free_port(), "--moto-port": free_port(), "--receiver-port": free_port(), flag: port}
        started = time.monotonic()
        result = _local(*[str(part) for pair in ports.items() for part in pair], timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"port {port}" in lines[0] and env_var in lines[0] and flag in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert time.monotonic() - started < 15


def test_sigint_stops_everything_cleanly(launch_stack):
    running = launch_stack("--template", str(FIXTURE_TEMPLATE))
    assert running.get("/public/x").status_code == 200
    container = running.get("/slow").json()["pid"]
    started = time.monotonic()
    running.process.send_signal(signal.SIGINT)
    assert running.process.wait(timeout=10) == 0
    assert time.monotonic() - started < 3, "stops within a couple of seconds"
    logs = running.logs()
    assert "rightsdesk local: stopped" in logs and "Traceback" not in logs
    for port in (running.base_url, running.moto_url, running.receiver_url):
        with pytest.raises(requests.ConnectionError):
            requests.get(port, timeout=1)
    assert eventually(lambda: not _alive(container)), "no container outlives its stack"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_sigterm_stops_too(launch_stack):
    running = launch_stack("--template", str(FIXTURE_TEMPLATE))
    running.process.send_signal(signal.SIGTERM)
    assert running.process.wait(timeout=10) == 0


def test_moto_leaves_with_a_killed_runner(launch_stack):
    """moto runs in a process of its own; a runner that dies without cleaning up (SIGKILL, an OOM kill)
    must not leave it holding the port for the next `make run`."""
    running = launch_stack("--template", str(FIXTURE_TEMPLATE))
    assert requests.get(running.moto_url + "/moto-api/", timeout=5).status_code == 200
    running.process.send_signal(signal.SIGKILL)
    running.process.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            requests.get(running.moto_url + "/moto-api/", timeout=1)
        except requests.ConnectionError:
            return
        time.sleep(0.1)
    pytest.fail("moto's process outlived the runner")


# ---------------------------------------------------------------------------------------- the repo's template
def test_the_repo_template_starts_with_the_demo_controller(stack, table):
    health = stack.health()
    handlers = {p.parent.name for p in (REPO / "functions").glob("*/app.py")}
    if "public_api" in handlers:
        assert "PublicApiFunction" in health["functions"]["loaded"], health["functions"]
    assert health["demo"]["status"] == "registered"
    assert stack.demo_api_key and stack.demo_api_key.startswith("rdk_")
    controller = table.get_item(Key={"pk": "CTRL#ctl_demo", "sk": "CONTROLLER"}).get("Item")
    assert controller and controller["site_key"] == "demo" and controller["delivery"] == "webhook"
    assert controller["webhook_url"] == health["demo"]["webhook_url"]
    assert "demo.localhost" in controller["domains"]
    assert stack.demo_api_key not in json.dumps(controller, default=str), "only the key's hash is stored"
    for site in ("demo", "demo.localhost"):
        assert table.get_item(Key={"pk": f"SITE#{site}", "sk": "SITE"})["Item"]["controller_id"] == "ctl_demo"
    assert {"MailQueue -> NotifierFunction", "Mail -> NotifierFunction"} & set(health["pollers"])


def test_the_repo_template_serves_the_form_through_its_handler(stack):
    if not (REPO / "functions" / "public_api" / "app.py").exists():
        pytest.skip("functions/public_api/app.py does not exist yet")
    response = stack.get("/", headers={"Accept": "text/html"})
    assert response.status_code == 200, response.text[:300]
    assert response.headers["Content-Type"].startswith("text/html")


def test_drain_answers_once_what_was_queued_has_been_handled(fx, fx_aws):
    sqs, dynamodb = fx_aws("sqs"), fx_aws("dynamodb")
    queue = sqs.get_queue_url(QueueName="rightsdesk-local-WorkQueue")["QueueUrl"]
    message_id = f"drain-{uuid.uuid4().hex[:8]}"
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"id": message_id}))

    fx.drain()  # no polling in the test: the answer itself says the poller has handed it on

    item = dynamodb.get_item(
        TableName="rightsdesk-local-FixtureTable",
        Key={"pk": {"S": f"MSG#{message_id}"}, "sk": {"S": "deliveries"}},
        ConsistentRead=True,
    )
    assert int(item["Item"]["deliveries"]["N"]) == 1


# ---------------------------------------------------------------------------------------- containers
def _overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals running at one moment."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def _concurrently(count: int, call) -> list:
    results: list = [None] * count

    def one(index: int) -> None:
        results[index] = call()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_concurrent_requests_run_in_containers_of_their_own_up_to_the_reserved_concurrency(fx):
    answers = _concurrently(5, lambda: fx.get("/slow", params={"seconds": "0.8"}))
    assert all(answer.status_code == 200 for answer in answers), [a.text for a in answers]
    runs = [answer.json() for answer in answers]
    assert _overlap([(run["started"], run["ended"]) for run in runs]) == 2, (
        "two invocations ran at once (two containers), never three (ReservedConcurrentExecutions: 2)"
    )
    assert len({run["pid"] for run in runs}) == 2, "each container is a process of its own"
    assert fx.health()["functions"]["containers"]["SlowFunction"]["running"] <= 2
    served = sorted(run["served_here"] for run in runs)
    assert sum(1 for n in served if n == 1) <= 2, "a container imports once and serves invocation after invocation"


def test_a_function_running_past_its_timeout_is_stopped_and_replaced(fx):
    started = time.monotonic()
    late = fx.get("/slow", params={"seconds": "30"})
    assert late.status_code == 502 and late.json()["error"]["code"] == "internal_error"
    assert time.monotonic() - started < 10, "stopped at its Timeout (2 s), not when the handler was done"
    assert "SlowFunction timed out after 2 s" in eventually(lambda: "timed out" in fx.logs() and fx.logs())
    assert fx.get("/slow").status_code == 200, "the next invocation gets a fresh container"


def test_queue_batches_are_handled_at_once_and_drain_waits_for_them(fx, fx_aws):
    sqs, dynamodb = fx_aws("sqs"), fx_aws("dynamodb")
    queue = sqs.get_queue_url(QueueName="rightsdesk-local-BatchQueue")["QueueUrl"]
    ids = [f"conc-{uuid.uuid4().hex[:8]}" for _ in range(8)]
    for message_id in ids:  # one by one: the poller picks up batches while earlier ones still run
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"id": message_id, "seconds": 0.4}))

    fx.drain()  # answers only once every batch in flight has been answered, not when it was received

    handled = []
    for message_id in ids:
        item = dynamodb.get_item(
            TableName="rightsdesk-local-FixtureTable",
            Key={"pk": {"S": f"MSG#{message_id}"}, "sk": {"S": "deliveries"}},
            ConsistentRead=True,
        )["Item"]
        assert int(item["deliveries"]["N"]) == 1, "each message handled once"
        handled.append(item["handled_by"]["N"])
    assert len(set(handled)) >= 2, "batches ran in more than one container at once"


def test_an_unknown_parameter_override_is_a_one_line_error_and_exit_code_2():
    ports = ("--port", free_port(), "--moto-port", free_port(), "--receiver-port", free_port())
    result = _local(
        *map(str, ports), "--parameter-overrides", "Sender=ops@example.org", "NoSuchParameter=1", timeout=30
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["rightsdesk local: the template has no parameter NoSuchParameter"]
