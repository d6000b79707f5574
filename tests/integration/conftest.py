"""The local runner as a subprocess, shared by the integration tests (machinery in tests/support/stack.py).

`stack` runs `python -m local` on the repo's template.yaml (free ports, no schedule timers) for the
whole session of one pytest worker: under xdist (`make test-integration` runs `-n 2`) every worker
has its own stack, so tests on one stack run one at a time. `launch_stack` starts more, e.g. on a
fixture template or with other parameters. Tests on a shared stack own their data: `own_controller`
registers a controller and site for the test alone, and `restore_stack_clocks` (autouse) puts back
every clock a test moved, even when it fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support.openapi import check_every_answer, controller_openapi, public_openapi
from tests.support.stack import (  # noqa: F401 - re-exported for the test modules
    CLI,
    PYTHON,
    REGION,
    REPO,
    MotoSession,
    OwnController,
    RunningStack,
    free_port,
    register_controller,
    restore_clocks,
    start_stack,
    watch_clocks,
)

# The longest modules first (their file order kept): with one module per worker, a long one picked
# up last would leave the other workers idle. From `--durations` of a full run; a module not listed
# runs after these, in file order.
LONGEST_FIRST = (
    "test_notices",
    "test_retention",
    "test_personal_data",
    "test_own_data",
    "test_load",
    "test_delivery",
    "test_faults",
    "test_fuzz_api",
    "test_controller_api",
    "test_odd_input",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def weight(item: pytest.Item) -> int:
        name = item.path.stem
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=weight)  # stable: each module's own order stays


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory):
    """The repo's template.yaml, running locally for the whole session (of this worker)."""
    running = start_stack(tmp_path_factory.mktemp("local-stack"))
    checked_against_the_documents(running)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def launch_stack(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., RunningStack]:
    """Start another local stack (`launch_stack("--template", path)`); stopped at the end of the session."""
    started: list[RunningStack] = []

    def launch(*args: str, env: dict[str, str] | None = None, production_limits: bool = False) -> RunningStack:
        running = start_stack(
            tmp_path_factory.mktemp("local-stack"), *args, env=env, production_limits=production_limits
        )
        checked_against_the_documents(running)
        started.append(running)
        return running

    yield launch
    for running in started:
        running.stop()


def checked_against_the_documents(running: RunningStack) -> None:
    """Every JSON answer the stack's own session gets (`stack.get`, `stack.post`) must be what the
    OpenAPI documents say: a documented status, a body the closed schema accepts (tests/support/openapi.py)."""
    check_every_answer(running.http, running.base_url, controller_openapi(), public_openapi())


@pytest.fixture(autouse=True)
def restore_stack_clocks():
    """Every clock a test moves (advance_clock, set_clock_offset) is put back when it ends, pass or
    fail; moves a module fixture makes while building its world stay that fixture's."""
    watch_clocks(True)
    try:
        yield
    finally:
        watch_clocks(False)
        restore_clocks()


@pytest.fixture
def own_controller(stack: RunningStack) -> OwnController:
    """A webhook controller and site of this test's own on the shared stack (its deliveries reach
    the receiver on a path of its own, signed with its own secret)."""
    return register_controller(stack)


@pytest.fixture(scope="session")
def boto_session(stack: RunningStack) -> MotoSession:
    return MotoSession(stack.moto_url)


@pytest.fixture(scope="session")
def table(boto_session: MotoSession) -> Any:
    """The RightsTable (physical names are `rightsdesk-local-<LogicalId>`); scanning it in tests is fine."""
    return boto_session.resource("dynamodb").Table("rightsdesk-local-RightsTable")
