"""The template's Python functions, each invoked in a bounded pool of container processes."""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from local.containers import Container, ContainerFailed, InvocationFailed, Zygote
from local.intrinsics import NO_VALUE, Resolver, Unresolvable
from local.resources import physical_name
from local.template import Template

log = logging.getLogger("local")

FUNCTION_TYPES = ("AWS::Serverless::Function",)


class FunctionUnavailable(Exception):
    """The function's code is missing or failed to import; the message says which, never data."""


class FunctionError(Exception):
    """The handler raised. Carries the exception's type name only: messages may hold personal data.
    `unauthorized`: the message was exactly "Unauthorized", the one an authorizer raises for a 401."""

    def __init__(self, kind: str, *, unauthorized: bool = False):
        super().__init__(kind)
        self.unauthorized = unauthorized


@dataclass
class FunctionSpec:
    logical_id: str
    code_dir: Path
    handler: str
    timeout: int
    memory: int
    environment: dict[str, str]
    events: dict[str, dict] = field(default_factory=dict)
    reserved: int | None = None  # ReservedConcurrentExecutions: the most containers it may have
    # EventInvokeConfig, resolved: retries and the failure destination of asynchronous invocations
    invoke_config: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return physical_name(self.logical_id)

    @property
    def answers_a_caller(self) -> bool:
        """Whether someone waits on its answer: API Gateway's routes, and the authorizers and direct
        invocations a function without an event source serves. The others (queues, streams,
        schedules, EventBridge rules) work in the background."""
        return not self.events or any(event.get("Type") == "Api" for event in self.events.values())


def env_string(value: Any) -> str:
    # CloudFormation turns every environment value into a string, booleans lowercase.
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def function_specs(template: Template, resolver: Resolver) -> list[FunctionSpec]:
    specs = []
    for logical_id, resource in template.of_type(*FUNCTION_TYPES).items():
        if not resolver.active(resource):
            log.debug("%s: condition false, not loaded", logical_id)
            continue
        props = template.function_properties(logical_id)
        runtime = str(props.get("Runtime", ""))
        code_uri = props.get("CodeUri")
        if not runtime.startswith("python") or not isinstance(code_uri, str) or props.get("PackageType") == "Image":
            log.warning("%s: only Python functions with a local CodeUri run locally; skipped", logical_id)
            continue
        specs.append(
            FunctionSpec(
                logical_id=logical_id,
                code_dir=(template.root / code_uri).resolve(),
                handler=str(props.get("Handler", "app.lambda_handler")),
                timeout=int(resolver.resolve(props.get("Timeout", 3))),
                memory=int(resolver.resolve(props.get("MemorySize", 128))),
                environment=_environment(logical_id, props, resolver),
                events=template.event_sources(logical_id),
                reserved=_reserved(props, resolver),
                invoke_config=resolver.resolve(props.get("EventInvokeConfig") or {}),
            )
        )
    return specs


def _reserved(props: dict, resolver: Resolver) -> int | None:
    value = props.get("ReservedConcurrentExecutions")
    return None if value is None else int(resolver.resolve(value))


def _environment(logical_id: str, props: dict, resolver: Resolver) -> dict[str, str]:
    variables = ((props.get("Environment") or {}).get("Variables")) or {}
    env = {}
    for name, node in variables.items():
        try:
            value = resolver.resolve(node)
        except Unresolvable as error:
            log.warning("%s: environment variable %s left unset (%s)", logical_id, name, error)
            continue
        if value is not NO_VALUE:
            env[name] = env_string(value)
    return env


def split_environment(specs: list[FunctionSpec]) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """The variables every function agrees on, and per function the ones it sees differently.

    The runner's own os.environ holds the agreed ones (it uses the core too, e.g. for the demo
    controller); each container's environment is those plus its function's own.
    """
    values: dict[str, set[str]] = {}
    for spec in specs:
        for name, value in spec.environment.items():
            values.setdefault(name, set()).add(value)
    shared = {name: next(iter(vals)) for name, vals in values.items() if len(vals) == 1}
    own = {spec.logical_id: {k: v for k, v in spec.environment.items() if k not in shared} for spec in specs}
    return shared, own


