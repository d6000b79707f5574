from datetime import datetime, timedelta, timezone

from rightsdesk.kernel import retention
from rightsdesk.kernel.retention import Rule

START = datetime(2026, 5, 1, tzinfo=timezone.utc)


def test_rules_match_the_retention_table():
    assert retention.rule(Rule.UNVERIFIED_REQUEST).keep == timedelta(hours=72)
    assert retention.rule(Rule.VERIFICATION_CODE).keep == timedelta(minutes=15)
    assert retention.rule(Rule.DELIVERED_SUBJECT_DATA).keep == timedelta(hours=1)
    assert retention.rule(Rule.CLOSED_INTERNAL_REQUEST).keep == timedelta(days=30)
    assert retention.rule(Rule.SKELETON).keep == timedelta(days=3 * 365)
    assert retention.rule(Rule.CONSENT_RECORD).keep == timedelta(days=5 * 365)


def test_a_rule_can_be_overridden_from_the_environment(monkeypatch):
    monkeypatch.setenv("RETENTION_VERIFICATION_CODE_SECONDS", "600")
    assert retention.expires_at(Rule.VERIFICATION_CODE, START) == int(START.timestamp()) + 600


def test_a_per_controller_override_replaces_the_default():
    assert (
        retention.expires_at(Rule.DELIVERED_SUBJECT_DATA, START, timedelta(minutes=5)) == int(START.timestamp()) + 300
    )


def test_expired_items_are_treated_as_gone_at_their_expiry_second():
    epoch = int(START.timestamp())
    assert retention.is_expired(epoch, at=epoch)
    assert not retention.is_expired(epoch, at=epoch - 1)
    assert not retention.is_expired(None, at=epoch)


def test_expiry_index_buckets_by_hour_and_sorts_by_time():
    epoch = int(START.timestamp()) + 1234
    keys = retention.expiry_index_keys(epoch, "REQ#x", "REQUEST", now=epoch - 60)
    assert keys["gsi2pk"] == f"EXP#{int(START.timestamp())}"
    assert keys["gsi2sk"].startswith(f"{epoch:012d}#REQ#x")
