"""The notifier's retry decision lives in the core (rightsdesk.outbound.notify.after_failure), as the
dispatcher's does: each failed receive but the last comes back after the next step of the
schedule; the last marks the mail's notice or request failed and lets the message go to the DLQ."""

from __future__ import annotations

import pytest

from rightsdesk.outbound import notify

MESSAGE = notify.MailMessage(mail_id="forward-dsr_retry", kind="request_forwarded", ids={"request_id": "dsr_retry"})


@pytest.mark.parametrize(
    ("attempt", "max_attempts", "retry_in"),
    [
        (1, 5, 5),
        (2, 5, 30),
        (3, 5, 120),
        (4, 5, 600),
        (5, 5, None),
        (6, 5, None),  # the last allowed receive, and a redrive past it
        (1, 1, None),
        (7, 9, 600),  # past the schedule's end its last step repeats
    ],
)
def test_a_failed_send_comes_back_on_schedule_until_the_last_attempt(monkeypatch, attempt, max_attempts, retry_in):
    recorded: list[tuple[str, str]] = []
    monkeypatch.setattr(
        notify, "record_outcome", lambda message, outcome: recorded.append((message.mail_id, outcome)) or True
    )
    assert notify.after_failure(MESSAGE, attempt=attempt, max_attempts=max_attempts) == retry_in
    assert recorded == ([] if retry_in is not None else [(MESSAGE.mail_id, notify.FAILED)])
