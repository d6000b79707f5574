"""Production readiness in template.yaml: every alarm reaches a person through one
encrypted topic, the alarms the runbook promises exist and watch metrics the code really emits, the
dashboard shows every function and queue, traces carry no personal data, and the IAM rule of
test_template.py covers every function, including ones added later.

As in test_template.py, each rule returns its problems, and is tried on broken copies at the end.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.template.test_template import (
    ROOT,
    check_iam,
    dead_letter_queues,
    load_template,
    props,
    referenced_ids,
    resources,
)

TOPIC = "AlarmTopic"
# (namespace, metric, extra condition) an alarm must watch; the runbook in docs/operations.md has a section for each.
REQUIRED_ALARMS = {
    "dispatcher errors": ("AWS/Lambda", "Errors", "DispatcherFunction"),
    "overdue requests": ("rightsdesk", "OverdueRequests", None),
    "breach deadline at risk": ("rightsdesk", "BreachDeadlineAtRisk", None),
    "SES bounce rate": ("AWS/SES", "Reputation.BounceRate", None),
    "email delivery bounced": ("rightsdesk", "DeliveryBounced", None),
    "pull request never fetched": ("rightsdesk", "PullRequestsUndelivered", None),
}


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template()


# ------------------------------------------------------------------ rules


def check_alarm_actions(tpl: dict) -> list[str]:
    problems = []
    for name, alarm in resources(tpl, "AWS::CloudWatch::Alarm").items():
        for key in ("AlarmActions", "OKActions"):
            if TOPIC not in referenced_ids(props(alarm).get(key)):
                problems.append(f"{name}: {key} does not notify {TOPIC}")
    return problems


def check_topic(tpl: dict) -> list[str]:
    topic = resources(tpl, "AWS::SNS::Topic").get(TOPIC)
    if topic is None:
        return [f"{TOPIC} is missing"]
    problems = []
    if "DataKey" not in referenced_ids(props(topic).get("KmsMasterKeyId")):
        problems.append(f"{TOPIC}: not encrypted with DataKey")
    parameter = (tpl.get("Parameters") or {}).get("AlarmEmail")
    if parameter is None or parameter.get("Default") != "":
        problems.append("AlarmEmail: no deploy parameter (empty by default)")
    subscriptions = [
        s
        for s in resources(tpl, "AWS::SNS::Subscription").values()
        if TOPIC in referenced_ids(props(s).get("TopicArn"))
    ]
    if not any(
        props(s).get("Protocol") == "email" and "AlarmEmail" in referenced_ids(props(s).get("Endpoint"))
        for s in subscriptions
    ):
        problems.append(f"{TOPIC}: no email subscription to AlarmEmail")
    for policy in resources(tpl, "AWS::SNS::TopicPolicy").values():
        for statement in props(policy).get("PolicyDocument", {}).get("Statement", []):
            if statement.get("Principal") == "*" or statement.get("Principal", {}).get("AWS") == "*":
                problems.append(f"{TOPIC}: a topic policy lets anyone publish")
            if "aws:SourceAccount" not in json.dumps(statement.get("Condition")):
                problems.append(f"{TOPIC}: a topic policy statement without aws:SourceAccount")
    return problems


def check_required_alarms(tpl: dict) -> list[str]:
    problems = []
    alarms = [props(a) for a in resources(tpl, "AWS::CloudWatch::Alarm").values()]
    for label, (namespace, metric, function) in REQUIRED_ALARMS.items():
        found = [
            a
            for a in alarms
            if a.get("Namespace") == namespace
            and a.get("MetricName") == metric
            and (function is None or function in referenced_ids(a.get("Dimensions")))
        ]
        if not found:
            problems.append(f"no alarm on {label} ({namespace} {metric})")
    return problems


def emitted_metrics(root: Path = ROOT) -> dict[str, set[str]]:
    """Service name -> the metric names its handler passes to powertools' add_metric."""
    found: dict[str, set[str]] = {}
    for app in (root / "functions").glob("*/*.py"):
        names = set(re.findall(r'add_metric\(\s*name="([A-Za-z0-9_]+)"', app.read_text()))
        found.setdefault(app.parent.name, set()).update(names)
    return found


