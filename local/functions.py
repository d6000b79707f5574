"""The template's Python functions, imported in this process and invoked like Lambda would."""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local import faults
from local.intrinsics import NO_VALUE, Resolver, Unresolvable
from local.resources import physical_name
from local.template import Template

log = logging.getLogger("local")

FUNCTION_TYPES = ("AWS::Serverless::Function",)


class FunctionUnavailable(Exception):
    """The function's code is missing or failed to import; the message says which, never data."""


class FunctionError(Exception):
    """The handler raised. Carries the exception's type name only: messages may hold personal data."""


@dataclass
class FunctionSpec:
    logical_id: str
    code_dir: Path
    handler: str
    timeout: int
    memory: int
    environment: dict[str, str]
    events: dict[str, dict] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return physical_name(self.logical_id)


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
            )
        )
    return specs


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

    The process has one os.environ, so only agreed values can stay set while handlers run. Values
    that differ (POWERTOOLS_SERVICE_NAME, typically) are set while that function's module imports,
    which is when powertools reads them.
    """
    values: dict[str, set[str]] = {}
    for spec in specs:
        for name, value in spec.environment.items():
            values.setdefault(name, set()).add(value)
    shared = {name: next(iter(vals)) for name, vals in values.items() if len(vals) == 1}
    own = {spec.logical_id: {k: v for k, v in spec.environment.items() if k not in shared} for spec in specs}
    return shared, own


@contextmanager
def _import_scope(code_dir: Path, env: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    # Lambda puts the function's code root first on sys.path, so handlers may import siblings.
    sys.path.insert(0, str(code_dir))
    try:
        yield
    finally:
        sys.path.remove(str(code_dir))
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class LambdaContext:
    """The attributes of the Lambda context object that handlers and powertools read."""

    def __init__(self, spec: FunctionSpec, region: str, account_id: str):
        self.function_name = spec.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account_id}:function:{spec.name}"
        self.memory_limit_in_mb = spec.memory
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{spec.name}"
        self.log_stream_name = f"local/{self.aws_request_id}"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + spec.timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class LoadedFunction:
    def __init__(self, spec: FunctionSpec, root: Path, region: str, account_id: str):
        self.spec = spec
        self.root = root
        self.region = region
        self.account_id = account_id
        self.handler: Callable[[Any, Any], Any] | None = None
        self.problem: str | None = None
        # One invocation at a time, like one Lambda execution environment: powertools keeps
        # per-invocation state (appended keys, metrics) in module globals.
        self._lock = threading.Lock()

    def load(self, own_env: dict[str, str]) -> None:
        module_name, _, attribute = self.spec.handler.rpartition(".")
        path = self.spec.code_dir / (module_name.replace(".", "/") + ".py")
        if not path.is_file():
            self.problem = f"{path.relative_to(self.root) if path.is_relative_to(self.root) else path} not found"
            log.warning("%s: %s; its routes and triggers answer as unavailable", self.spec.logical_id, self.problem)
            return
        # Every function's file is app.py: a unique module name keeps them apart in sys.modules.
        unique = f"_local_fn_{self.spec.logical_id}"
        module_spec = importlib.util.spec_from_file_location(unique, path)
        assert module_spec and module_spec.loader
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[unique] = module
        try:
            with _import_scope(self.spec.code_dir, own_env):
                module_spec.loader.exec_module(module)
            self.handler = getattr(module, attribute)
        except Exception as error:  # noqa: BLE001 - any import failure leaves the function unavailable
            sys.modules.pop(unique, None)
            self.problem = f"import failed: {type(error).__name__}"
            # Import runs no request, so the full traceback holds code, not personal data.
            log.error("%s: %s\n%s", self.spec.logical_id, self.problem, traceback.format_exc())

    @property
    def available(self) -> bool:
        return self.handler is not None

    def invoke(self, event: Any) -> Any:
        if self.handler is None:
            raise FunctionUnavailable(f"{self.spec.logical_id}: {self.problem or 'not loaded'}")
        with self._lock, faults.running(self.spec.logical_id):
            context = LambdaContext(self.spec, self.region, self.account_id)
            try:
                return self.handler(event, context)
            except faults.InjectedCrash as crash:
                # As a killed environment: no answer, whatever the handler had done so far stays done.
                log.warning("%s crashed at an injected fault (%s)", self.spec.logical_id, crash)
                raise FunctionError("InjectedCrash") from None
            except Exception as error:
                log.error("%s raised %s%s", self.spec.logical_id, type(error).__name__, self._where(error))
                raise FunctionError(type(error).__name__) from error

    def _where(self, error: BaseException) -> str:
        if os.environ.get("RIGHTSDESK_LOCAL_TRACEBACKS") == "1":
            # Opt-in: a traceback's messages and locals' reprs may include personal data.
            return "\n" + "".join(traceback.format_exception(error))
        ours = [
            frame
            for frame in traceback.extract_tb(error.__traceback__)
            if Path(frame.filename).is_relative_to(self.root) and "site-packages" not in frame.filename
        ]
        if not ours:
            return ""
        frame = ours[-1]
        return f" at {Path(frame.filename).relative_to(self.root)}:{frame.lineno} ({frame.name})"
