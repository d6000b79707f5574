"""Abuse limits (rightsdesk.store.limits), against moto in-process, with strict limits of this module's own:
windows, codes per address, submissions per source, wrong codes across resubmissions, and the
controller's notes to a subject. Each test uses its own addresses and sources and restores the clock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from rightsdesk.intake import submissions
from rightsdesk.intake.submissions import Submission
from rightsdesk.kernel import clock
from rightsdesk.kernel.errors import InvalidCode, RateLimited, TooManyAttempts
from rightsdesk.outbound import mail_kinds
from rightsdesk.platform import aws_clients, config, hashing
from rightsdesk.routing import registry
from rightsdesk.store import limits
from rightsdesk.store.items.limits import LimitCounterItem
from rightsdesk.store.items.requests import RequestItem
from rightsdesk.store.limits import Limit
from tests.support.aws import moto_cloud, verification_code

REGION = "eu-central-1"
CODES_PER_ADDRESS, SUBMISSIONS_PER_SOURCE = 3, 5
FAILED_PER_ADDRESS, FAILED_PER_SOURCE, NOTES_PER_DAY = 7, 12, 2


@pytest.fixture(scope="module")
def cloud():
    env = {
        "LIMIT_CODES_PER_ADDRESS_PER_HOUR": str(CODES_PER_ADDRESS),
        "LIMIT_SUBMISSIONS_PER_SOURCE_PER_MINUTE": str(SUBMISSIONS_PER_SOURCE),
        "LIMIT_FAILED_CODES_PER_ADDRESS_PER_HOUR": str(FAILED_PER_ADDRESS),
        "LIMIT_FAILED_CODES_PER_SOURCE_PER_HOUR": str(FAILED_PER_SOURCE),
        "LIMIT_SUBJECT_MAILS_PER_REQUEST_PER_DAY": str(NOTES_PER_DAY),
    }
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        world = moto_cloud(patch, "rightsdesk-limits", region=REGION, env=env)
        registry.register(name="Limited", site_key="limited", contact_email="dpo@limited.example", delivery="pull")
        yield world
        aws_clients.forget_clients()
    config.reload()
    clock.set_offset(0)


@pytest.fixture
def mails(monkeypatch):
    """Every mail intake queues (to, kind, mail_id), still queued for real; the address is the one
    the notifier would send to (the message names the request only)."""
    sent: list[tuple[str, str, str]] = []
    enqueue = submissions.outbox.enqueue_mail

    def recording(kind, **ids):
        mail_id = enqueue(kind, **ids)
        made = mail_kinds.kind(kind).resolve({k: v for k, v in ids.items() if k != "mail_id"}, mail_id)
        sent.append((made.to if made else "", kind, mail_id))
        return mail_id

    monkeypatch.setattr(submissions.outbox, "enqueue_mail", recording)
    return sent


def _address() -> str:
    return f"limits-{uuid.uuid4().hex[:10]}@example.org"


def _source() -> str:
    return f"198.51.100.{uuid.uuid4().int % 250 + 1}-{uuid.uuid4().hex[:6]}"  # unique per test, IP-like


def _submit(email: str, source: str | None = None) -> submissions.Submitted:
    return submissions.submit(Submission(site="limited", type="access", email=email), locale="en", source=source)


def _stored(request_id: str) -> bool:
    try:
        RequestItem.get(RequestItem.key(request_id), RequestItem.SK, consistent_read=True)
    except RequestItem.DoesNotExist:
        return False
    return True


def _at_window_start(seconds: int) -> None:
    """Move the clock to 5 s into the next window of `seconds` (a test must not straddle two)."""
    now = int(clock.now().timestamp())
    clock.advance(seconds - now % seconds + 5)


# ------------------------------------------------------------------ windows (pure)


@pytest.mark.parametrize(
    ("seconds", "at", "start", "retry"),
    [
        (60, "2026-03-01T10:00:00", "2026-03-01T10:00:00", 60),
        (60, "2026-03-01T10:00:59", "2026-03-01T10:00:00", 1),
        (60, "2026-03-01T10:01:00", "2026-03-01T10:01:00", 60),
        (3600, "2026-03-01T10:59:30", "2026-03-01T10:00:00", 30),
        (3600, "2026-03-01T11:00:00", "2026-03-01T11:00:00", 3600),
        (86400, "2026-03-01T23:59:59", "2026-03-01T00:00:00", 1),
        (86400, "2026-03-02T00:00:00", "2026-03-02T00:00:00", 86400),
    ],
)
def test_a_window_starts_on_its_boundary_and_retry_after_counts_to_its_end(seconds, at, start, retry):
    limit = Limit("any", seconds, 1)
    now = datetime.fromisoformat(at).replace(tzinfo=UTC)
    span = limits.window(limit, now)
    assert span.start == int(datetime.fromisoformat(start).replace(tzinfo=UTC).timestamp())
    assert span.end - span.start == seconds
    assert limits.retry_after(limit, now) == retry


def test_limits_come_from_the_settings(cloud):
    assert limits.codes_per_address() == Limit("address_codes", 3600, CODES_PER_ADDRESS)
    assert limits.submissions_per_source() == Limit("source_submissions", 60, SUBMISSIONS_PER_SOURCE)
    assert limits.subject_mails_per_request().window_seconds == 86400


def test_production_defaults_are_strict_per_address_and_generous_per_source(monkeypatch):
    for name in config.LIMIT_FIELDS:
        monkeypatch.delenv(f"LIMIT_{name.upper()}", raising=False)
    try:
        defaults = config.reload()
        assert 1 <= defaults.codes_per_address_per_hour <= 5, "a handful of codes per address and hour"
        assert defaults.submissions_per_source_per_minute >= 20, "a shared NAT is many people"
        assert defaults.failed_codes_per_address_per_hour < defaults.failed_codes_per_source_per_hour
        monkeypatch.setenv("LIMIT_CODES_PER_ADDRESS_PER_HOUR", "0")
        with pytest.raises(ValueError):
            config.reload()
    finally:
        monkeypatch.undo()
        config.reload()


# ------------------------------------------------------------------ counters


def test_a_counter_allows_its_maximum_per_window_then_refuses(cloud, restore_clock):
    limit, key = Limit("test_counter", 60, 3), uuid.uuid4().hex
    _at_window_start(60)
    assert [limits.spend(limit, key) for _ in range(5)] == [True, True, True, False, False]
    assert limits.used(limit, key) == 3 and limits.exhausted(limit, key)
    clock.advance(60)
    assert limits.used(limit, key) == 0 and limits.spend(limit, key)


def test_a_counter_is_a_keyed_hash_with_a_ttl_at_its_window_end(cloud, restore_clock):
    source = "203.0.113.77"
    _at_window_start(60)
    _submit(_address(), source)
    items = [item for item in LimitCounterItem.scan() if item.pk.startswith("LIMIT#source_submissions#")]
    mine = [item for item in items if item.pk.endswith(limits.source_key(source))]
    assert len(mine) == 1
    assert source not in mine[0].pk and "203.0.113" not in mine[0].pk
    assert mine[0].expires_at == limits.window(limits.submissions_per_source(), clock.now()).end
    assert mine[0].retention_rule is None, "deleted by TTL, not the sweeper: no extra write per request"


def test_an_expired_counter_dynamodb_still_holds_counts_nothing(cloud, restore_clock):
    limit, key = Limit("test_expired", 3600, 2), uuid.uuid4().hex
    _at_window_start(3600)
    span = limits.window(limit, clock.now())
    LimitCounterItem(f"LIMIT#{limit.name}#{key}", f"WINDOW#{span.start}", used=2, expires_at=clock.epoch() - 1).save()
    assert limits.used(limit, key) == 0 and not limits.exhausted(limit, key)


# ------------------------------------------------------------------ submissions


def test_an_address_gets_its_codes_then_the_same_answer_with_nothing_stored_or_mailed(cloud, mails, restore_clock):
    address = _address()
    _at_window_start(3600)
    answers = [_submit(address) for _ in range(CODES_PER_ADDRESS + 2)]
    assert {a.status for a in answers} == {"identity_unverified"}
    assert len({a.request_id for a in answers}) == len(answers), "every answer looks like a new request"
    assert all(a.request_id.startswith("dsr_") for a in answers)
    stored = [_stored(a.request_id) for a in answers]
    assert stored == [True] * CODES_PER_ADDRESS + [False, False]
    assert [to for to, template, _ in mails if template == "verification_code"] == [address] * CODES_PER_ADDRESS
    clock.advance(3600)
    again = _submit(address)
    assert _stored(again.request_id), "the next hour, the address gets codes again"


def test_the_address_limit_follows_the_normalized_address(cloud, mails, restore_clock):
    address = _address()
    _at_window_start(3600)
    for spelling in (address, address.upper(), f"  {address.title()}", address):
        _submit(spelling)
    assert len([m for m in mails if m[1] == "verification_code"]) == CODES_PER_ADDRESS


def test_a_source_over_its_limit_gets_429_with_retry_after_whatever_the_addresses(cloud, restore_clock):
    source, other = _source(), _source()
    _at_window_start(60)
    clock.advance(10)  # 15 s into the minute
    for _ in range(SUBMISSIONS_PER_SOURCE):
        _submit(_address(), source)
    with pytest.raises(RateLimited) as refused:
        _submit(_address(), source)
    until_minute_end = limits.window(limits.submissions_per_source(), clock.now()).end - clock.epoch()
    assert refused.value.status == 429 and refused.value.retry_after <= 45  # (real time passes meanwhile)
    assert abs(refused.value.retry_after - until_minute_end) <= 1
    assert _stored(_submit(_address(), other).request_id), "another source is not affected"
    clock.advance(60)
    assert _stored(_submit(_address(), source).request_id), "the next minute the source may submit again"


def test_the_sources_counter_is_spent_by_a_write_of_its_own_never_in_a_transaction(cloud, restore_clock, monkeypatch):
    """Many callers share a source: its counter in every submission's transaction would make the
    item a conflict hotspot in DynamoDB (concurrent transactions on one item are cancelled), which
    moto never shows. It is one conditional ADD of its own; the address's rides in the transaction."""
    from botocore.client import BaseClient

    source = _source()
    source_counter = f"LIMIT#source_submissions#{limits.source_key(source)}"
    seen: list[tuple[str, set[str]]] = []
    make_api_call = BaseClient._make_api_call

    def recording(client, operation, params):
        if operation in ("TransactWriteItems", "UpdateItem"):
            seen.append((operation, {key["pk"]["S"] for key in _keys_written(params)}))
        return make_api_call(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    _at_window_start(60)
    assert _stored(_submit(_address(), source).request_id)
    assert ("UpdateItem", {source_counter}) in seen
    transactions = [keys for operation, keys in seen if operation == "TransactWriteItems"]
    assert len(transactions) == 1 and source_counter not in transactions[0]
    assert any(key.startswith("LIMIT#address_codes#") for key in transactions[0])


def _keys_written(params: dict) -> list[dict]:
    if "TransactItems" in params:
        return [
            body["Key"] if "Key" in body else body["Item"] for item in params["TransactItems"] for body in item.values()
        ]
    return [params["Key"]]


def test_a_source_is_counted_the_same_whether_or_not_the_address_is_over_its_limit(cloud, restore_clock):
    """The 429 depends only on the caller's own submissions: naming an address that is out of
    codes must not change when it comes (that would tell the caller about the address)."""
    busy, fresh = _address(), _address()
    _at_window_start(3600)
    for _ in range(CODES_PER_ADDRESS):
        _submit(busy)  # from elsewhere: the address is out of codes for this hour
    for named in (busy, fresh):
        source = _source()
        _at_window_start(60)
        for _ in range(SUBMISSIONS_PER_SOURCE):
            _submit(named, source)
        with pytest.raises(RateLimited):
            _submit(named, source)


def test_a_submission_refused_for_its_source_spends_nothing_of_the_address(cloud, mails, restore_clock):
    address, source = _address(), _source()
    _at_window_start(3600)
    for _ in range(SUBMISSIONS_PER_SOURCE):
        _submit(_address(), source)
    with pytest.raises(RateLimited):
        _submit(address, source)
    assert limits.used(limits.codes_per_address(), limits.address_key(hashing.email_hash(address))) == 0


OPERATIONS = st.lists(
    st.tuples(st.integers(0, 1), st.integers(0, 2), st.sampled_from([0, 0, 0, 61, 900, 1800])), min_size=1, max_size=12
)


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(operations=OPERATIONS)
def test_never_more_codes_per_address_and_hour_than_the_limit_whatever_the_interleaving(cloud, operations):
    """Submissions naming two addresses from three sources, with the clock moving between them:
    per address and hour window, at most the limit's codes are mailed and exactly the mailed
    requests are stored; a source is refused only after its own submissions of that minute."""
    offset = clock.offset_seconds()
    addresses, sources = [_address(), _address()], [_source(), _source(), _source()]
    mailed: dict[tuple[str, int], int] = {}
    per_source: dict[tuple[str, int], int] = {}
    sent: list[str] = []
    enqueue = submissions.outbox.enqueue_mail
    submissions.outbox.enqueue_mail = lambda kind, **ids: sent.append(ids["request_id"]) or "mail"
    try:
        for address_index, source_index, advance in operations:
            clock.advance(advance)
            address, source = addresses[address_index], sources[source_index]
            minute = limits.window(limits.submissions_per_source(), clock.now()).start
            hour = limits.window(limits.codes_per_address(), clock.now()).start
            before = len(sent)
            try:
                answer = _submit(address, source)
            except RateLimited:
                assert per_source.get((source, minute), 0) >= SUBMISSIONS_PER_SOURCE
                continue
            per_source[(source, minute)] = per_source.get((source, minute), 0) + 1
            assert per_source[(source, minute)] <= SUBMISSIONS_PER_SOURCE
            assert answer.status == "identity_unverified"
            was_mailed = len(sent) > before
            assert _stored(answer.request_id) == was_mailed
            if was_mailed:
                mailed[(address, hour)] = mailed.get((address, hour), 0) + 1
            else:
                assert mailed.get((address, hour), 0) == CODES_PER_ADDRESS, "refused only when out of codes"
        assert all(count <= CODES_PER_ADDRESS for count in mailed.values())
    finally:
        submissions.outbox.enqueue_mail = enqueue
        clock.set_offset(offset)


# ------------------------------------------------------------------ wrong codes across resubmissions


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_resubmitting_gives_new_codes_but_no_new_guesses_for_the_address(cloud, restore_clock):
    address = _address()
    _at_window_start(3600)
    guesses = 0
    request_ids = []
    while guesses < FAILED_PER_ADDRESS:
        submitted = _submit(address)
        request_ids.append(submitted.request_id)
        code = verification_code(cloud.session, cloud.queues["MailQueue"], submitted.request_id)
        for _ in range(min(submissions.MAX_CODE_ATTEMPTS - 1, FAILED_PER_ADDRESS - guesses)):
            with pytest.raises(InvalidCode):
                submissions.verify(submitted.request_id, _wrong(code))
            guesses += 1
    # The last request still has tries of its own and its right code, but the address has none left.
    with pytest.raises(TooManyAttempts) as refused:
        submissions.verify(request_ids[-1], code)
    assert refused.value.code == "too_many_attempts"
    clock.advance(3600)
    again = _submit(address)
    code = verification_code(cloud.session, cloud.queues["MailQueue"], again.request_id)
    assert submissions.verify(again.request_id, code).status == "verified", "the next hour it works"


def test_one_source_guessing_across_many_addresses_runs_out_of_guesses(cloud, restore_clock):
    source = _source()
    _at_window_start(3600)
    guesses, submitted = 0, None
    while guesses < FAILED_PER_SOURCE:
        submitted = _submit(_address())
        code = verification_code(cloud.session, cloud.queues["MailQueue"], submitted.request_id)
        for _ in range(min(2, FAILED_PER_SOURCE - guesses)):
            with pytest.raises(InvalidCode):
                submissions.verify(submitted.request_id, _wrong(code), source=source)
            guesses += 1
    with pytest.raises(TooManyAttempts):
        submissions.verify(submitted.request_id, code, source=source)
    # The subject, from their own network, is not locked out by someone else's guessing.
    assert submissions.verify(submitted.request_id, code, source=_source()).status == "verified"


# ------------------------------------------------------------------ a controller's notes to the subject


NOTES = [  # (status, reason, due date) in order; whether each is mailed, NOTES_PER_DAY == 2
    ([("acknowledged", None, None), ("in_progress", None, None), ("completed", None, None)], [True, True, False]),
    ([("acknowledged", "x", None), ("acknowledged", "x", None)], [True, False]),
    (
        [("in_progress", "more time", "2026-05-01T23:59:59"), ("in_progress", "more time", "2026-05-01T23:59:59")],
        [True, False],
    ),
    (
        [("in_progress", "more time", "2026-05-01T23:59:59"), ("in_progress", "more time", "2026-05-20T23:59:59")],
        [True, True],
    ),
    ([("acknowledged", "a", None), ("acknowledged", "b", None), ("acknowledged", "a", None)], [True, True, False]),
]


@pytest.mark.parametrize(("notes", "mailed"), NOTES)
def test_a_controller_mails_a_subject_a_few_times_a_day_and_repeated_notes_collapse(
    cloud, restore_clock, notes, mailed
):
    request_id = f"dsr_{uuid.uuid4().hex[:20]}"
    _at_window_start(86400)
    answers = [
        limits.subject_note_allowed(
            request_id, status, reason, datetime.fromisoformat(due).replace(tzinfo=UTC) if due else None
        )
        for status, reason, due in notes
    ]
    assert answers == mailed
    clock.advance(86400)
    assert limits.subject_note_allowed(request_id, "completed", "done", None), "a new day, a new allowance"


def test_a_note_is_remembered_only_as_a_keyed_hash(cloud, restore_clock):
    request_id = f"dsr_{uuid.uuid4().hex[:20]}"
    limits.subject_note_allowed(request_id, "rejected", "Ana Novak has no account", None)
    item = next(i for i in LimitCounterItem.scan() if i.pk == f"LIMIT#subject_mails#{request_id}")
    assert "Ana" not in item.last_note and len(item.last_note) == 64


# ------------------------------------------------------------------ what the subject is told


WAIT_AN_HOUR = {"en": "wait an hour", "de": "warten Sie eine Stunde", "sl": "počakajte eno uro"}


@pytest.mark.parametrize("locale", sorted(WAIT_AN_HOUR))
@pytest.mark.parametrize(
    ("page", "context"),
    [
        ("form", {"values": {}, "errors": {}, "site": None}),
        ("verify", {"request_id": "dsr_x", "code": None, "error": None, "attempts_left": None}),
    ],
)
def test_the_form_and_the_code_page_tell_subjects_to_wait_an_hour_if_no_code_arrives(locale, page, context):
    """Over the address's limit a submission looks accepted and no code comes: the subject must
    know to wait, in their language."""
    from rightsdesk.render import web

    assert WAIT_AN_HOUR[locale] in " ".join(web.render_page(page, locale, **context).split())


def test_a_stacks_own_overrides_add_to_the_loopback_limits_and_the_last_value_wins():
    """Test stacks get the loopback limits first; a test's own --parameter-overrides must not drop them."""
    from local import loopback
    from local.__main__ import parameter_overrides, parse_args

    args = parse_args(
        [
            *loopback.parameter_overrides(),
            "--parameter-overrides",
            "CorsAllowOrigins=https://shop.example",
            "LimitCodesPerAddressPerHour=2",
        ]
    )
    overrides = parameter_overrides(args.parameter_overrides)
    assert overrides["CorsAllowOrigins"] == "https://shop.example"
    assert overrides["LimitCodesPerAddressPerHour"] == "2"
    assert overrides["LimitSubmissionsPerSourcePerMinute"] == loopback.GENEROUS