class LoadedFunction:
    """A function's bounded pool of containers (local/containers.py), invoked like Lambda would.

    At most `max_containers` invocations run at once, each in a container of its own: its
    ReservedConcurrentExecutions, else the runner's default (--max-containers). The first container
    starts with the stack, so an import failure shows at once (/_dev/health, 502
    function_unavailable); more start when every container is busy, up to the bound; beyond it a
    request waits for a free one, as a throttled Lambda would be retried.
    """

    START_SECONDS = 60  # a cold start longer than this is a failure

    def __init__(
        self,
        spec: FunctionSpec,
        root: Path,
        region: str,
        account_id: str,
        *,
        zygote: Zygote | None = None,
        max_containers: int = 4,
    ):
        self.spec = spec
        self.root = root
        self.region = region
        self.account_id = account_id
        self.zygote = zygote
        self.max_containers = max(1, spec.reserved if spec.reserved is not None else max_containers)
        self.problem: str | None = None
        self._container_spec: dict | None = None
        self._idle: list[Container] = []
        # Requests waiting for a container, first come first served: a freed container is handed to
        # the longest waiter, so a request arriving just then cannot overtake it.
        self._waiters: deque[_Waiter] = deque()
        self._all: set[Container] = set()
        self._count = 0  # containers running or starting
        self._busy = 0
        self._started = 0
        self._closed = False
        self._pool = threading.Lock()

    @property
    def function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.spec.name}"

    def prepare(self, env: dict[str, str], sys_path: list[str]) -> bool:
        """What its containers start from (`env`: their whole environment); False if its code is missing."""
        module_name, _, _ = self.spec.handler.rpartition(".")
        path = self.spec.code_dir / (module_name.replace(".", "/") + ".py")
        if not path.is_file():
            self.problem = f"{path.relative_to(self.root) if path.is_relative_to(self.root) else path} not found"
            log.warning("%s: %s; its routes and triggers answer as unavailable", self.spec.logical_id, self.problem)
            return False
        if self.zygote is None:
            self.problem = "no container fork server"
            return False
        self._container_spec = {
            "logical_id": self.spec.logical_id,
            "code_dir": str(self.spec.code_dir),
            "handler": self.spec.handler,
            "timeout": self.spec.timeout,
            "memory": self.spec.memory,
            "function_name": self.spec.name,
            "function_arn": self.function_arn,
            "background": not self.spec.answers_a_caller,
            "root": str(self.root),
            "env": env,
            "sys_path": sys_path,
        }
        return True

    def fork(self) -> Container | None:
        """The first container, importing its module; wait_ready() takes it into the pool."""
        assert self.zygote is not None and self._container_spec is not None
        with self._pool:
            self._count += 1
        try:
            container = self.zygote.fork(self._container_spec)
        except (ContainerFailed, OSError) as failed:
            self.problem = f"no container: {type(failed).__name__}"
            log.error("%s: %s", self.spec.logical_id, self.problem)
            with self._pool:
                self._count -= 1
            return None
        with self._pool:
            self._all.add(container)
            if self._closed:
                container.kill()
        return container

    def wait_ready(self, container: Container | None) -> None:
        if container is None:
            return
        try:
            container.wait_ready(self.START_SECONDS)
        except ContainerFailed as failed:
            self.problem = str(failed)
            log.error("%s: %s\n%s", self.spec.logical_id, self.problem, failed.trace)
            with self._pool:
                self._count -= 1
                self._all.discard(container)
            return
        with self._pool:
            self._started += 1
            self._busy += 1
            self._release(container)

    @property
    def available(self) -> bool:
        return self.problem is None and self._container_spec is not None

    def invoke(self, event: Any) -> Any:
        if not self.available:
            raise FunctionUnavailable(f"{self.spec.logical_id}: {self.problem or 'not loaded'}")
        for _ in range(self.max_containers):  # an idle container that died since is replaced, once each
            container = self._take()
            try:
                result = container.invoke(event, _clock_offset(), self.spec.timeout)
            except InvocationFailed as failed:
                self._put_back(container)
                if failed.unsent:
                    continue
                self._failed(failed)
            self._put_back(container)
            return result
        raise FunctionError("Runtime.ExitError")

    def _failed(self, failed: InvocationFailed) -> NoReturn:
        """Log the failure (type and place only) and raise it as the FunctionError callers know."""
        if failed.crashed is not None:
            log.warning("%s crashed at an injected fault (%s)", self.spec.logical_id, failed.crashed)
        elif failed.kind == "Timeout":
            log.error("%s timed out after %d s; its container was stopped", self.spec.logical_id, self.spec.timeout)
        else:
            log.error("%s raised %s%s", self.spec.logical_id, failed.kind, failed.where)
        raise FunctionError(failed.kind, unauthorized=failed.unauthorized)

    def _take(self) -> Container:
        waiter = None
        with self._pool:
            if self._closed:
                raise FunctionUnavailable(f"{self.spec.logical_id}: the stack is stopping")
            if self._idle and not self._waiters:
                self._busy += 1
                return self._idle.pop()
            if self._count < self.max_containers and not self._waiters:
                self._count += 1  # this request starts a container of its own
            else:
                waiter = _Waiter()
                self._waiters.append(waiter)
        if waiter is not None:
            waiter.ready.wait()
            if waiter.container is not None:
                return waiter.container
            if not waiter.start:
                raise FunctionUnavailable(f"{self.spec.logical_id}: the stack is stopping")
        return self._cold_start()

    def _cold_start(self) -> Container:
        """A new container for this request (already counted), outside the lock: the others keep serving."""
        try:
            assert self.zygote is not None and self._container_spec is not None
            container = self.zygote.fork(self._container_spec)
            with self._pool:
                self._all.add(container)
            container.wait_ready(self.START_SECONDS)
        except (ContainerFailed, OSError) as failed:
            log.error("%s: a new container failed: %s", self.spec.logical_id, failed)
            with self._pool:
                self._count -= 1
                self._let_next_start()
            raise FunctionUnavailable(f"{self.spec.logical_id}: {failed}") from None
        with self._pool:
            self._started += 1
            self._busy += 1
            if self._closed:
                container.kill()
        return container

    def _put_back(self, container: Container) -> None:
        with self._pool:
            if container.alive and not self._closed:
                self._release(container)
                return
            self._busy -= 1
            self._count -= 1
            self._all.discard(container)
            container.kill()
            self._let_next_start()

    def _release(self, container: Container) -> None:
        """A busy container is free: to the longest waiter, else idle. Under the lock."""
        if self._waiters:
            waiter = self._waiters.popleft()
            waiter.container = container  # stays busy, for its new request
            waiter.ready.set()
            return
        self._busy -= 1
        self._idle.append(container)

    def _let_next_start(self) -> None:
        """A container is gone: the longest waiter starts a new one in its place. Under the lock."""
        if self._waiters and not self._closed and self._count < self.max_containers:
            waiter = self._waiters.popleft()
            self._count += 1
            waiter.start = True
            waiter.ready.set()

    def containers(self) -> dict:
        """For /_dev/health: the pool's bound and what runs now."""
        with self._pool:
            return {"max": self.max_containers, "running": self._count, "busy": self._busy, "started": self._started}

    def close(self) -> None:
        """Stop every container; an invocation in flight ends as its container dies."""
        with self._pool:
            self._closed = True
            idle, self._idle = self._idle, []
            busy = [container for container in self._all if container not in idle]
            waiting, self._waiters = list(self._waiters), deque()
        for waiter in waiting:
            waiter.ready.set()  # with neither a container nor a start: FunctionUnavailable
        for container in idle:
            container.kill()
        for container in busy:
            container.stop()  # its invocation ends with the process; that thread hangs up


class _Waiter:
    """A request waiting for a container: handed one, or told to start one."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.container: Container | None = None
        self.start = False


def _clock_offset() -> float:
    """The runner's clock (POST /_dev/clock moves it); every invocation brings it to its container."""
    try:
        from rightsdesk.kernel import clock
    except ImportError:  # a template without the core: real time
        return 0.0
    return clock.offset_seconds()
