"""LocalStack: the whole local cloud for one template, as a Python object (the CLI wraps it)."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3

from local import calls, faults
from local.cloud import ACCOUNT_ID, REGION, fake_aws_environment
from local.containers import Zygote
from local.dev_routes import DevRoutes
from local.functions import LoadedFunction, function_specs, split_environment
from local.gateway import Gateway, Route, build_routes
from local.intrinsics import Resolver, parameter_values
from local.moto_process import MotoProcess
from local.pollers import Worker, build_workers
from local.receiver import WebhookReceiver
from local.resources import Resources
from local.servers import HttpServer, RequestHandler, ServerThread, bind
from local.template import TemplateError, load
from rightsdesk.kernel.delivery_mode import DeliveryMode
from rightsdesk.platform import local_endpoints

log = logging.getLogger("local")

HOST = local_endpoints.HOST
PARAMETER_OVERRIDES = {"Stage": "local"}
# Containers per function unless its ReservedConcurrentExecutions says otherwise (--max-containers).
DEFAULT_MAX_CONTAINERS = 4
DEMO = {
    "controller_id": "ctl_demo",
    "site_key": "demo",
    "domains": ("demo.localhost",),
    "name": "Demo Shop",
    "contact_email": "privacy@demo.localhost",
}


class LocalStack:
    _running = False  # handlers share os.environ, sys.modules and the core's globals: one per process

    def __init__(
        self,
        template_path: str | Path = "template.yaml",
        *,
        gateway_port: int = local_endpoints.GATEWAY.default,
        moto_port: int = local_endpoints.MOTO.default,
        receiver_port: int = local_endpoints.RECEIVER.default,
        schedules: bool = True,
        demo: bool = True,
        parameter_overrides: dict[str, Any] | None = None,
        max_containers: int = DEFAULT_MAX_CONTAINERS,
        background_priority: str = "normal",
    ):
        self.template_path = Path(template_path)
        self.ports = {"gateway": gateway_port, "moto": moto_port, "receiver": receiver_port}
        self.schedules = schedules
        self.demo = demo
        self.given_parameters = dict(parameter_overrides or {})
        self.parameter_overrides = {**PARAMETER_OVERRIDES, **self.given_parameters}
        self.region, self.account_id = REGION, ACCOUNT_ID
        self.max_containers = max_containers
        self.background_priority = background_priority
        self.functions: dict[str, LoadedFunction] = {}
        self._zygote: Zygote | None = None
        self.routes: list[Route] = []
        self.workers: list[Worker] = []
        self.receiver_app = WebhookReceiver()
        self.demo_api_key: str | None = None
        self.demo_status = "not registered"
        self.started_in: float | None = None
        self._stop = threading.Event()
        self._threads: list[ServerThread] = []
        self._servers: list[HttpServer] = []
        self._moto: MotoProcess | None = None
        self._gateway: Gateway | None = None
        self._saved_env: dict[str, str] | None = None
        self._saved_path: list[str] | None = None
        self._saved_modules: set[str] = set()

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> LocalStack:
        if LocalStack._running:
            raise RuntimeError("a LocalStack is already running in this process")
        started = time.monotonic()
        self.template = load(self.template_path)
        unknown = sorted(set(self.given_parameters) - set(self.template.parameters))
        if unknown:
            raise TemplateError(f"the template has no parameter {', '.join(unknown)}")
        self._bind_ports()
        LocalStack._running = True
        self._saved_env, self._saved_path = dict(os.environ), list(sys.path)
        self._saved_modules = set(sys.modules)
        self._stop.clear()
        try:
            # The containers' fork server preloads the SDKs while moto starts (local/containers.py).
            self._zygote = Zygote()
            self._start_cloud()
            first_containers = self._load_functions()
            self._register_demo()  # meanwhile every function's module imports in its first container
            self._gateway = Gateway(
                build_routes(self.template, self.resolver, self.functions),
                region=self.region,
                account_id=self.account_id,
                dev=DevRoutes(self),
            )
            self.routes = self._gateway.routes
            first_containers.join()  # an import failure shows before the stack says it is ready
            self.workers = build_workers(
                self.functions,
                self.resources,
                self.resolver,
                sqs=self.client("sqs"),
                streams=self.client("dynamodbstreams"),
                events=self.client("events"),
                region=self.region,
                account_id=self.account_id,
                schedules=self.schedules,
                stop=self._stop,
            )
            for name, server in zip(("gateway", "receiver"), self._servers, strict=True):
                self._threads.append(ServerThread(server, name))
            for thread in [*self._threads, *self.workers]:
                thread.start()
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - started
        return self

    def stop(self) -> None:
        self._stop.set()
        faults.clear()  # a later stack in this process starts without this one's faults
        deadline = time.monotonic() + 3
        for worker in self.workers:
            if worker.is_alive():
                worker.join(timeout=max(0.1, deadline - time.monotonic()))
        for thread in self._threads:
            thread.stop()
        for function in self.functions.values():
            function.close()
        if self._zygote is not None:
            self._zygote.stop()
            self._zygote = None
        for server in self._servers[len(self._threads) :]:
            server.server_close()  # bound but never served (start failed early)
        self._threads, self._servers = [], []
        if self._moto is not None:
            self._moto.shut()
            self._moto = None
        if self._saved_env is not None:
            os.environ.clear()
            os.environ.update(self._saved_env)
            sys.path[:] = self._saved_path or sys.path
            self._saved_env = None
            self._forget_code_modules()
        LocalStack._running = False

    def _forget_code_modules(self) -> None:
        """Drop the layer modules this run imported (the runner uses the core for the demo controller):
        their module-level clients and caches point at this run's moto, so a later stack in this
        process must import them afresh. (A core imported before start() stays, with its caches;
        bench and tests import it after.)"""
        folders = [fn.spec.code_dir for fn in self.functions.values()] + self._layer_paths()
        for name in set(sys.modules) - self._saved_modules:
            file = getattr(sys.modules.get(name), "__file__", None)
            if file and any(Path(file).is_relative_to(folder) for folder in folders):
                module = sys.modules.pop(name)
                # `from rightsdesk import x` reads the package's attribute before sys.modules: drop it too,
                # or a package imported before start() hands the next stack this run's stale module.
                parent, _, child = name.rpartition(".")
                if getattr(sys.modules.get(parent), child, None) is module:
                    delattr(sys.modules[parent], child)

    # ------------------------------------------------------------------ start-up steps
    def _bind_ports(self) -> None:
        """Every port first, so a busy one fails in a moment, before anything else has started."""
        try:
            self._servers.append(
                bind(
                    HOST,
                    self.ports["gateway"],
                    self._serve_gateway,
                    what=local_endpoints.GATEWAY.what,
                    env_var=local_endpoints.GATEWAY.variable,
                    flag=local_endpoints.GATEWAY.flag,
                )
            )
            self._servers.append(
                bind(
                    HOST,
                    self.ports["receiver"],
                    self.receiver_app,
                    what=local_endpoints.RECEIVER.what,
                    env_var=local_endpoints.RECEIVER.variable,
                    flag=local_endpoints.RECEIVER.flag,
                )
            )
            self._moto = MotoProcess(HOST, self.ports["moto"])
        except BaseException:
            for server in self._servers:
                server.server_close()
            self._servers = []
            raise

    def _serve_gateway(self, request: RequestHandler) -> None:
        assert self._gateway is not None
        self._gateway(request)

    def _start_cloud(self) -> None:
        assert self._moto is not None
        self._moto.start()
        fake_aws_environment(self.moto_url)
        # moto's backends are process-wide: a second stack in this process must not see the first's data.
        urllib.request.urlopen(
            urllib.request.Request(self.moto_url + "/moto-api/reset", method="POST"), timeout=5
        ).close()
        # moto runs state machines only when asked (the connector executions, docs/connectors.md).
        urllib.request.urlopen(
            urllib.request.Request(
                self.moto_url + "/moto-api/config",
                data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            ),
            timeout=5,
        ).close()
        self.sync_clock()  # a stack started after the clock moved (bench, a second stack) starts in step
        if os.environ.get("RIGHTSDESK_LOCAL_RECORD_CALLS"):  # tests/integration/test_granted_calls.py
            calls.install(os.environ["RIGHTSDESK_LOCAL_RECORD_CALLS"])
        self._session = boto3.session.Session(region_name=self.region)
        self.resources = Resources(self.template, self.client, region=self.region, account_id=self.account_id)
        self.parameters = parameter_values(self.template, self.parameter_overrides)
        self.resolver = Resolver(
            self.template, self.parameters, self.resources, region=self.region, account_id=self.account_id
        )
        self.resources.provision(self.resolver)

    def client(self, service: str) -> Any:
        return self._session.client(service, endpoint_url=self.moto_url)

    def _load_functions(self) -> threading.Thread:
        """Every function's pool; the thread returned starts each one's first container."""
        specs = function_specs(self.template, self.resolver)
        shared, own = split_environment(specs)
        local_env = {
            "RIGHTSDESK_STAGE": "local",
            "PUBLIC_BASE_URL": self.base_url,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_NAMESPACE": "rightsdesk",
            "ALLOW_HTTP_WEBHOOKS": "true",  # the demo receiver is plain http on loopback
        }
        os.environ.update({**shared, **local_env})
        for layer in reversed(self._layer_paths()):
            sys.path.insert(0, str(layer))  # where Lambda mounts layers (/opt/python)
        self._bind_core()
        assert self._zygote is not None
        self._zygote.prepare(list(sys.path), self._layer_paths(), dict(os.environ), self.background_priority)
        first: list[LoadedFunction] = []
        for spec in specs:
            function = LoadedFunction(
                spec,
                self.template.root,
                self.region,
                self.account_id,
                zygote=self._zygote,
                max_containers=self.max_containers,
            )
            env = {**os.environ, **{k: v for k, v in own[spec.logical_id].items() if k not in local_env}}
            if function.prepare(env, list(sys.path)):
                first.append(function)
            self.functions[spec.logical_id] = function
        starter = threading.Thread(target=self._start_first_containers, args=(first,), name="containers")
        starter.start()
        return starter

    @staticmethod
    def _start_first_containers(functions: list[LoadedFunction]) -> None:
        forked = [(function, function.fork()) for function in functions]  # the fork server answers in turn
        for function, container in forked:  # while the modules import, each in its own container
            function.wait_ready(container)

    def _layer_paths(self) -> list[Path]:
        paths = []
        for resource in self.template.of_type("AWS::Serverless::LayerVersion").values():
            content = (resource.get("Properties") or {}).get("ContentUri")
            if isinstance(content, str) and (self.template.root / content).is_dir():
                folder = self.template.root / content
                paths.append(folder / "python" if (folder / "python").is_dir() else folder)
        return paths

    def _bind_core(self) -> None:
        """Point the core's cached settings, models and secrets at this run's resources."""
        try:
            from rightsdesk.platform import config, hashing
            from rightsdesk.store.items.table import bind_table
        except ImportError:
            log.debug("the rightsdesk core is not importable; nothing to bind")
            return
        config.reload()
        hashing.forget_key()
        # The core's modules cache their boto3 clients and offer forget_clients(); a core imported
        # before this stack started may hold clients for an earlier moto.
        for name, module in list(sys.modules.items()):
            if name.startswith("rightsdesk.") and callable(getattr(module, "forget_clients", None)):
                module.forget_clients()
        if os.environ.get("RIGHTSDESK_TABLE"):
            bind_table(os.environ["RIGHTSDESK_TABLE"])
        try:  # powertools keeps one secrets client per process; a restarted stack needs a new one
            from aws_lambda_powertools.utilities.parameters import base

            base.DEFAULT_PROVIDERS.clear()
        except (ImportError, AttributeError):
            pass

    def _register_demo(self) -> None:
        table = os.environ.get("RIGHTSDESK_TABLE")
        tables = {p["name"] for p in self.resources.describe().values() if p["type"] == "AWS::DynamoDB::Table"}
        if not self.demo or table not in tables:
            self.demo_status = "skipped (no RIGHTSDESK_TABLE in this template)" if self.demo else "disabled"
            return
        from rightsdesk.kernel.errors import Conflict
        from rightsdesk.routing import controller_lookup, registry

        if controller_lookup.get_controller(DEMO["controller_id"]) is not None:
            self.demo_status = "already registered"
            return
        try:
            created = registry.register(
                name=DEMO["name"],
                site_key=DEMO["site_key"],
                domains=DEMO["domains"],
                contact_email=DEMO["contact_email"],
                delivery=DeliveryMode.WEBHOOK,
                webhook_url=self.demo_webhook_url,
                controller_id=DEMO["controller_id"],
            )
        except Conflict:
            self.demo_status = "already registered"
            return
        self.demo_api_key = created.api_key
        if created.webhook_secret:  # the demo receiver verifies signatures, as a controller should
            self.receiver_app.configure({"secret": created.webhook_secret})
        self.demo_status = "registered"

    # ------------------------------------------------------------------ facts and helpers
    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self._servers[0].port}"

    @property
    def receiver_url(self) -> str:
        return f"http://{HOST}:{self._servers[1].port}"

    @property
    def demo_webhook_url(self) -> str:
        return f"{self.receiver_url}/webhooks/demo"

    @property
    def moto_url(self) -> str:
        assert self._moto is not None
        return self._moto.url

    def sync_clock(self) -> None:
        """Tell moto's process where the injected clock stands (its SQS visibility timeouts follow it).
        /_dev/clock calls this; code that moves the clock in this process calls it after."""
        from rightsdesk.kernel import clock

        assert self._moto is not None
        self._moto.set_clock_offset(clock.offset_seconds())

    def executions_settled(self, pause: float = 0.2) -> int | None:
        """How many state machine executions are still running once none has moved on for `pause`
        seconds and no task message is visible (they wait for a retry on the injected clock, or a
        stopped run's last step); None if one moved meanwhile or a task is visible (drain again)."""
        machines = self.resources.state_machines()
        if not machines:
            return 0
        sfn = self.client("stepfunctions")

        def progress() -> dict[str, int]:
            running = {}
            for arn in machines:
                for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn, statusFilter="RUNNING"):
                    for execution in page["executions"]:
                        history = sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)
                        running[execution["executionArn"]] = len(history["events"])
            return running

        before = progress()
        if not before:
            return 0
        time.sleep(pause)
        after = progress()
        if before != after or self._tasks_visible():
            return None
        return len(after)

    def _tasks_visible(self) -> bool:
        from local.pollers import SqsPoller

        sqs = self.client("sqs")
        for url in {worker.queue_url for worker in self.workers if isinstance(worker, SqsPoller)}:
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
                "Attributes"
            ]
            if int(attributes.get("ApproximateNumberOfMessages", 0)):
                return True
        return False

    def outbox(self) -> list[dict]:
        """Every mail SES has "sent", in send order (local/outbox.py, read inside moto's process)."""
        assert self._moto is not None
        return self._moto.outbox(self.account_id, self.region)

    def clear_outbox(self) -> None:
        assert self._moto is not None
        self._moto.clear_outbox(self.account_id, self.region)

    def invoke(self, logical_id: str, event: Any) -> Any:
        return self.functions[logical_id].invoke(event)

    def health(self) -> dict:
        try:
            from rightsdesk.kernel import clock

            now = {"now": clock.isoformat(clock.now()), "offset_seconds": clock.offset_seconds()}
        except ImportError:
            now = None
        unavailable = {lid: fn.problem for lid, fn in self.functions.items() if not fn.available}
        return {
            "ok": True,
            "degraded": bool(unavailable),
            "moto": self.moto_url,
            "gateway": self.base_url,
            "receiver": self.receiver_url,
            "region": self.region,
            "functions": {
                "loaded": sorted(lid for lid, fn in self.functions.items() if fn.available),
                "unavailable": unavailable,
                "containers": {lid: fn.containers() for lid, fn in self.functions.items() if fn.available},
            },
            "routes": [f"{route.method} {route.resource}" for route in self.routes],
            "pollers": [worker.name for worker in self.workers],
            "schedules": self.schedules,
            "clock": now,
            "resources": self.resources.describe(),
            "demo": {
                "status": self.demo_status,
                "site_key": DEMO["site_key"],
                "controller_id": DEMO["controller_id"],
                "webhook_url": self.demo_webhook_url,
            },
            "started_in_seconds": round(self.started_in, 2) if self.started_in else None,
        }

    def banner(self) -> str:
        base = self.base_url
        unavailable = [f"{lid} ({fn.problem})" for lid, fn in self.functions.items() if not fn.available]
        routes = [f"{route.method} {route.resource}" for route in self.routes]
        lines = [
            f"rightsdesk local stack ready in {self.started_in:.1f}s ({self.template_path})",
            f"  {'form' if 'GET /' in routes else 'gateway':<11} {base}/",
            f"  api         {len(routes)} routes: {', '.join(routes[:5])}{', ...' if len(routes) > 5 else ''}",
            f"  dev         {base}/_dev/health  /_dev/outbox  /_dev/clock  /_dev/webhooks",
            f"              {base}/_dev/run/<FunctionLogicalId>  (POST: run a function now)  /_dev/faults",
            f"  moto        {self.moto_url}  (AWS_ENDPOINT_URL for boto3 and the CLI's --local)",
            f"  receiver    {self.demo_webhook_url}",
            f"  functions   {len(self.functions) - len(unavailable)} loaded; pollers: {len(self.workers)}; "
            f"schedules: {'on' if self.schedules else 'off (use /_dev/run)'}",
        ]
        if unavailable:
            lines.append(f"  unavailable {', '.join(unavailable)}")
        if self.demo_api_key:
            lines.append(
                f"  demo        site key '{DEMO['site_key']}' ({DEMO['domains'][0]}), controller "
                f"{DEMO['controller_id']}, API key {self.demo_api_key}  (shown once)"
            )
        else:
            lines.append(f"  demo        {self.demo_status}")
        lines.append("Ctrl-C stops everything.")
        return "\n".join(lines)
