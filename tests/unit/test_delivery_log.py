"""The delivery log, redelivery and the endpoint's state, against moto in-process with a real HTTP
endpoint (the dispatcher's fixtures): every attempt logged with its outcome and nothing personal,
pages newest first, 90 days, a controller's own deliveries only, a redelivery queued once and
refused once the personal fields are purged, a 410 disabling the endpoint until a test enables it."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from rightsdesk.kernel import clock, retention
from rightsdesk.kernel.errors import Conflict, InvalidInput, NotFound
from rightsdesk.outbound import dispatch
from rightsdesk.platform import webhooks
from rightsdesk.routing import controller_lookup, delivery_log, registry
from rightsdesk.routing.delivery import DeliveryMessage, Exhausted, RetryLater
from rightsdesk.store.items.deliveries import DeliveryAttemptItem
from tests.unit import test_dispatch as dispatch_world
from tests.unit.test_dispatch import Endpoint, controller, verified

# The dispatcher's moto world and real HTTP endpoint, reset before each test.
cloud = dispatch_world.cloud
fresh = dispatch_world.fresh

ROUTE = "route"


def route(request, **extra) -> DeliveryMessage:
    return DeliveryMessage.from_body({"request_id": request.request_id, "event": ROUTE, **extra}, message_id="m")


def log_of(created, **filters) -> list[dict]:
    page, _ = delivery_log.list_page(created.controller.controller_id, delivery_log.Filters(**filters), limit=100)
    return page


def fail_once(request, status: int = 503) -> None:
    Endpoint.script = [status]
    with pytest.raises(RetryLater):
        dispatch.dispatch(route(request), attempt=1)


def queued(cloud) -> list[dict]:
    return cloud.drain("DeliveryQueue")


# ------------------------------------------------------------------ the log


def test_a_delivered_attempt_is_logged_with_its_status_latency_and_the_webhook_id_the_receiver_saw(cloud):
    created = controller(cloud)
    request = verified(cloud, created)

    assert dispatch.dispatch(route(request), attempt=1)["result"] == "delivered"

    [attempt] = log_of(created)
    assert attempt["webhook_id"] == Endpoint.received[0]["headers"]["webhook-id"]
    assert attempt == {
        **attempt,
        "event_type": "dsr.request.forwarded",
        "request_id": request.request_id,
        "attempt": 1,
        "outcome": "delivered",
        "http_status": 204,
        "error_class": None,
        "redelivery": False,
    }
    assert isinstance(attempt["latency_ms"], int) and attempt["latency_ms"] >= 0


def test_failed_attempts_are_logged_as_retrying_then_exhausted_and_filter_by_status(cloud):
    created = controller(cloud)
    request = verified(cloud, created)
    fail_once(request, 503)
    Endpoint.script = [404]
    with pytest.raises(Exhausted):
        dispatch.dispatch(route(request), attempt=12, max_attempts=12)

    attempts = log_of(created)
    assert [(a["attempt"], a["outcome"], a["http_status"], a["error_class"]) for a in attempts] == [
        (12, "exhausted", 404, "http_4xx"),  # newest first
        (1, "retrying", 503, "http_5xx"),
    ]
    assert [a["attempt"] for a in log_of(created, status="retrying")] == [1]
    assert log_of(created, event_type="dsr.request.cancelled") == []


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (webhooks.SendResult(status=200), None),
        (webhooks.SendResult(status=302), "http_3xx"),
        (webhooks.SendResult(status=429), "http_4xx"),
        (webhooks.SendResult(status=410), "gone"),
        (webhooks.SendResult(status=502), "http_5xx"),
        (webhooks.SendResult(failure="timeout"), "timeout"),
        (webhooks.SendResult(failure="connection"), "connection"),
        (webhooks.SendResult(failure="tls"), "tls"),
        (webhooks.SendResult(failure="refused_address"), "ssrf_refused"),
        (webhooks.SendResult(failure="no_webhook_url"), "no_endpoint"),
    ],
)
def test_every_way_an_attempt_ends_has_one_error_class(result, expected):
    assert delivery_log.error_class(result) == expected


def test_pages_run_newest_first_and_a_cursor_continues_only_its_own_listing(cloud):
    created = controller(cloud)
    for _ in range(3):
        fail_once(verified(cloud, created))
    first, cursor = delivery_log.list_page(created.controller.controller_id, limit=2)
    second, end = delivery_log.list_page(created.controller.controller_id, cursor=cursor, limit=2)
    assert len(first) == 2 and len(second) == 1 and end is None
    times = [a["attempted_at"] for a in first + second]
    assert times == sorted(times, reverse=True)
    with pytest.raises(InvalidInput):
        delivery_log.list_page(created.controller.controller_id, delivery_log.Filters(status="failed"), cursor=cursor)
    other = controller(cloud)
    with pytest.raises(InvalidInput):
        delivery_log.list_page(other.controller.controller_id, cursor=cursor)


def test_a_period_bounds_the_listing(cloud):
    created = controller(cloud)
    fail_once(verified(cloud, created))
    now = clock.now()
    assert len(log_of(created, since=now - timedelta(minutes=1))) == 1
    assert log_of(created, since=now + timedelta(minutes=1)) == []
    assert log_of(created, until=now - timedelta(minutes=1)) == []
    with pytest.raises(InvalidInput):
        log_of(created, since=now, until=now - timedelta(minutes=1))


def test_an_attempt_is_kept_90_days_by_its_own_rule_and_gone_from_reads_after(cloud):
    created = controller(cloud)
    fail_once(verified(cloud, created))
    [item] = DeliveryAttemptItem.query(
        DeliveryAttemptItem.key(created.controller.controller_id),
        DeliveryAttemptItem.sk.startswith(DeliveryAttemptItem.SK_PREFIX),
    )
    assert retention.rule(retention.Rule.DELIVERY_ATTEMPT).keep == timedelta(days=90)
    assert item.expires_at == retention.expires_at(retention.Rule.DELIVERY_ATTEMPT, item.at)
    clock.set_offset(91 * 86400)
    assert log_of(created) == [], "filtered on read: DynamoDB's TTL may be two days late"


def test_the_log_and_the_redelivery_messages_hold_no_personal_data(cloud):
    created = controller(cloud)
    request = verified(cloud, created)
    fail_once(request)
    webhook_id = log_of(created)[0]["webhook_id"]
    delivery_log.redeliver(created.controller, webhook_id)
    messages = queued(cloud)
    client = cloud.session.client("dynamodb")
    items = client.query(
        TableName=cloud.table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"DLOG#{created.controller.controller_id}"}},
    )["Items"]
    stored = json.dumps(items) + json.dumps(messages)
    assert items and messages
    for personal in ("ana@example.org", "Ana Novak", "chat on 3 May", cloud.endpoint, "/hook"):
        assert personal not in stored


@pytest.mark.parametrize(
    ("body", "about"),
    [
        ({"event": "cancelled"}, {"event_type": "dsr.request.cancelled"}),
        ({"event": "overdue", "notice": "overdue_2"}, {"event_type": "dsr.request.overdue", "notice": "overdue_2"}),
    ],
)
def test_notices_about_a_request_are_logged_with_what_they_are_about(cloud, body, about):
    created = controller(cloud)
    request = verified(cloud, created)
    message = DeliveryMessage.from_body({"request_id": request.request_id, **body}, message_id="m")
    Endpoint.script = [502]
    with pytest.raises(RetryLater):
        dispatch.dispatch(message, attempt=1)
    assert dispatch.dispatch(message, attempt=2)["result"] == "sent"
    attempts = log_of(created)
    assert [(a["outcome"], a["error_class"]) for a in attempts] == [("delivered", None), ("retrying", "http_5xx")]
    assert all(a == {**a, **about, "request_id": request.request_id} for a in attempts)
    assert delivery_log.redeliver(created.controller, attempts[0]["webhook_id"])["status"] == "queued"
    [again] = queued(cloud)
    assert DeliveryMessage.from_body(again, message_id="m2").delivery_id == message.delivery_id


def test_a_breach_notice_is_logged_by_its_incident_and_redelivered_though_it_was_delivered(cloud):
    created = controller(cloud)
    incident = dispatch_world.declare(created)
    cloud.drain("DeliveryQueue")
    cloud.drain("MailQueue")
    message = dispatch_world.breach_message(incident, created)
    assert dispatch.dispatch(message, attempt=1)["result"] == "sent"
    [attempt] = log_of(created, event_type="breach.notice")
    assert attempt == {**attempt, "incident_id": incident.incident_id, "request_id": None, "outcome": "delivered"}
    delivery_log.redeliver(created.controller, attempt["webhook_id"])
    [body] = queued(cloud)
    assert dispatch.dispatch(DeliveryMessage.from_body(body, message_id="m2"), attempt=1)["result"] == "sent"
    assert dispatch.dispatch(message, attempt=2)["result"] == "already_delivered", "the queue's own retry is not"
    assert [r["headers"]["webhook-id"] for r in Endpoint.received[-2:]] == [attempt["webhook_id"]] * 2


# ------------------------------------------------------------------ tenants


def test_a_controller_can_neither_list_nor_redeliver_another_controllers_deliveries(cloud):
    owner, other = controller(cloud), controller(cloud)
    fail_once(verified(cloud, owner))
    webhook_id = log_of(owner)[0]["webhook_id"]
    assert log_of(other) == []
    with pytest.raises(NotFound):
        delivery_log.redeliver(other.controller, webhook_id)
    assert queued(cloud) == []


# ------------------------------------------------------------------ redelivery


def test_a_redelivery_asked_twice_is_queued_once_and_sent_again_with_the_same_webhook_id(cloud):
    created = controller(cloud)
    request = verified(cloud, created)
    assert dispatch.dispatch(route(request), attempt=1)["result"] == "delivered"
    webhook_id = log_of(created)[0]["webhook_id"]

    first = delivery_log.redeliver(created.controller, webhook_id)
    second = delivery_log.redeliver(created.controller, webhook_id)

    assert (first["status"], second["status"]) == ("queued", "already_queued")
    assert first["redelivery_id"] == second["redelivery_id"]
    [body] = queued(cloud)
    assert body == {"event": "route", "request_id": request.request_id, "redelivery_id": first["redelivery_id"]}
    message = DeliveryMessage.from_body(body, message_id="m2")
    assert dispatch.dispatch(message, attempt=1)["result"] == "resent"
    assert [r["headers"]["webhook-id"] for r in Endpoint.received] == [webhook_id, webhook_id]
    assert [a["redelivery"] for a in log_of(created)] == [True, False]
    assert delivery_log.redeliver(created.controller, webhook_id)["status"] == "queued", "attempted: ask again"


def test_a_failed_delivery_redelivered_after_the_endpoint_is_fixed_is_delivered(cloud):
    created = controller(cloud)
    request = verified(cloud, created)
    fail_once(request)
    webhook_id = log_of(created)[0]["webhook_id"]
    delivery_log.redeliver(created.controller, webhook_id)
    [body] = queued(cloud)
    assert dispatch.dispatch(DeliveryMessage.from_body(body, message_id="m2"), attempt=1)["result"] == "delivered"
    assert [a["outcome"] for a in log_of(created)] == ["delivered", "retrying"]
    # The original message's retry finds it delivered: nothing is sent twice.
    assert dispatch.dispatch(route(request), attempt=2)["result"] == "already_delivered"
    assert len(Endpoint.received) == 2


def test_once_the_personal_fields_are_purged_nothing_personal_is_sent_again(cloud):
    created = controller(cloud)
    request = verified(cloud, created)
    dispatch.dispatch(route(request), attempt=1)
    webhook_id = log_of(created)[0]["webhook_id"]
    delivery_log.redeliver(created.controller, webhook_id)  # queued before the purge ...
    [body] = queued(cloud)
    clock.set_offset(2 * 3600)  # ... past the delivered request's hour

    with pytest.raises(Conflict) as refused:
        delivery_log.redeliver(created.controller, webhook_id)
    assert refused.value.code == "purged"
    assert refused.value.fields == {"email": "purged", "name": "purged", "details": "purged"}
    assert dispatch.dispatch(DeliveryMessage.from_body(body, message_id="m2"), attempt=1)["result"] == "purged"
    assert len(Endpoint.received) == 1, "the queued redelivery sent nothing"
    assert log_of(created)[0] == {**log_of(created)[0], "outcome": "failed", "error_class": "purged"}


def test_everything_that_failed_since_a_time_is_redelivered_up_to_the_cap(cloud, monkeypatch):
    created = controller(cloud)
    since = clock.now()
    failing = [verified(cloud, created) for _ in range(3)]
    for request in failing:
        fail_once(request)
    dispatch.dispatch(route(verified(cloud, created)), attempt=1)  # delivered: not redelivered
    monkeypatch.setattr(delivery_log, "MAX_BULK_REDELIVERY", 2)

    first = delivery_log.redeliver_failed(created.controller, since=since)
    second = delivery_log.redeliver_failed(created.controller, since=since)

    assert (len(first["queued"]), first["more"]) == (2, True)
    assert (len(second["queued"]), second["more"]) == (1, False), "those waiting for their redelivery left out"
    bodies = queued(cloud)
    assert sorted(b["request_id"] for b in bodies) == sorted(r.request_id for r in failing)
    assert delivery_log.redeliver_failed(created.controller, since=clock.now() + timedelta(seconds=1))["queued"] == []


def test_a_test_event_is_not_redelivered(cloud):
    created = controller(cloud)
    since = clock.now()
    test = DeliveryMessage.from_body(
        {"event": "test", "controller_id": created.controller.controller_id, "test_id": "tst_1"}, message_id="m"
    )
    Endpoint.script = [500]
    dispatch.dispatch(test, attempt=1)
    [attempt] = log_of(created)
    assert attempt["event_type"] == "webhook.test" and attempt["outcome"] == "failed"
    with pytest.raises(Conflict) as refused:
        delivery_log.redeliver(created.controller, attempt["webhook_id"])
    assert refused.value.code == "not_redeliverable"
    bulk = delivery_log.redeliver_failed(created.controller, since=since)
    assert (bulk["queued"], bulk["skipped"]) == ([], []), "a failed test is not even looked at"


# ------------------------------------------------------------------ the endpoint's state


def _disabled_by_410(cloud):
    created = controller(cloud)
    request = verified(cloud, created)
    Endpoint.script = [410]
    dispatch.dispatch(route(request), attempt=1)
    cloud.drain("MailQueue")
    return controller_lookup.get_controller(created.controller.controller_id), created


def _run_queued_test(cloud) -> dict:
    [body] = queued(cloud)
    assert body["enable"] == "1"
    return dispatch.dispatch(DeliveryMessage.from_body(body, message_id="m"), attempt=1)


def test_a_410_disables_the_endpoint_until_a_test_it_accepts_enables_it(cloud):
    stored, created = _disabled_by_410(cloud)
    state = delivery_log.endpoint_state(stored)
    assert (state["state"], state["disabled_reason"]) == ("disabled", "gone_410")
    assert state["last_attempt"]["error_class"] == "gone" and state["endpoint_host"] == "127.0.0.1"
    with pytest.raises(Conflict):
        delivery_log.redeliver(stored, state["last_attempt"]["webhook_id"])

    Endpoint.script = [500]
    delivery_log.ask_enable(stored)
    assert _run_queued_test(cloud)["result"] == "failed"
    assert delivery_log.endpoint_state(controller_lookup.get_controller(stored.controller_id))["state"] == "disabled"

    delivery_log.ask_enable(stored)
    assert _run_queued_test(cloud)["result"] == "enabled"
    enabled = controller_lookup.get_controller(stored.controller_id)
    assert delivery_log.endpoint_state(enabled)["state"] == "enabled"
    assert controller_lookup.delivery_route(enabled) == "webhook"
    assert [a["outcome"] for a in log_of(created, event_type="webhook.test")] == ["delivered", "failed"]
    actions = [(e["action"], e["actor"]) for e in cloud.audit(enabled.pk)]
    assert ("webhook_enabled", f"controller:{enabled.controller_id}") in actions
    with pytest.raises(Conflict) as refused:
        delivery_log.ask_enable(enabled)
    assert refused.value.code == "webhook_enabled"


def test_a_test_event_answered_410_disables_the_endpoint_as_any_delivery_does(cloud):
    created = controller(cloud)
    test = DeliveryMessage.from_body(
        {"event": "test", "controller_id": created.controller.controller_id, "test_id": "tst_410"}, message_id="m"
    )
    Endpoint.script = [410]
    dispatch.dispatch(test, attempt=1)
    stored = registry.get_controller(created.controller.controller_id)
    state = delivery_log.endpoint_state(stored)
    assert (state["state"], state["disabled_reason"]) == ("disabled", "gone_410")
    assert state["last_attempt"]["error_class"] == "gone"
    assert registry.delivery_route(stored) == "email"
    assert [m["kind"] for m in cloud.drain("MailQueue")] == ["webhook_disabled"]
    assert ("webhook_disabled", "http_410") in [(e["action"], e.get("cause")) for e in cloud.audit(stored.pk)]


def test_an_endpoint_the_operator_disabled_cannot_be_enabled_by_its_controller(cloud):
    created = controller(cloud)
    disabled = registry.disable(created.controller.controller_id, reason="contract ended")
    state = delivery_log.endpoint_state(disabled)
    assert (state["state"], state["disabled_reason"]) == ("disabled", "operator")
    with pytest.raises(Conflict) as refused:
        delivery_log.ask_enable(disabled)
    assert refused.value.code == "operator_disabled"
    assert queued(cloud) == []
    # Even a test message queued before the operator's switch does not enable it.
    stored, _ = _disabled_by_410(cloud)
    delivery_log.ask_enable(stored)
    registry.disable(stored.controller_id)
    assert _run_queued_test(cloud)["result"] == "not_webhook"
    assert controller_lookup.get_controller(stored.controller_id).webhook_disabled_reason == "gone_410"


def test_an_operator_setting_the_delivery_again_enables_the_endpoint(cloud):
    stored, _ = _disabled_by_410(cloud)
    changed, secret = registry.set_delivery(stored.controller_id, "webhook", webhook_url=cloud.endpoint)
    assert delivery_log.endpoint_state(changed)["state"] == "enabled" and secret is None


# ------------------------------------------------------------------ the operator's CLI


def test_the_cli_shows_the_same_log_through_the_same_function(cloud):
    from typer.testing import CliRunner

    from rightsdesk_cli.main import app

    created = controller(cloud)
    request = verified(cloud, created)
    fail_once(request)
    dispatch.dispatch(route(request), attempt=2)
    controller_id = created.controller.controller_id

    def run(*args: str):
        return CliRunner(env={"COLUMNS": "200"}).invoke(
            app, ["--json", "controllers", "deliveries", controller_id, *args]
        )

    everything = run()
    assert everything.exit_code == 0, everything.output
    assert json.loads(everything.output)["deliveries"] == log_of(created)
    retrying = json.loads(run("--status", "retrying").output)["deliveries"]
    assert [a["attempt"] for a in retrying] == [1]
    assert run("--status", "lost").exit_code != 0
    human = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["controllers", "deliveries", controller_id])
    assert "http_5xx" in human.output and "delivered" in human.output


def test_an_enabling_test_that_races_the_operators_disable_leaves_the_endpoint_disabled(cloud):
    stored, created = _disabled_by_410(cloud)
    read_before = controller_lookup.get_controller(stored.controller_id)
    registry.disable(stored.controller_id)  # between the dispatcher's read and its write
    message = DeliveryMessage(
        request_id="", event="test", controller_id=stored.controller_id, test_id="tst_r", enable=True
    )
    logged = delivery_log.attempt_of(message, stored.controller_id, attempt=1, outcome="delivered")
    assert delivery_log.enable_after_test(read_before, logged) is False
    assert controller_lookup.get_controller(stored.controller_id).webhook_disabled_reason == "gone_410"
    assert log_of(created, event_type="webhook.test")[0]["outcome"] == "delivered", "the attempt is still logged"


# ------------------------------------------------------------------ the queue message


@pytest.mark.parametrize(
    "body",
    [
        {"event": "route", "request_id": "dsr_1", "redelivery_id": "ana@example.org"},  # not an id
        {"event": "route", "request_id": "dsr_1", "redelivery_id": "x" * 80},
        {"event": "test", "controller_id": "ctl_1", "redelivery_id": "rdl_1"},  # a test is sent anew
    ],
)
def test_a_redelivery_message_names_a_short_id_and_never_a_test(body):
    with pytest.raises(ValueError):
        DeliveryMessage.from_body(body, message_id="m")


def test_a_redelivery_keeps_the_webhook_id_and_has_an_idempotency_key_of_its_own():
    first = DeliveryMessage.from_body({"event": "route", "request_id": "dsr_1"}, message_id="m1")
    again = DeliveryMessage.from_body(
        {"event": "route", "request_id": "dsr_1", "redelivery_id": "rdl_1"}, message_id="m2"
    )
    other = DeliveryMessage.from_body(
        {"event": "route", "request_id": "dsr_1", "redelivery_id": "rdl_2"}, message_id="m3"
    )
    assert first.delivery_id == again.delivery_id == other.delivery_id
    assert len({json.dumps(m.key()) for m in (first, again, other)}) == 3
    enabling = {"event": "test", "controller_id": "ctl_1", "test_id": "tst_1"}
    assert DeliveryMessage.from_body({**enabling, "enable": "1"}, message_id="m").enable
    assert not DeliveryMessage.from_body(enabling, message_id="m").enable
    assert not DeliveryMessage.from_body(
        {"event": "route", "request_id": "dsr_1", "enable": "1"}, message_id="m"
    ).enable
