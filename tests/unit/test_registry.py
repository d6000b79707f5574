"""The controller registry against moto in-process: credentials shown once and stored only as a
keyed hash or KMS ciphertext, rotations, delivery settings, audit events, and the yearly count
that flags excessive requests."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from rightsdesk.intake import subjects, submissions
from rightsdesk.intake.submissions import Submission
from rightsdesk.kernel import clock, rights
from rightsdesk.kernel.errors import Conflict, InvalidInput, NotFound, TooManyRotations
from rightsdesk.platform import aws_clients, config, credentials, hashing, sealing, webhooks
from rightsdesk.routing import controller_lookup, registry
from rightsdesk.store.items.controllers import ApiKeyItem, ControllerItem
from rightsdesk.store.items.requests import RequestItem, SubjectCounterItem
from tests.support.aws import code_in, moto_cloud

REGION = "eu-central-1"
PUBLIC_URL = "https://93.184.216.34/hooks/rightsdesk"


class Cloud:
    def __init__(self, session: boto3.Session, table: str, mail_queue: str):
        self.session = session
        self.table = table
        self.mail_queue = mail_queue

    def items(self) -> list[dict]:
        """Every raw item (a test may scan; the code under test may not)."""
        return self.session.client("dynamodb").scan(TableName=self.table)["Items"]

    def audit_actions(self, controller_id: str) -> list[str]:
        page = self.session.client("dynamodb").query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :audit)",
            ExpressionAttributeValues={":pk": {"S": f"CTRL#{controller_id}"}, ":audit": {"S": "AUDIT#"}},
        )
        return [item["action"]["S"] for item in page["Items"]]

    def code_for(self, request_id: str) -> str:
        sqs = self.session.client("sqs")
        while messages := sqs.receive_message(QueueUrl=self.mail_queue, MaxNumberOfMessages=10).get("Messages"):
            for message in messages:
                sqs.delete_message(QueueUrl=self.mail_queue, ReceiptHandle=message["ReceiptHandle"])
                body = json.loads(message["Body"])
                if body.get("kind") == "verification_code" and body["ids"]["request_id"] == request_id:
                    return code_in([body], request_id)
        raise AssertionError("no verification mail for that request")


@pytest.fixture(scope="module")
def cloud():
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        world = moto_cloud(
            patch,
            "rightsdesk-registry",
            data_key=True,
            env={"ALLOW_HTTP_WEBHOOKS": None},
            no_scans="the registry must not scan the table",
            region=REGION,
        )
        session, tables, queues = world.session, world.tables, world.queues
        yield Cloud(session, tables["RightsTable"], queues["MailQueue"])
        aws_clients.forget_clients()
        sealing.forget_clients()
    config.reload()


@pytest.fixture(autouse=True)
def _clock(cloud):
    yield
    clock.set_offset(0)


def new_controller(delivery: str = "webhook", **overrides) -> registry.NewController:
    suffix = hashing.new_id("s").split("_")[1]
    fields = dict(
        name="Acme",
        site_key=f"acme-{suffix}",
        contact_email="dpo@acme.example",
        delivery=delivery,
        domains=(f"acme-{suffix}.example",),
    )
    if delivery == "webhook":
        fields["webhook_url"] = PUBLIC_URL
    return registry.register(**{**fields, **overrides})


# ------------------------------------------------------------------ registration


def test_register_shows_the_key_and_secret_once_and_stores_neither(cloud):
    created = new_controller()
    assert credentials.well_formed(created.api_key)
    assert created.webhook_secret.startswith("whsec_")
    stored = json.dumps(cloud.items())
    assert created.api_key not in stored and created.webhook_secret not in stored
    assert created.webhook_secret.removeprefix("whsec_") not in stored
    item = ControllerItem.get(ControllerItem.key(created.controller.controller_id), ControllerItem.SK)
    assert item.api_key_hash == hashing.keyed_hash("api_key", created.api_key)
    assert item.webhook_secret_sealed and registry.webhook_secrets(item) == [created.webhook_secret]
    assert cloud.audit_actions(item.controller_id) == ["controller_registered"]
    described = json.dumps(registry.describe(item))
    assert item.webhook_secret_sealed not in described and item.api_key_hash not in described


def test_the_webhook_secret_is_what_the_standard_webhooks_library_expects(cloud):
    secret = new_controller().webhook_secret
    signer = Webhook(secret)
    assert len(signer._whsecret) == credentials.WEBHOOK_SECRET_BYTES
    body = '{"type":"dsr.request.forwarded"}'
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(datetime.now(timezone.utc).timestamp()))}
    headers["webhook-signature"] = signer.sign("msg_1", datetime.now(timezone.utc), body)
    assert signer.verify(body, headers) == json.loads(body)


def test_only_webhook_controllers_get_a_secret(cloud):
    created = new_controller("pull")
    assert created.webhook_secret is None
    assert registry.webhook_secrets(created.controller) == []
    internal = new_controller("internal", purge_after_seconds=3600, sla_days=14, locale="de")
    assert internal.controller.delivery == "internal" and internal.controller.purge_after_seconds == 3600


def test_a_taken_site_or_domain_writes_nothing(cloud):
    first = new_controller("email")
    before = len(cloud.items())
    with pytest.raises(Conflict):
        new_controller("email", domains=(first.controller.domains[0],))
    with pytest.raises(Conflict):
        new_controller("email", site_key=first.controller.site_key)
    assert len(cloud.items()) == before, "a refused registration leaves no controller, pointer, key or audit event"


@pytest.mark.parametrize(
    "overrides, field, code",
    [
        ({"delivery": "carrier-pigeon"}, "delivery", "invalid_choice"),
        ({"delivery": "webhook", "webhook_url": None}, "webhook_url", "required"),
        ({"delivery": "webhook", "webhook_url": "https://10.0.0.7/hook"}, "webhook_url", "non_public_address"),
        ({"delivery": "webhook", "webhook_url": "http://93.184.216.34/hook"}, "webhook_url", "https_required"),
        ({"delivery": "webhook", "webhook_url": "http://127.0.0.1:3001/hook"}, "webhook_url", "https_required"),
        ({"delivery": "email", "webhook_url": PUBLIC_URL}, "webhook_url", "not_allowed"),
        ({"site_key": "Not A Key"}, "site", "invalid_format"),
        ({"domains": ("not a domain",)}, "domain", "invalid_format"),
        ({"contact_email": "nobody"}, "contact", "invalid_email"),
        ({"locale": "fr"}, "locale", "invalid_choice"),
        ({"sla_days": 0}, "sla_days", "out_of_range"),
        ({"purge_after_seconds": 10}, "purge_after", "out_of_range"),
    ],
)
def test_invalid_settings_are_refused_before_anything_is_written(cloud, overrides, field, code):
    before = len(cloud.items())
    with pytest.raises(InvalidInput) as raised:
        new_controller(**{"delivery": "email", **overrides})
    assert raised.value.fields[field] == code
    assert len(cloud.items()) == before


def test_the_local_run_may_register_a_loopback_http_webhook(cloud):
    created = new_controller(webhook_url="http://127.0.0.1:3001/webhooks/demo", allow_loopback_http=True)
    assert created.controller.webhook_url.startswith("http://127.0.0.1")


# ------------------------------------------------------------------ API keys


def test_authenticate_finds_the_controller_by_its_key_only(cloud):
    created = new_controller("pull")
    assert registry.authenticate(created.api_key).controller_id == created.controller.controller_id
    for wrong in (None, "", "Bearer x", "rdk_short", created.api_key + "x", credentials.new_api_key()):
        assert registry.authenticate(wrong) is None, wrong


def test_rotating_the_key_retires_the_old_one_in_the_same_write(cloud):
    created = new_controller("pull")
    controller_id = created.controller.controller_id
    new_key = registry.rotate_api_key(controller_id)
    assert registry.authenticate(created.api_key) is None
    assert registry.authenticate(new_key).controller_id == controller_id
    with pytest.raises(ApiKeyItem.DoesNotExist):
        ApiKeyItem.get(ApiKeyItem.key(credentials.api_key_hash(created.api_key)), ApiKeyItem.SK)
    assert cloud.audit_actions(controller_id) == ["controller_registered", "api_key_rotated"]
    with pytest.raises(NotFound):
        registry.rotate_api_key("ctl_nobody")


def test_a_change_based_on_a_stale_read_is_refused(cloud, monkeypatch):
    created = new_controller("pull")
    stale = controller_lookup.get_controller(created.controller.controller_id)
    registry.rotate_api_key(created.controller.controller_id)
    monkeypatch.setattr(registry, "require_controller", lambda controller_id: stale)
    with pytest.raises(Conflict):
        registry.rotate_api_key(created.controller.controller_id)
    with pytest.raises(Conflict):
        registry.set_delivery(created.controller.controller_id, "email")


# ------------------------------------------------------------------ webhook secrets


def test_a_rotated_secret_keeps_signing_for_24_hours(cloud):
    created = new_controller()
    controller_id = created.controller.controller_id
    new_secret, previous_until = registry.rotate_webhook_secret(controller_id, actor=f"controller:{controller_id}")
    assert abs(previous_until - (clock.now() + registry.PREVIOUS_SECRET_GRACE)).total_seconds() < 5
    controller = controller_lookup.get_controller(controller_id)
    assert registry.webhook_secrets(controller) == [new_secret, created.webhook_secret]
    assert new_secret not in json.dumps(cloud.items())
    clock.advance(24 * 3600 + 1)
    assert registry.webhook_secrets(controller) == [new_secret]
    assert cloud.audit_actions(controller_id)[-1] == "webhook_secret_rotated"


@pytest.mark.parametrize("char", ["\n", "\r", "\x00", "\u202e", "\u200b", "\x85"])
def test_a_controllers_name_and_contact_are_one_line(cloud, char):
    with pytest.raises(InvalidInput) as refused:
        new_controller(name=f"Acme{char}Bcc: x", contact_email=f"dpo{char}x@acme.example")
    assert refused.value.fields["name"] == "invalid_characters"
    assert refused.value.fields["contact"] in ("invalid_characters", "invalid_email")


ROTATION_STEPS = st.lists(
    st.one_of(st.just(("rotate", 0)), st.tuples(st.just("advance"), st.integers(1, 30 * 3600))), max_size=24
)


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=ROTATION_STEPS)
def test_every_issued_secret_signs_until_24_hours_after_it_was_replaced(cloud, steps):
    """Whatever rotations and clock moves happen: the signatures are exactly the current secret's and
    those of every secret replaced less than 24 h ago, each verifiable with the public library; a
    rotation is refused only while the maximum of replaced secrets still sign."""
    created = new_controller()
    controller_id = created.controller.controller_id
    current, replaced_at = created.webhook_secret, {}  # the model: secret -> when it was replaced
    for action, seconds in steps:
        if action == "advance":
            clock.advance(seconds)
        else:
            now = clock.now()
            signing = [s for s, at in replaced_at.items() if at + registry.PREVIOUS_SECRET_GRACE > now]
            if len(signing) >= registry.MAX_SIGNING_REPLACED_SECRETS:
                with pytest.raises(TooManyRotations):
                    registry.rotate_webhook_secret(controller_id, actor="operator")
                continue
            new_secret, until = registry.rotate_webhook_secret(controller_id, actor="operator")
            replaced = until - registry.PREVIOUS_SECRET_GRACE  # the rotation's own reading of the clock
            assert abs((replaced - now).total_seconds()) < 1
            replaced_at[current], current = replaced, new_secret
        now = clock.now()
        expected = {current} | {s for s, at in replaced_at.items() if at + registry.PREVIOUS_SECRET_GRACE > now}
        secrets = registry.webhook_secrets(controller_lookup.get_controller(controller_id))
        assert secrets[0] == current and set(secrets) == expected and len(secrets) == len(expected)
        body = '{"type":"webhook.test"}'
        # signed at the wall clock's time: the library checks the timestamp against it, not ours
        headers = webhooks.signed_headers(secrets, "msg_rotation", body.encode())
        for secret in {current, *replaced_at}:
            try:
                Webhook(secret).verify(body, headers)
                verified = True
            except WebhookVerificationError:
                verified = False
            assert verified == (secret in expected)


def test_a_lost_answer_and_a_retry_do_not_strand_the_receiver(cloud):
    created = new_controller()
    controller_id = created.controller.controller_id
    registry.rotate_webhook_secret(controller_id, actor="operator")  # its answer is lost
    clock.advance(60)
    retried, _ = registry.rotate_webhook_secret(controller_id, actor="operator")
    clock.advance(23 * 3600)
    secrets = registry.webhook_secrets(controller_lookup.get_controller(controller_id))
    assert created.webhook_secret in secrets and retried == secrets[0] and len(secrets) == 3


def test_rotations_pause_while_the_maximum_of_replaced_secrets_sign(cloud):
    created = new_controller()
    controller_id = created.controller.controller_id
    for _ in range(registry.MAX_SIGNING_REPLACED_SECRETS):
        registry.rotate_webhook_secret(controller_id, actor="operator")
    with pytest.raises(TooManyRotations) as refused:
        registry.rotate_webhook_secret(controller_id, actor="operator")
    assert refused.value.status == 429
    assert created.webhook_secret in registry.webhook_secrets(controller_lookup.get_controller(controller_id))
    clock.advance(24 * 3600 + 1)
    registry.rotate_webhook_secret(controller_id, actor="operator")
    assert len(registry.webhook_secrets(controller_lookup.get_controller(controller_id))) == 2


def test_the_stored_list_keeps_only_secrets_that_still_sign(cloud):
    created = new_controller()
    controller_id = created.controller.controller_id
    for _ in range(3):
        registry.rotate_webhook_secret(controller_id, actor="operator")
        clock.advance(13 * 3600)
    registry.rotate_webhook_secret(controller_id, actor="operator")
    stored = controller_lookup.get_controller(controller_id).replaced_webhook_secrets
    assert len(stored) == 2, "secrets replaced more than 24 h ago are dropped by the next rotation"


def test_a_sealed_secret_opens_only_for_its_own_controller(cloud):
    one, other = new_controller(), new_controller()
    copied = controller_lookup.get_controller(other.controller.controller_id)
    copied.webhook_secret_sealed = controller_lookup.get_controller(one.controller.controller_id).webhook_secret_sealed
    with pytest.raises(Exception) as raised:  # KMS refuses: the encryption context names the owner
        registry.webhook_secrets(copied)
    assert "InvalidCiphertext" in repr(raised.value) or "Invalid" in type(raised.value).__name__


def test_rotating_without_a_webhook_is_a_conflict(cloud):
    created = new_controller("pull")
    with pytest.raises(Conflict) as raised:
        registry.rotate_webhook_secret(created.controller.controller_id, actor="operator")
    assert raised.value.code == "not_webhook"


# ------------------------------------------------------------------ delivery settings


def test_set_delivery_issues_keeps_and_drops_the_secret(cloud):
    created = new_controller("pull")
    controller_id = created.controller.controller_id
    controller, secret = registry.set_delivery(controller_id, "webhook", PUBLIC_URL)
    assert secret and registry.webhook_secrets(controller) == [secret]
    controller, again = registry.set_delivery(controller_id, "webhook", "https://93.184.216.35/other")
    assert again is None, "a new URL keeps the secret the receiver already has"
    assert registry.webhook_secrets(controller) == [secret]
    controller, none = registry.set_delivery(controller_id, "email")
    assert none is None and controller.webhook_url is None and controller.webhook_secret_sealed is None
    assert cloud.audit_actions(controller_id) == ["controller_registered", *["delivery_changed"] * 3]
    with pytest.raises(InvalidInput):
        registry.set_delivery(controller_id, "webhook", "https://169.254.169.254/")


# ------------------------------------------------------------------ durations


@pytest.mark.parametrize(
    "text, seconds",
    [("PT1H", 3600), ("PT30M", 1800), ("P1D", 86400), ("P1DT2H", 93600), ("pt90s", 90), ("PT1H30M", 5400)],
)
def test_iso_durations(text, seconds):
    assert registry.parse_duration(text) == seconds
    assert registry.parse_duration(registry.format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "P", "PT", "1H", "PT1.5H", "P1W", "P1M", "P1DT", "PT-1H", "one hour"])
def test_invalid_durations(text):
    with pytest.raises(InvalidInput) as raised:
        registry.parse_duration(text)
    assert raised.value.fields == {"purge_after": "invalid_duration"}


# ------------------------------------------------------------------ excessive and guardian flags


def submit_and_verify(cloud, site: str, email: str, **fields) -> RequestItem:
    fields.setdefault("type", "access")
    submitted = submissions.submit(Submission(site=site, email=email, **fields), locale="en")
    submissions.verify(submitted.request_id, cloud.code_for(submitted.request_id))
    return submissions.load_request(submitted.request_id)


def test_the_second_verified_request_in_a_year_is_flagged_excessive(cloud):
    site = new_controller("pull").controller.site_key
    other_site = new_controller("pull").controller.site_key
    first = submit_and_verify(cloud, site, "Ana@Example.org")
    second = submit_and_verify(cloud, site, "ana@example.org ")  # the same person, spelt differently
    elsewhere = submit_and_verify(cloud, other_site, "ana@example.org")
    someone_else = submit_and_verify(cloud, site, "bo@example.org")
    assert first.flags is None
    assert second.flags == [subjects.EXCESSIVE]
    assert elsewhere.flags is None, "the count is per controller"
    assert someone_else.flags is None
    unverified = submissions.submit(Submission(site=site, type="access", email="ana@example.org"), locale="en")
    assert submissions.load_request(unverified.request_id).flags is None, "only verified requests count"


def test_the_free_request_table_has_a_row_for_every_request_type():
    assert set(rights.COUNTS_TOWARDS_FREE_REQUEST) == set(rights.RequestType)
    never = {t for t, counts in rights.COUNTS_TOWARDS_FREE_REQUEST.items() if not counts}
    assert never == {rights.RequestType.CONSENT_WITHDRAWAL, rights.RequestType.OBJECTION, rights.RequestType.COMPLAINT}


@pytest.mark.parametrize("kind", list(rights.RequestType), ids=lambda kind: kind.value)
def test_only_the_types_that_count_are_flagged_excessive_or_use_up_the_free_request(cloud, kind):
    """For every type: after a free access request it is flagged excessive only if it counts; made
    first, it leaves the free request to the next access request only if it does not count."""
    site = new_controller("pull").controller.site_key
    extra = {"purposes": ["marketing"]} if kind is rights.RequestType.CONSENT_WITHDRAWAL else {}
    counts = rights.counts_towards_free_request(kind)
    submit_and_verify(cloud, site, f"first-access-{kind.value}@example.org")
    second = submit_and_verify(cloud, site, f"first-access-{kind.value}@example.org", type=kind.value, **extra)
    assert (subjects.EXCESSIVE in (second.flags or [])) is counts
    again = submit_and_verify(cloud, site, f"first-{kind.value}@example.org", type=kind.value, **extra)
    assert not again.flags
    access_after = submit_and_verify(cloud, site, f"first-{kind.value}@example.org")
    assert (subjects.EXCESSIVE in (access_after.flags or [])) is counts


def test_the_count_starts_again_in_a_new_year(cloud):
    site = new_controller("pull").controller.site_key
    submit_and_verify(cloud, site, "cy@example.org")
    now = clock.now()
    clock.advance((datetime(now.year + 1, 1, 1, tzinfo=timezone.utc) - now).total_seconds() + 60)
    assert submit_and_verify(cloud, site, "cy@example.org").flags is None


def test_a_guardian_request_is_flagged(cloud):
    site = new_controller("pull").controller.site_key
    request = submit_and_verify(cloud, site, "parent@example.org", relationship="guardian")
    assert request.flags == [subjects.GUARDIAN]
    again = submit_and_verify(cloud, site, "parent@example.org", relationship="guardian")
    assert again.flags == [subjects.EXCESSIVE, subjects.GUARDIAN]


def test_a_verification_racing_another_still_counts_once_each(cloud, monkeypatch):
    """Another request of the same subject is verified between our read of the count and our write."""
    site = new_controller("pull").controller.site_key
    submitted = submissions.submit(Submission(site=site, type="access", email="race@example.org"), locale="en")
    code = cloud.code_for(submitted.request_id)
    real_counter_as_read = subjects.counter_as_read
    raced = []

    def read_then_race(request, at, found):
        counter = real_counter_as_read(request, at, found)
        if not raced:
            raced.append(True)
            SubjectCounterItem(counter.pk, counter.sk).update(actions=[SubjectCounterItem.verified.add(1)])
        return counter

    monkeypatch.setattr(subjects, "counter_as_read", read_then_race)
    submissions.verify(submitted.request_id, code)
    request = submissions.load_request(submitted.request_id)
    assert raced, "the count was read"
    assert request.flags == [subjects.EXCESSIVE], "the retry saw the other verification"
    assert subjects.counter_for(request, clock.now()).verified == 2


def test_plain_http_webhooks_are_for_the_local_stage_only(cloud, monkeypatch):
    monkeypatch.setenv("ALLOW_HTTP_WEBHOOKS", "true")
    try:
        monkeypatch.setenv("RIGHTSDESK_STAGE", "prod")
        assert config.reload().allow_http_webhooks is False
        with pytest.raises(InvalidInput):
            new_controller(webhook_url="http://127.0.0.1:3001/webhooks/demo")
        monkeypatch.setenv("RIGHTSDESK_STAGE", "local")
        assert config.reload().allow_http_webhooks is True
        assert new_controller(webhook_url="http://127.0.0.1:3001/webhooks/demo").webhook_secret
    finally:
        monkeypatch.undo()
        config.reload()


@pytest.mark.parametrize("spelling", [" {site} ", "{site}", "{upper}\t"])
def test_a_site_key_is_one_site_however_it_is_spelled(cloud, spelling):
    suffix = hashing.new_id("s").split("_")[1]
    created = new_controller(site_key=f" Mixed-{suffix.upper()} ", domains=(f" Mixed-{suffix}.Example. ",))
    site = f"mixed-{suffix}"
    assert created.controller.site_key == site
    for typed in (spelling.format(site=site, upper=site.upper()), f"\tMIXED-{suffix}.example "):
        assert controller_lookup.resolve_site(typed).controller_id == created.controller.controller_id
