"""Offboarding a controller: disable, enable, remove; what happens to its key, its sites, its open
requests and their deliveries, and that every step is on its audit trail."""

from __future__ import annotations

import json

import pytest
from moto import mock_aws
from typer.testing import CliRunner

from rightsdesk.intake import submissions
from rightsdesk.intake.submissions import Submission
from rightsdesk.kernel import clock, retention
from rightsdesk.kernel.errors import Conflict, SiteUnavailable, UnknownSite
from rightsdesk.outbound import dispatch
from rightsdesk.platform import aws_clients, config, hashing, sealing
from rightsdesk.routing import controller_lookup, registry, takeover
from rightsdesk.routing.delivery import DeliveryMessage
from rightsdesk_cli.main import app
from tests.support.aws import drain_queue, made, moto_cloud, verification_code

REGION = "eu-central-1"
BASE_URL = "https://privacy.example.com"


@pytest.fixture(scope="module")
def cloud():
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        world = moto_cloud(
            patch,
            "rightsdesk-offboarding",
            data_key=True,
            region=REGION,
            env={"PUBLIC_BASE_URL": BASE_URL, "RIGHTSDESK_STACK": None},
            no_scans="offboarding must not scan the table",
        )
        yield world
        aws_clients.forget_clients()
        sealing.forget_clients()
    config.reload()


@pytest.fixture(autouse=True)
def restore_clock():
    yield
    clock.set_offset(0)


def drain(cloud, queue: str) -> list[dict]:
    return drain_queue(cloud.session, cloud.queues[queue])


def new_controller(delivery: str = "pull") -> registry.NewController:
    site = hashing.new_id("s").split("_")[1]
    return registry.register(
        name="Acme",
        site_key=f"acme-{site}",
        contact_email=f"dpo-{site}@acme.example",
        delivery=delivery,
        domains=(f"{site}.acme.example",),
    )


def submit(created: registry.NewController, site: str | None = None) -> str:
    submission = Submission(
        site=site or created.controller.site_key, type="access", email="ana@example.org", name="Ana Novak"
    )
    return submissions.submit(submission, locale="en").request_id


def verified(cloud, created: registry.NewController) -> str:
    request_id = submit(created)
    submissions.verify(request_id, verification_code(cloud.session, cloud.queues["MailQueue"], request_id))
    drain(cloud, "MailQueue")
    drain(cloud, "DeliveryQueue")
    return request_id


def route(request_id: str) -> dict:
    message = DeliveryMessage.from_body({"request_id": request_id, "event": "route"}, message_id=hashing.new_id("m"))
    return dispatch.dispatch(message, attempt=1)


def actions(cloud, controller_id: str) -> list[tuple[str, str | None]]:
    return [(e.action, e.cause) for e in reversed(registry.history(controller_id, 50))]


def run(*args: str):
    return CliRunner(env={"COLUMNS": "200"}).invoke(app, list(args))


# ------------------------------------------------------------------ disable / enable


def test_a_disabled_controllers_key_stops_and_comes_back_with_enable(cloud):
    created = new_controller()
    cid = created.controller.controller_id
    assert registry.authenticate(created.api_key) is not None

    registry.disable(cid, reason="unpaid invoice")
    assert registry.authenticate(created.api_key) is None
    registry.enable(cid)
    assert registry.authenticate(created.api_key).controller_id == cid
    assert actions(cloud, cid)[-2:] == [("controller_disabled", "unpaid invoice"), ("controller_enabled", None)]


@pytest.mark.parametrize("offboard", ["disable", "remove"])
def test_new_submissions_for_its_sites_get_site_unavailable_and_store_nothing(cloud, offboard):
    created = new_controller()
    getattr(registry, offboard)(created.controller.controller_id)
    for site in (created.controller.site_key, created.controller.domains[0]):
        with pytest.raises(SiteUnavailable) as refused:
            submit(created, site=site)
        assert refused.value.status == 422 and refused.value.fields == {"site": "site_unavailable"}
    assert drain(cloud, "MailQueue") == []  # no code went out


def test_released_sites_are_unknown_and_free_for_another_controller(cloud):
    created = new_controller()
    registry.remove(created.controller.controller_id, release_sites=True)
    with pytest.raises(UnknownSite):
        submit(created)
    again = registry.register(
        name="Acme 2", site_key=created.controller.site_key, contact_email="dpo@acme2.example", delivery="email"
    )
    assert controller_lookup.resolve_site(created.controller.site_key).controller_id == again.controller.controller_id


def test_open_requests_of_a_disabled_controller_are_delivered_by_email_and_stay_due(cloud):
    created = new_controller(delivery="pull")
    request_id = verified(cloud, created)
    due = submissions.load_request(request_id).due_at
    registry.disable(created.controller.controller_id)

    outcome = route(request_id)

    # by email: delivered once SES accepts the mail (the notifier records it), due date unchanged
    assert outcome["result"] == "mail_queued"
    request = submissions.load_request(request_id)
    assert request.status == "forwarded" and request.due_at == due
    mails = [m for m in drain(cloud, "MailQueue") if m.get("kind") == "request_forwarded"]
    assert [made(m).to for m in mails] == [created.controller.contact_email]


