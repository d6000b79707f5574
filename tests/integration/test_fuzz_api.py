"""The HTTP API fuzzed from its own OpenAPI documents (schemathesis), against the local runner.

Public operations come from the runner's `/openapi.json`, the controller API's from its
`/v1/controller/openapi.json` (the documents docs/openapi/ holds), and the controller operations
are called with the demo controller's API key.

For every generated request: no 5xx; the status code is one the operation documents; a JSON answer
matches the documented schema (errors match rightsdesk.platform.http.ERROR_SCHEMA); invalid input is refused
with a 4xx. Beside the schema's own cases, every operation gets odd input the schema does not
describe (`odd_cases`): a body field replaced by a nesting bomb, an overlong value or any Unicode
text (controls, bidi overrides and lone surrogates included), and any Unicode in every header. Afterwards the stores hold exactly what the accepted requests wrote: nothing from the
rejected ones. Bounded and deterministic: a fixed seed and a few examples per operation; more with
RIGHTSDESK_FUZZ_EXAMPLES (`make fuzz`).
"""

from __future__ import annotations

import os
from collections import Counter

import boto3
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from rightsdesk.intake import guard
from rightsdesk.kernel import clock

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("RIGHTSDESK_FUZZ_EXAMPLES") or 12)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# Every answer, by operation and status: what the stores may have been changed by.
ANSWERS: Counter[tuple[str, int]] = Counter()
# The requests accepted submissions answered with: a submission replayed with its Idempotency-Key
# (the document names the header, so generated cases send one, and may send one twice) is answered
# again with the same request, and stores nothing more.
SUBMITTED: set[str] = set()


def _record(case, operation, response) -> None:
    label = f"{case.method} {operation.path}"
    ANSWERS[(label, response.status_code)] += 1
    if label == "POST /v1/requests" and response.status_code < 400:
        SUBMITTED.add(response.json()["request_id"])


def fuzz(schema) -> list[str]:
    """Run every operation with valid and with invalid input; the failures, one line each.

    Plain Hypothesis around schemathesis' strategies (its pytest plugin does not run on pytest 9):
    derandomized, no shrinking, so a run is repeatable and bounded.
    """
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES,
                derandomize=True,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=_with_known_values(operation.as_strategy(generation_mode=mode), mode))
            def run(case):
                response = case.call_and_validate(checks=CHECKS)
                _record(case, operation, response)

            try:
                run()
            except Unsatisfiable:
                continue  # nothing about this operation can be invalid (a path of free strings)
            except (Exception, BaseExceptionGroup) as error:  # noqa: BLE001 - report every operation at once
                failures.append(f"{operation.label} ({mode.value} data): {error}")
    return failures


# Headers the functions or the gateway read; each gets any text (what HTTP can carry of it).
ODD_HEADERS = (
    "Accept",
    "Accept-Language",
    "Authorization",
    "Idempotency-Key",
    "Origin",
    "Sec-GPC",
    "Content-Type",
    "User-Agent",
    "X-Forwarded-For",
)


def _nested(depth: int) -> object:
    value: object = "x"
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


ODD_VALUES = st.one_of(
    st.integers(1, 800).map(_nested),  # nesting bombs, shallow to far past the limit (the client serializes them)
    st.integers(300, 20000).map(lambda n: "x" * n),  # overlong
    st.integers(65, 20000).map(lambda n: int("9" * n) if n < 4000 else "9" * n),  # overlong numbers
    st.text(max_size=200),  # any Unicode: controls, bidi overrides, zero-width, surrogates
)


