"""Deadlines tell the truth, through the local runner: an extension is mailed to the subject in their
language with its date and reason while rightsdesk holds their address; after the purge the status
API and page show the new date and the controller is told that informing the subject is now its
job (Art. 12(3)); a due date that passed cannot be extended; reminders keep going while a request
is overdue, each once however often the watch runs; breach errors name the rule that refused."""

from __future__ import annotations

import os
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from rightsdesk.kernel import clock
from rightsdesk.render import i18n
from tests.support.flows import Flow, wait_for
from tests.support.stack import CLI, OwnController, deliveries_to

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
OPERATOR = "privacy@example.com"  # the template's OperatorEmail default
REASON = "Wir müssen drei Archive durchsuchen."


def _now(stack) -> datetime:
    return clock.parse_iso(stack.clock()["now"])


def _delivered(stack, flow: Flow, **fields) -> dict:
    verified = flow.submit_and_verify(**fields)
    wait_for(lambda: flow.status(verified["request_id"]) == "delivered", "the controller's webhook delivery")
    return verified


def _extend(stack, controller: OwnController, request_id: str, until: datetime, **body):
    return stack.post(
        f"/v1/controller/requests/{request_id}/status",
        headers=controller.auth,
        json={"reason": REASON, "extend_to": clock.isoformat(until), **body},
    )


def test_an_extension_reaches_the_subject_then_after_the_purge_the_controller_is_told_it_is_theirs(
    stack, own_controller
):
    flow = Flow(stack, own_controller.site)
    request = _delivered(stack, flow, locale="de")
    request_id, due = request["request_id"], clock.parse_iso(request["due_at"])
    first = due + timedelta(days=10)

    answer = _extend(stack, own_controller, request_id, first)  # no status: the request stays delivered
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "delivered" and answer.json()["due_at"] == clock.isoformat(first)
    assert answer.json()["subject_notification"]["by"] == "rightsdesk"
    mail = wait_for(
        lambda: next((m for m in stack.outbox() if request["email"] in str(m["to"]) and "Frist" in m["subject"]), None),
        "the extension mail",
    )
    assert mail["subject"] == "Die Frist für Ihre Datenschutzanfrage wurde verlängert"
    text = " ".join(mail["text"].split())
    assert " ".join(i18n.format_datetime(first, "de").split()) in text and REASON in text

    stack.advance_clock(3700)  # the subject's address is purged one hour after delivery
    stack.run("RetentionFunction")
    wait_for(lambda: (flow.item(request_id) or {}).get("personal_purged_at"), "the purge after delivery")
    stack.clear_outbox()
    second = first + timedelta(days=10)
    answer = _extend(stack, own_controller, request_id, second, status="in_progress")
    assert answer.status_code == 200, answer.text
    notification = answer.json()["subject_notification"]
    assert notification["by"] == "controller" and notification["rule"] == "GDPR Art. 12(3)"
    assert "now yours" in notification["message"]
    stack.drain()
    assert not [m for m in stack.outbox() if request["email"] in str(m["to"])], "the address is gone: no mail"

    token = {"Authorization": f"Bearer {request['status_token']}", "Accept": "application/json"}
    view = stack.get(f"/v1/requests/{request_id}", headers=token).json()
    assert view["due_at"] == clock.isoformat(second)
    page = stack.get(f"/status/{request_id}?token={request['status_token']}&lang=de")
    assert f'datetime="{clock.isoformat(second)}"' in page.text


def test_a_passed_due_date_cannot_be_extended_and_reminders_keep_going_once_each(stack, own_controller):
    flow = Flow(stack, own_controller.site)
    request = _delivered(stack, flow)
    request_id, due = request["request_id"], clock.parse_iso(request["due_at"])
    stack.advance_clock((due - _now(stack)).total_seconds() + 3600)  # an hour past the due date

    refused = _extend(stack, own_controller, request_id, due + timedelta(days=20), status="in_progress")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "due_date_passed"
    assert flow.status(request_id) == "delivered", "nothing changed"

    def overdue_events() -> list[dict]:
        return [
            e["body"]["data"]
            for e in deliveries_to(stack, own_controller, "dsr.request.overdue")
            if e["body"]["data"]["request_id"] == request_id
        ]

    for _ in range(2):  # two runs in the same period send it once
        assert stack.run("DeadlineWatchFunction")["result"]["overdue"] >= 1
    stack.drain()
    assert [(e["notice"], e.get("reminder")) for e in overdue_events()] == [("overdue", 1)]

    stack.advance_clock(4 * 86400)
    stack.run("DeadlineWatchFunction")
    stack.run("DeadlineWatchFunction")
    stack.drain()
    assert [e.get("reminder") for e in overdue_events()] == [1, 2]

    stack.clear_outbox()
    stack.advance_clock(3 * 86400)  # a week overdue: the operator's digest, once
    stack.run("DeadlineWatchFunction")
    stack.run("DeadlineWatchFunction")
    stack.drain()
    digests = [
        m for m in stack.outbox() if OPERATOR in str(m["to"]) and "overdue" in m["subject"] and request_id in m["text"]
    ]
    assert len(digests) == 1 and request["email"] not in digests[0]["text"]
    listed = subprocess.run(
        [*CLI, "--local", "requests", "list", "--overdue", "--json", "--controller", own_controller.controller_id],
        capture_output=True,
        text=True,
        timeout=120,
        env=_cli_env(stack),
        cwd=REPO,
    )
    assert request_id in listed.stdout


def _cli_env(stack) -> dict:
    env = {
        **os.environ,
        "RIGHTSDESK_LOCAL_MOTO_URL": stack.moto_url,
        "RIGHTSDESK_LOCAL_URL": stack.base_url,
        "COLUMNS": "200",
    }
    for name in (
        "AWS_ENDPOINT_URL",
        "AWS_PROFILE",
        "RIGHTSDESK_TABLE",
        "RIGHTSDESK_STACK",
        "RIGHTSDESK_DEBUG",
        "MAIL_QUEUE_URL",
        "DELIVERY_QUEUE_URL",
        "HASH_KEY_SECRET_ARN",
    ):
        env.pop(name, None)
    return env


@pytest.mark.parametrize(
    "args, rule",
    [
        (["--detected-at", "2020-01-01T00:00:00Z"], "GDPR Art. 33(1)"),
        (["--detected-at", "2999-01-01T00:00:00Z"], "lies in the future"),
        (["--detected-at", "now", "--notify-subjects"], "GDPR Art. 34(1)"),
    ],
)
def test_breach_cli_errors_name_the_rule_that_refused(stack, args, rule):
    result = subprocess.run(
        [
            *CLI,
            "--local",
            "breach",
            "declare",
            "--summary",
            "Chat logs were readable.",
            "--categories",
            "chat_history",
            "--controllers",
            "ctl_demo",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=_cli_env(stack),
        cwd=REPO,
    )
    assert result.returncode == 1 and rule in " ".join(result.stderr.split()), result.stdout + result.stderr
