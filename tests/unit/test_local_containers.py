"""The local runner's containers (local/functions.py, containers.py, zygote.py), without moto:
a handler in a temporary folder, run in processes forked from the runner's fork server."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from local import faults
from local.containers import Zygote
from local.functions import FunctionError, FunctionSpec, FunctionUnavailable, LoadedFunction
from rightsdesk.kernel import clock

HANDLER = """
import json, os, time

import boto3
from botocore.exceptions import ClientError

from rightsdesk.kernel import clock

IMPORTED_AS = os.environ.get("OWN_SETTING")


def lambda_handler(event, context):
    if event.get("raise"):
        raise ValueError("secret-subject@example.org")  # the message must never reach the runner's log
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("exit"):
        os._exit(3)
    answer = {"pid": os.getpid(), "offset": clock.offset_seconds(), "own": IMPORTED_AS,
              "remaining_ms": context.get_remaining_time_in_millis(), "event": event}
    if event.get("call_aws"):
        sqs = boto3.client("sqs", region_name="eu-central-1", endpoint_url="http://127.0.0.1:9",
                           aws_access_key_id="x", aws_secret_access_key="x")
        try:
            sqs.list_queues()
        except ClientError as error:
            answer["aws_error"] = error.response["Error"]["Code"]
        except Exception as error:
            answer["aws_error"] = type(error).__name__
    return answer
"""


@pytest.fixture(scope="module")
def zygote():
    running = Zygote()
    running.prepare(list(sys.path), [], dict(os.environ))
    yield running
    running.stop()


def pool(zygote: Zygote, folder: Path, code: str, *, timeout: int = 5, reserved: int | None = 2) -> LoadedFunction:
    (folder / "app.py").write_text(code, encoding="utf-8")
    spec = FunctionSpec(
        logical_id="ProbeFunction",
        code_dir=folder,
        handler="app.lambda_handler",
        timeout=timeout,
        memory=128,
        environment={},
        reserved=reserved,
    )
    function = LoadedFunction(spec, folder, "eu-central-1", "123456789012", zygote=zygote, max_containers=4)
    assert function.prepare({**os.environ, "OWN_SETTING": "own"}, list(sys.path))
    function.wait_ready(function.fork())
    return function


@pytest.fixture
def probe(zygote, tmp_path):
    function = pool(zygote, tmp_path, HANDLER)
    yield function
    function.close()


def test_an_invocation_runs_in_a_container_with_its_environment_and_the_runners_clock(probe):
    clock.set_offset(3600)
    answer = probe.invoke({"hello": "world"})
    assert answer["pid"] != os.getpid(), "the handler runs in a process of its own"
    assert answer["own"] == "own", "the function's environment is set before its module imports"
    assert answer["offset"] == 3600, "the runner's clock travels with the invocation"
    assert answer["event"] == {"hello": "world"}
    assert 0 < answer["remaining_ms"] <= 5000
    clock.set_offset(0)
    assert probe.invoke({})["offset"] == 0


def test_concurrent_invocations_never_exceed_the_pool(probe):
    answers = []

    def call():
        answers.append(probe.invoke({"sleep": 0.3}))

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 5
    assert len({answer["pid"] for answer in answers}) == 2, "ReservedConcurrentExecutions: 2 containers, reused"
    assert probe.containers()["running"] == 2 and probe.containers()["busy"] == 0


def test_a_handler_error_carries_its_type_only(probe, caplog):
    with caplog.at_level(logging.ERROR, logger="local"), pytest.raises(FunctionError) as raised:
        probe.invoke({"raise": True})
    assert str(raised.value) == "ValueError"
    assert "ProbeFunction raised ValueError at app.py:" in caplog.text
    assert "secret-subject" not in caplog.text
    assert probe.invoke({})["event"] == {}, "the container serves on after a handler error"


def test_a_timeout_kills_the_container_and_the_next_invocation_gets_a_fresh_one(zygote, tmp_path):
    function = pool(zygote, tmp_path, HANDLER, timeout=1)
    try:
        first = function.invoke({})["pid"]
        started = time.monotonic()
        with pytest.raises(FunctionError, match="Timeout"):
            function.invoke({"sleep": 10})
        assert time.monotonic() - started < 3
        assert function.invoke({})["pid"] != first
    finally:
        function.close()


def test_a_container_that_exits_is_replaced(probe):
    with pytest.raises(FunctionError, match="Runtime.ExitError"):
        probe.invoke({"exit": True})
    assert probe.invoke({})["event"] == {}


def test_an_import_failure_leaves_the_function_unavailable(zygote, tmp_path, caplog):
    with caplog.at_level(logging.ERROR, logger="local"):
        function = pool(zygote, tmp_path, "1 / 0\n")
    assert not function.available and function.problem == "import failed: ZeroDivisionError"
    assert "ZeroDivisionError" in caplog.text, "the import's traceback is logged: code, no request data"
    with pytest.raises(FunctionUnavailable):
        function.invoke({})
    function.close()


def test_fault_rules_stay_in_the_runner_and_are_asked_only_while_they_exist(probe):
    try:
        faults.add([{"service": "sqs", "operation": "ListQueues", "error": "QueueDoesNotExist", "times": 2}])
        assert probe.invoke({"call_aws": True})["aws_error"] == "QueueDoesNotExist"
        assert faults.listing()[0]["hits"] >= 1, "the runner counts the container's hits"
        faults.clear()
        faults.add(
            [{"service": "sqs", "operation": "ListQueues", "crash": True, "function": "ProbeFunction", "times": 1}]
        )
        before = probe.containers()["started"]
        with pytest.raises(FunctionError, match="InjectedCrash"):
            probe.invoke({"call_aws": True})
        assert probe.invoke({})["event"] == {}, "a fresh container replaces the crashed one"
        assert probe.containers()["started"] == before + 1
        faults.clear()
        # No rules: the container does not ask; the call goes to the (closed) endpoint.
        assert probe.invoke({"call_aws": True})["aws_error"] == "EndpointConnectionError"
    finally:
        faults.clear()


def test_requests_waiting_for_a_container_are_served_in_arrival_order(zygote, tmp_path):
    function = pool(zygote, tmp_path, HANDLER, reserved=1)
    served: list[int] = []
    try:
        busy = threading.Thread(target=function.invoke, args=({"sleep": 0.5},))
        busy.start()
        waiting = []
        for index in range(4):
            time.sleep(0.05)  # arrivals in a known order while the only container is busy
            thread = threading.Thread(target=lambda i=index: (function.invoke({"sleep": 0.01}), served.append(i)))
            thread.start()
            waiting.append(thread)
        for thread in [busy, *waiting]:
            thread.join()
        assert served == [0, 1, 2, 3]
        assert function.containers() == {"max": 1, "running": 1, "busy": 0, "started": 1}
    finally:
        function.close()


@pytest.mark.parametrize(
    ("events", "answers_a_caller"),
    [
        ({"Submit": {"Type": "Api"}}, True),
        ({}, True),  # an authorizer, or a function invoked directly
        ({"Queue": {"Type": "SQS"}}, False),
        ({"Stream": {"Type": "DynamoDB"}}, False),
        ({"Rule": {"Type": "EventBridgeRule"}, "Nightly": {"Type": "Schedule"}}, False),
        ({"Queue": {"Type": "SQS"}, "Callback": {"Type": "Api"}}, True),
    ],
)
def test_a_function_answers_a_caller_when_api_gateway_or_a_direct_invocation_waits_on_it(events, answers_a_caller):
    spec = FunctionSpec("F", Path("."), "app.lambda_handler", 3, 128, {}, events=events)
    assert spec.answers_a_caller is answers_a_caller


CALLS_AWS = """
import os

