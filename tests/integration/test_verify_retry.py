"""Verifying is safe to retry, through the local runner: the API dies as the write that marks the
request verified comes back (an injected crash after the call, local/faults.py), so the subject
gets no answer; the routing and the confirmation mail follow from the stored write (the table's
stream), once. Verifying again with the same code answers 200 with a status token that works.
Wrong codes and retries after the code's 15 minutes get the same 409 as before."""

from __future__ import annotations

import pytest

from tests.support.flows import Flow, wait_for

pytestmark = pytest.mark.integration

JSON = {"Accept": "application/json"}
ROUTED = ("verified", "forwarded", "delivered")  # a verified request's status as its routing goes on


def confirmations(stack, email: str, token: str) -> list[dict]:
    return [m for m in stack.outbox() if email in m["to"] and token in (m["text"] or "")]


def test_a_verify_whose_answer_was_lost_can_be_retried_for_the_codes_lifetime(stack, own_controller):
    flow = Flow(stack, own_controller.site)
    email = flow.new_email("retry")
    submitted = flow.submit(email)
    assert submitted.status_code == 202, submitted.text
    request_id = submitted.json()["request_id"]
    code = flow.code(email)

    # The environment dies as the verifying transaction's answer comes back: written, never answered.
    flow.inject(
        {"service": "dynamodb", "operation": "TransactWriteItems", "crash": "after", "function": "PublicApiFunction"}
    )
    try:
        lost = flow.verify(request_id, code)
    finally:
        flow.clear_faults()
    assert lost.status_code == 502, "the API died: no answer, no token"
    # The verification itself was written; its routing follows from the stream, so it may have moved on.
    assert flow.status(request_id) in ROUTED, "the verification itself was written"

    again = flow.verify(request_id, code)
    assert again.status_code == 200, again.text
    body = again.json()
    token = body["status_token"]
    assert body["request_id"] == request_id and body["status"] in ROUTED and body["due_at"]
    assert body["status_url"].endswith(f"/status/{request_id}?token={token}")
    status = stack.get(f"/v1/requests/{request_id}", headers={**JSON, "Authorization": f"Bearer {token}"})
    assert status.status_code == 200 and status.json()["status"] in ROUTED
    # The confirmation follows from the stored verification (the table's stream), not from either call.
    wait_for(lambda: confirmations(stack, email, token), "the confirmation of the verification that died")

    assert flow.verify(request_id, code).json()["status_token"] == token, "the same answer every time"
    stack.drain()
    assert len(confirmations(stack, email, token)) == 1, "one confirmation, however often the answer is asked for"
    # A retry is not a second verification in the logs or the RequestVerified metric.
    assert flow.logged("verification repeated", request_id) == 2 and flow.logged("request verified", request_id) == 0

    wrong = flow.verify(request_id, f"{(int(code) + 1) % 10**6:06d}")
    assert wrong.status_code == 409
    assert wrong.json() == {
        "error": {"code": "not_awaiting_verification", "message": "this request is not waiting for a code"}
    }
    assert int(flow.item(request_id)["verify_retries"]) == 3, "retries are counted, the wrong one included"

    stack.advance_clock(15 * 60 + 1)  # put back after the test (conftest.restore_stack_clocks)
    late = flow.verify(request_id, code)
    assert late.status_code == 409 and late.json() == wrong.json()