def service_names(tpl: dict) -> dict[str, str]:
    """Function folder -> POWERTOOLS_SERVICE_NAME (the dimension powertools puts on its metrics)."""
    names = {}
    for fn in resources(tpl, "AWS::Serverless::Function").values():
        env = (props(fn).get("Environment") or {}).get("Variables") or {}
        if isinstance(env.get("POWERTOOLS_SERVICE_NAME"), str):
            names[Path(props(fn)["CodeUri"]).name] = env["POWERTOOLS_SERVICE_NAME"]
    return names


def check_custom_metrics_are_emitted(tpl: dict, root: Path = ROOT) -> list[str]:
    problems = []
    emitted = emitted_metrics(root)
    services = service_names(tpl)
    for name, alarm in resources(tpl, "AWS::CloudWatch::Alarm").items():
        p = props(alarm)
        if p.get("Namespace") != "rightsdesk":
            continue
        service = next((d["Value"] for d in p.get("Dimensions") or [] if d.get("Name") == "service"), None)
        folders = [folder for folder, svc in services.items() if svc == service]
        if not folders or not any(p.get("MetricName") in emitted.get(folder, set()) for folder in folders):
            problems.append(f"{name}: no function with service {service!r} emits {p.get('MetricName')}")
    return problems


def check_dashboard(tpl: dict) -> list[str]:
    dashboards = resources(tpl, "AWS::CloudWatch::Dashboard")
    if not dashboards:
        return ["no AWS::CloudWatch::Dashboard"]
    shown = set().union(*(referenced_ids(props(d).get("DashboardBody")) for d in dashboards.values()))
    wanted = set(resources(tpl, "AWS::Serverless::Function", "AWS::SQS::Queue", "AWS::CloudWatch::Alarm"))
    return [f"the dashboard does not show {name}" for name in sorted(wanted - shown)]


def check_traces(tpl: dict) -> list[str]:
    """Lambda records its own segments for every function (invocation, init, overhead); the code adds
    none (test_no_function_loads_a_tracer), so a trace holds timings, never a request's contents."""
    problems = [] if tpl["Globals"]["Function"].get("Tracing") == "Active" else ["Globals: Tracing is not Active"]
    for name, function in resources(tpl, "AWS::Serverless::Function").items():
        if props(function).get("Tracing") not in (None, "Active"):
            problems.append(f"{name}: Tracing is {props(function)['Tracing']}, not Lambda's own segments")
    return problems


def check_checkov_skips(tpl: dict) -> list[str]:
    """`make security` must fail nothing; a check skipped inline says why, in words."""
    problems = []
    for name, resource in resources(tpl).items():
        for skip in ((resource.get("Metadata") or {}).get("checkov") or {}).get("skip") or []:
            if not re.fullmatch(r"CKV2?_AWS_\d+", str(skip.get("id"))) or len(str(skip.get("comment") or "")) < 30:
                problems.append(f"{name}: checkov skip {skip.get('id')} without a written reason")
    return problems


def test_every_checkov_skip_has_a_reason(template):
    assert check_checkov_skips(template) == []


def test_every_alarm_notifies_the_alarm_topic(template):
    assert resources(template, "AWS::CloudWatch::Alarm")
    assert check_alarm_actions(template) == []


def test_the_alarm_topic_is_encrypted_and_emails_the_deploy_parameter(template):
    assert check_topic(template) == []


def test_the_runbooks_alarms_exist(template):
    assert check_required_alarms(template) == []
    assert dead_letter_queues(template), "and the DLQ alarms (test_template.py checks each DLQ has one)"


def test_custom_metric_alarms_watch_metrics_the_code_emits(template):
    assert check_custom_metrics_are_emitted(template) == []


def test_the_dashboard_shows_every_function_queue_and_alarm(template):
    assert check_dashboard(template) == []
    body = props(next(iter(resources(template, "AWS::CloudWatch::Dashboard").values())))["DashboardBody"]["Fn::Sub"]
    json.loads(re.sub(r"\$\{[^}]+\}", "x", body))  # valid JSON once CloudFormation has substituted it