import boto3


def lambda_handler(event, context):
    sqs = boto3.client("sqs", region_name="eu-central-1", endpoint_url=event["endpoint"],
                       aws_access_key_id="x", aws_secret_access_key="x")
    try:
        sqs.list_queues()
    except Exception:
        pass
    return {}
"""


def test_only_the_calls_of_functions_a_caller_waits_on_are_marked_to_go_first(zygote, tmp_path):
    from local.caller_first import HEADER
    from local.servers import HttpServer, ServerThread

    seen: list[str | None] = []

    def capture(request):
        request.read_body()
        seen.append(request.headers.get(HEADER))
        request.respond(500, [], b"{}")

    server = HttpServer("127.0.0.1", 0, capture)
    thread = ServerThread(server, "capture")
    thread.start()
    marks = {}
    try:
        for name, function in api_and_queue_functions(zygote, tmp_path, CALLS_AWS):
            with closing(function):
                seen.clear()
                function.invoke({"endpoint": f"http://127.0.0.1:{server.port}"})
                marks[name] = set(seen)
    finally:
        thread.stop()
    assert marks == {"Api": {"1"}, "Queue": {None}}


def api_and_queue_functions(zygote: Zygote, root: Path, code: str) -> Iterator[tuple[str, LoadedFunction]]:
    """An API route's function, then a queue consumer's, each running `code` in its first container."""
    for name, events in (("Api", {"Route": {"Type": "Api"}}), ("Queue", {"Queue": {"Type": "SQS"}})):
        folder = root / name
        folder.mkdir()
        (folder / "app.py").write_text(code, encoding="utf-8")
        spec = FunctionSpec(f"{name}Function", folder, "app.lambda_handler", 30, 128, {}, events=events)
        function = LoadedFunction(spec, folder, "eu-central-1", "123456789012", zygote=zygote)
        assert function.prepare(dict(os.environ), list(sys.path))
        function.wait_ready(function.fork())
        yield name, function


SCHEDULING = """
import os

def lambda_handler(event, context):
    with open("/proc/self/comm") as comm:
        name = comm.read().strip()
    return {"policy": os.sched_getscheduler(0), "name": name}
"""


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")
@pytest.mark.parametrize("priority", ["normal", "idle"])
def test_with_idle_priority_only_the_containers_no_caller_waits_on_yield_the_cpu(tmp_path, priority):
    """`make run` and `make load` start the runner with --background-priority idle: a queue's
    consumer uses only the CPU the API leaves; an API function keeps the normal policy, and test
    stacks (normal) give every container the normal policy."""
    running = Zygote()
    running.prepare(list(sys.path), [], dict(os.environ), background_priority=priority)
    policies = {}
    try:
        for name, function in api_and_queue_functions(running, tmp_path, SCHEDULING):
            with closing(function):
                answer = function.invoke({})
                policies[name] = answer["policy"]
                assert answer["name"] == name, "a container is named after its function (ps, top)"
    finally:
        running.stop()
    queue_policy = os.SCHED_IDLE if priority == "idle" else os.SCHED_OTHER
    assert policies == {"Api": os.SCHED_OTHER, "Queue": queue_policy}