def odd_cases(operation):
    """The operation's valid cases with one odd thing each: a body field's value or a header's."""

    def odd(args):
        case, field, value, header, header_value = args
        if isinstance(case.body, dict) and case.body and field is not None:
            name = sorted(case.body)[field % len(case.body)]
            case.body[name] = value
        else:
            raw = header_value.replace("\r", "").replace("\n", "").replace("\x00", "").strip()
            # UTF-8 on the wire, as a str schemathesis accepts for a header the document declares
            # (requests sends a str header as Latin-1: the same bytes)
            case.headers = {**(case.headers or {}), header: raw.encode().decode("latin-1")}
        return case

    return st.tuples(
        _with_known_values(operation.as_strategy(generation_mode=GenerationMode.POSITIVE), GenerationMode.POSITIVE),
        st.one_of(st.none(), st.integers(0, 20)),
        ODD_VALUES,
        st.sampled_from(ODD_HEADERS),
        st.text(max_size=200),
    ).map(odd)


def fuzz_odd(schema) -> list[str]:
    """Every operation with odd input: never a 5xx; a JSON answer in its documented schema."""
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=odd_cases(operation))
        def run(case):
            response = case.call_and_validate(
                checks=[not_a_server_error, content_type_conformance, response_schema_conformance]
            )
            _record(case, operation, response)

        try:
            run()
        except (Exception, BaseExceptionGroup) as error:  # noqa: BLE001 - report every operation at once
            failures.append(f"{operation.label} (odd input): {error}")
    return failures


def _with_known_values(cases, mode: GenerationMode):
    """Half of the valid submissions name the demo site and a plain address: without them no
    generated submission could be accepted (the schema's email pattern admits control and invisible
    characters, which rightsdesk.kernel.free_text refuses), and nothing stored would ever be checked."""
    if mode is not GenerationMode.POSITIVE:
        return cases

    def known(pair):
        case, demo = pair
        if demo and isinstance(case.body, dict) and "site" in case.body:
            case.body["site"] = "demo"
            if "email" in case.body:
                case.body["email"] = "fuzz@example.org"
        return case

    return st.tuples(cases, st.booleans()).map(known)


def _config(base_url: str, headers: dict[str, str] | None = None) -> SchemathesisConfig:
    # Invalid input may also be refused as too large (413) before it is parsed, or as not UTF-8 (400).
    rejected = ["400", "401", "403", "404", "405", "406", "409", "410", "413", "415", "422", "428", "429"]
    return SchemathesisConfig.from_dict(
        {
            "base-url": base_url,
            "headers": headers or {},
            "checks": {"negative_data_rejection": {"expected-statuses": rejected}},
        }
    )


def _kind(item: dict) -> str:
    pk, sk = item["pk"]["S"], item["sk"]["S"]
    if sk in ("REQUEST", "CHALLENGE"):
        return sk
    if pk.startswith("GUARD#"):
        return "GUARD"
    if pk.startswith("LIMIT#"):
        return "LIMIT"
    if pk.startswith("CTRL#") and sk.startswith("AUDIT#"):
        return "CTRL_AUDIT"
    if pk.startswith("REQ#") and sk.startswith("AUDIT#"):
        return "REQ_AUDIT"
    if pk.startswith("DLOG#"):
        return "DELIVERY_LOG"
    if pk.startswith("GPC#"):
        return "GPC"
    return "OTHER"


