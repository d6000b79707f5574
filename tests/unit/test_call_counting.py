"""How bench/aws_calls.py counts API calls from the local runner's call record (local/calls.py):
a transaction's rows are one call, only the named function's calls count, and a step is counted
only when every call came from a process that had served that function before (a warm container)."""

from __future__ import annotations

from bench.aws_calls import _ran_warm, api_calls


def _row(function: str, call: str, operation: str, action: str | None = None, service: str = "dynamodb") -> dict:
    return {
        "function": function,
        "service": service,
        "operation": operation,
        "call": call,
        "action": action or operation,
    }


def test_a_transactions_items_are_one_call_and_other_functions_do_not_count():
    rows = [
        _row("PublicApiFunction", "7-1", "GetItem"),
        *(
            _row("PublicApiFunction", "7-2", "TransactWriteItems", action)
            for action in ("PutItem", "UpdateItem", "DeleteItem")
        ),
        _row("PublicApiFunction", "7-3", "SendMessage", service="sqs"),
        _row("NotifierFunction", "7-4", "SendEmail", service="ses"),
    ]
    assert api_calls(rows, "PublicApiFunction") == {
        "dynamodb.GetItem": 1,
        "dynamodb.TransactWriteItems": 1,
        "sqs.SendMessage": 1,
    }


def test_a_step_is_warm_only_if_its_process_served_the_function_before():
    earlier = [_row("PublicApiFunction", "7-1", "GetItem"), _row("DispatcherFunction", "8-1", "PutItem")]
    assert _ran_warm([_row("PublicApiFunction", "7-9", "GetItem")], earlier, "PublicApiFunction")
    assert not _ran_warm([_row("PublicApiFunction", "8-9", "GetItem")], earlier, "PublicApiFunction"), (
        "another function's process is not this function's container"
    )
    assert not _ran_warm([_row("PublicApiFunction", "9-1", "GetItem")], earlier, "PublicApiFunction")
