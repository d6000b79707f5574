"""`rightsdesk dlq`: what a listing may show of a dead-letter message (ids, never a body).
The commands against a running stack are in tests/integration/test_faults.py."""

from __future__ import annotations

import json

from rightsdesk_cli.dlq import SAFE_FIELDS, describe


def message(body, **attributes) -> dict:
    return {
        "MessageId": "m-1",
        "Body": body if isinstance(body, str) else json.dumps(body),
        "Attributes": {"SentTimestamp": "1790000000000", "ApproximateReceiveCount": "6", **attributes},
    }


def test_a_mail_shows_its_id_and_template_never_its_address_or_context():
    shown = describe(
        message(
            {
                "mail_id": "verify-dsr_1",
                "template": "verification_code",
                "to": "ana@example.org",
                "context": {"code": "123456", "name": "Ana"},
            }
        )
    )
    assert shown == {
        "message_id": "m-1",
        "sent_at": 1790000000,
        "receives": 6,
        "mail_id": "verify-dsr_1",
        "template": "verification_code",
    }


def test_a_mail_message_shows_its_kind_and_ids():
    shown = describe(
        message(
            {
                "mail_id": "forward-dsr_1",
                "kind": "request_forwarded",
                "ids": {"request_id": "dsr_1", "stranger": "ana@example.org"},
            }
        )
    )
    assert {k: shown[k] for k in ("mail_id", "kind", "request_id")} == {
        "mail_id": "forward-dsr_1",
        "kind": "request_forwarded",
        "request_id": "dsr_1",
    }
    assert "ana@example.org" not in json.dumps(shown)


def test_a_delivery_shows_its_request_and_event():
    shown = describe(message({"request_id": "dsr_1", "event": "overdue", "notice": "due_today"}))
    assert {k: shown[k] for k in ("request_id", "event", "notice")} == {
        "request_id": "dsr_1",
        "event": "overdue",
        "notice": "due_today",
    }


def test_an_eventbridge_event_or_a_stranger_shows_nothing_but_its_message_id():
    ses = describe(message({"detail-type": "Email Bounced", "detail": {"mail": {"destination": ["ana@example.org"]}}}))
    assert set(ses) == {"message_id", "sent_at", "receives"}
    assert set(describe(message("not json ana@example.org"))) == {"message_id", "sent_at", "receives"}
    nested = describe(message({"request_id": {"email": "ana@example.org"}}))
    assert "request_id" not in nested, "only plain ids are shown"


def test_a_failed_stream_batch_shows_where_to_replay_it_from():
    shown = describe(
        message(
            {
                "requestContext": {"condition": "RetryAttemptsExhausted"},
                "DDBStreamBatchInfo": {"shardId": "shard-1", "startSequenceNumber": "10", "endSequenceNumber": "12"},
            }
        )
    )
    assert shown["batch"] == "shard-1:10-12"


def test_the_safe_fields_are_ids_and_words():
    assert not {"to", "email", "name", "details", "context", "subject"} & set(SAFE_FIELDS)