@pytest.fixture(scope="module")
def table_counts():
    def count(running) -> Counter[str]:
        dynamodb = boto3.client(
            "dynamodb",
            endpoint_url=running.moto_url,
            region_name="eu-central-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        kinds: Counter[str] = Counter()
        for page in dynamodb.get_paginator("scan").paginate(TableName="rightsdesk-local-RightsTable"):
            kinds.update(_kind(item) for item in page["Items"])
        for page in dynamodb.get_paginator("scan").paginate(TableName="rightsdesk-local-IdempotencyTable"):
            kinds["IDEMPOTENCY"] += len(page["Items"])
        return kinds

    return count


@pytest.fixture(scope="module")
def fuzzed(launch_stack):
    running = launch_stack()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def before(fuzzed, table_counts):
    FUZZ_STARTED.append(_stack_epoch(fuzzed))
    return table_counts(fuzzed)


FUZZ_STARTED: list[float] = []


def _stack_epoch(running) -> float:
    return clock.parse_iso(running.clock()["now"]).timestamp()


def _guard_windows_spanned(running) -> int:
    """How many of the guard's failed-attempt windows the fuzz run touched (a run that crosses a
    window's end counts its client's failures in a second item)."""
    first, last = (int(moment // guard.WINDOW_SECONDS) for moment in (FUZZ_STARTED[0], _stack_epoch(running)))
    return last - first + 1


def controller_schema(fuzzed, headers: dict[str, str]):
    url = f"{fuzzed.base_url}/v1/controller/openapi.json"
    return schemathesis.openapi.from_url(url, config=_config(fuzzed.base_url, headers))


def test_public_operations(fuzzed, before):
    schema = schemathesis.openapi.from_url(f"{fuzzed.base_url}/openapi.json", config=_config(fuzzed.base_url))
    failures = fuzz(schema)
    assert not failures, "\n\n".join(failures)


def test_controller_operations(fuzzed, before):
    key = fuzzed.demo_api_key
    assert key, "the runner prints the demo controller's API key"
    headers = {"Authorization": f"Bearer {key}"}
    failures = fuzz(controller_schema(fuzzed, headers))
    assert not failures, "\n\n".join(failures)


def test_odd_input_never_reaches_a_5xx(fuzzed, before):
    public = schemathesis.openapi.from_url(f"{fuzzed.base_url}/openapi.json", config=_config(fuzzed.base_url))
    key = fuzzed.demo_api_key
    controller = controller_schema(fuzzed, {"Authorization": f"Bearer {key}"})
    failures = fuzz_odd(public) + fuzz_odd(controller)
    assert not failures, "\n\n".join(failures)


def test_rejected_requests_stored_nothing(fuzzed, before, table_counts):
    accepted = {op: n for (op, status), n in ANSWERS.items() if status < 400}
    assert ANSWERS, "the fuzz tests ran first"
    after = table_counts(fuzzed)
    submitted = len(SUBMITTED)
    # Each accepted submission writes its request, its code and one audit event; nothing else adds
    # requests or codes (no verification can succeed: the codes are only in the outbox).
    assert after["REQUEST"] - before["REQUEST"] == submitted
    assert after["CHALLENGE"] - before["CHALLENGE"] == submitted
    assert after["GUARD"] - before["GUARD"] <= _guard_windows_spanned(fuzzed), (
        "only the failed-attempt counter of this one client, one per window"
    )
    # Abuse-limit counters (rightsdesk.store.limits): per address, per window, only for accepted submissions
    # and this one client's windows (a minute each: the run may span a few), and wrong codes.
    assert after["LIMIT"] - before["LIMIT"] <= submitted + 10
    assert submitted, "some generated submissions were valid and accepted"
    rotations = accepted.get("POST /v1/controller/webhook/rotate", 0)
    tests = accepted.get("POST /v1/controller/webhook/test", 0)
    assert after["CTRL_AUDIT"] - before["CTRL_AUDIT"] <= rotations + tests
    # A forwarded GPC signal: the signal and its two ledger entries, once per visitor; its
    # `consent.gpc` event is a delivery like a test event.
    signals = accepted.get("POST /v1/controller/gpc", 0)
    assert after["GPC"] - before["GPC"] <= 3 * signals
    # The dispatcher logs each test event it sends: the attempt and the delivery's state.
    assert after["DELIVERY_LOG"] - before["DELIVERY_LOG"] <= 2 * (tests + signals)
    assert after["OTHER"] == before["OTHER"], "no other kind of item was written"
    # The notifier remembers each verification mail it sent, the dispatcher each test event, and a
    # submission with an Idempotency-Key (the document names the header: some cases send one) its answer.
    assert after["IDEMPOTENCY"] - before["IDEMPOTENCY"] <= 2 * submitted + tests + signals, (
        "only accepted work is remembered"
    )