def test_disable_twice_and_enable_after_remove_are_conflicts(cloud):
    created = new_controller()
    cid = created.controller.controller_id
    registry.disable(cid)
    with pytest.raises(Conflict):
        registry.disable(cid)
    registry.remove(cid)
    for step in (registry.enable, registry.remove, registry.rotate_api_key):
        with pytest.raises(Conflict):
            step(cid)


# ------------------------------------------------------------------ remove


def test_remove_deletes_the_credentials_and_is_audited(cloud):
    created = new_controller(delivery="pull")
    cid = created.controller.controller_id
    registry.remove(cid, reason="contract ended")
    controller = controller_lookup.get_controller(cid)
    assert registry.authenticate(created.api_key) is None
    assert controller.api_key_hash is None and controller.webhook_secret_sealed is None
    assert registry.describe(controller)["state"] == "removed"
    assert actions(cloud, cid)[-1] == ("controller_removed", "contract ended")


def test_a_removed_controller_gets_no_delivery_and_the_operator_answers(cloud):
    created = new_controller(delivery="pull")
    cid = created.controller.controller_id
    never_routed = verified(cloud, created)
    forwarded = verified(cloud, created)
    assert route(forwarded)["result"] == "awaiting_pull"
    registry.remove(cid)

    assert route(never_routed)["result"] == "controller_removed"
    assert submissions.load_request(never_routed).status == "verified"  # still open, still due
    assert drain(cloud, "MailQueue") == []

    for request_id in (never_routed, forwarded):
        answered = takeover.answer(request_id, "rejected", reason="the site left the platform")
        assert answered.status == "rejected"
        # taken over = delivered to the operator: the subject's fields get a delivery's purge clock
        assert answered.delivered_at is not None
        assert answered.retention_rule == retention.Rule.DELIVERED_SUBJECT_DATA.value
    told = [m for m in drain(cloud, "MailQueue") if m.get("kind") == "status_changed"]
    assert len(told) == 2


def test_the_operator_cannot_answer_for_an_active_controller(cloud):
    created = new_controller(delivery="pull")
    request_id = verified(cloud, created)
    with pytest.raises(Conflict) as refused:
        takeover.answer(request_id, "completed")
    assert refused.value.code == "controller_not_removed"


def test_the_cli_offboards_and_answers(cloud):
    created = new_controller(delivery="email")
    cid = created.controller.controller_id
    request_id = verified(cloud, created)

    disabled = run("--json", "controllers", "disable", cid, "--reason", "audit")
    assert disabled.exit_code == 0, disabled.output
    assert json.loads(disabled.stdout)["controller"]["state"] == "disabled"
    listed = json.loads(run("--json", "controllers", "list").stdout)["controllers"]
    assert {row["controller_id"]: row["state"] for row in listed}[cid] == "disabled"
    assert json.loads(run("--json", "controllers", "enable", cid).stdout)["controller"]["state"] == "active"

    removed = run("--json", "controllers", "remove", cid, "--yes")
    assert removed.exit_code == 0, removed.output
    assert json.loads(removed.stdout)["open_requests"] == [request_id]

    answered = run("--json", "requests", "answer", request_id, "--status", "completed")
    assert answered.exit_code == 0, answered.output
    assert json.loads(answered.stdout)["request"]["status"] == "completed"
    history = json.loads(run("--json", "controllers", "history", cid).stdout)["events"]
    assert [e["action"] for e in history][:3] == ["controller_removed", "controller_enabled", "controller_disabled"]


def test_rejecting_needs_a_reason(cloud):
    created = new_controller()
    request_id = verified(cloud, created)
    registry.remove(created.controller.controller_id)
    result = run("--json", "requests", "answer", request_id, "--status", "rejected")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["code"] == "invalid_input" and "reject" in result.stdout


@pytest.mark.parametrize(
    "locale, words",
    [
        ("en", "does not take requests through this service"),
        ("de", "nimmt derzeit keine Anfragen"),
        ("sl", "trenutno ne sprejema zahtev"),
    ],
)
def test_the_form_says_site_unavailable_in_the_subjects_language(locale, words):
    from rightsdesk.render import web

    html = web.render_page("form", locale, values={"site": "acme"}, errors={"site": "site_unavailable"})
    assert words in html


def test_the_controller_api_refuses_a_disabled_key_even_after_the_authorizer_let_it_through(cloud):
    # API Gateway caches the authorizer's allow for minutes; the handler's own check must close the gap.
    from rightsdesk.kernel.errors import Unauthorized
    from rightsdesk.routing import controller_requests

    created = new_controller()
    cid = created.controller.controller_id
    assert controller_requests.caller(cid, created.api_key).controller_id == cid
    registry.disable(cid)
    with pytest.raises(Unauthorized):
        controller_requests.caller(cid, created.api_key)