def test_lambda_records_its_own_segments_for_every_function(template):
    assert check_traces(template) == []


# Every handler imported as Lambda imports it, with the X-Ray SDK unavailable, as in the layer.
_IMPORT_EVERY_HANDLER = r"""
import importlib.util, sys
from pathlib import Path
from aws_lambda_powertools import Tracer
sys.modules["aws_xray_sdk"] = None  # importing it now raises ImportError
for app in sorted(Path("functions").glob("*/app.py")):
    sys.path.insert(0, str(app.parent))
    spec = importlib.util.spec_from_file_location(f"handler_{app.parent.name}", app)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.path.remove(str(app.parent))
    tracers = [name for name, value in vars(module).items() if isinstance(value, Tracer)]
    assert not tracers, f"{app}: {tracers}"
"""


def test_no_function_loads_a_tracer():
    """powertools' Tracer brings the X-Ray SDK, whose sampler built two botocore clients on
    every cold start, and a tracer can store answers and error messages (personal data) in X-Ray.
    The layer no longer ships the SDK; a handler that needs it fails here rather than in Lambda."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "layers" / "core"),
        "AWS_DEFAULT_REGION": "eu-central-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "RIGHTSDESK_HASH_KEY": "testing",
    }
    run = subprocess.run(
        [sys.executable, "-c", _IMPORT_EVERY_HANDLER], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-2000:]
    requirements = (ROOT / "layers" / "core" / "requirements.txt").read_text()
    assert "aws-xray-sdk" not in requirements and "[tracer]" not in requirements, "the layer ships no X-Ray SDK"


def test_the_iam_rule_covers_every_function(template):
    """test_template.py's check_iam must catch a data action on '*' in any function, new ones too."""
    for name in resources(template, "AWS::Serverless::Function"):
        broken = copy.deepcopy(template)
        broken["Resources"][name]["Properties"].setdefault("Policies", []).append(
            {"Statement": [{"Effect": "Allow", "Action": "dynamodb:Query", "Resource": "*"}]}
        )
        assert any(name in problem for problem in check_iam(broken)), name


# ------------------------------------------------------------------ the checks can fail


def _without(path: list[str]) -> Callable[[dict], None]:
    def mutate(tpl: dict) -> None:
        node: Any = tpl
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


MUTATIONS: dict[str, tuple[Callable[[dict], list[str]], Callable[[dict], None]]] = {
    "an alarm nobody hears": (
        check_alarm_actions,
        _without(["Resources", "MailDeadLetterAlarm", "Properties", "AlarmActions"]),
    ),
    "an unencrypted topic": (check_topic, _without(["Resources", TOPIC, "Properties", "KmsMasterKeyId"])),
    "no email subscription": (check_topic, _without(["Resources", "AlarmEmailSubscription"])),
    "no overdue alarm": (check_required_alarms, _without(["Resources", "OverdueRequestsAlarm"])),
    "an alarm on a metric nobody emits": (
        check_custom_metrics_are_emitted,
        lambda tpl: tpl["Resources"]["OverdueRequestsAlarm"]["Properties"].update(MetricName="OverdueRequestz"),
    ),
    "a function missing from the dashboard": (
        check_dashboard,
        lambda tpl: tpl["Resources"]["OperationsDashboard"]["Properties"].update(DashboardBody={"Fn::Sub": "{}"}),
    ),
    "a skip without a reason": (
        check_checkov_skips,
        lambda tpl: tpl["Resources"]["PublicApi"]["Metadata"]["checkov"]["skip"].append({"id": "CKV_AWS_59"}),
    ),
    "no traces": (check_traces, _without(["Globals", "Function", "Tracing"])),
    "a function without Lambda's segments": (
        check_traces,
        lambda tpl: tpl["Resources"]["PublicApiFunction"]["Properties"].update(Tracing="PassThrough"),
    ),
}


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_the_checks_catch(template, mutation):
    check, mutate = MUTATIONS[mutation]
    assert check(template) == []
    broken = copy.deepcopy(template)
    mutate(broken)
    assert check(broken) != []
