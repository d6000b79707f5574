"""Checks on template.yaml and on what `sam build` made of it (run by `make test-template`).

Each rule is a function that returns the problems it finds in a template, so the rules can be
tried on broken copies of the template as well (see "the checks can fail" at the end): a check
that passes on any input protects nothing.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from local.template import event_sources
from local.template import read as read_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
BUILD = ROOT / ".aws-sam" / "build"

# The function logical IDs DESIGN.md makes a contract of (the local run and the docs use them).
DESIGN_FUNCTIONS = (
    "PublicApiFunction",
    "ControllerApiFunction",
    "ControllerAuthorizerFunction",
    "DispatcherFunction",
    "NotifierFunction",
    "RetentionFunction",
    "DeletionAuditFunction",
    "DeadlineWatchFunction",
    "SesEventsFunction",
)

# Lambda's limit for a function and all its layers, unzipped.
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024


# ------------------------------------------------------------------ loading


def load_template(path: Path = TEMPLATE) -> dict:
    return read_template(path)


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template()


# ------------------------------------------------------------------ helpers


def resources(tpl: dict, *types: str) -> dict[str, dict]:
    return {name: r for name, r in tpl.get("Resources", {}).items() if not types or r.get("Type") in types}


def props(resource: dict) -> dict:
    return resource.get("Properties") or {}


def events_of(tpl: dict, function: str) -> dict[str, dict]:
    """A function's triggers as SAM events, its event source mappings included (local.template)."""
    return event_sources(tpl, function)


def function_property(tpl: dict, resource: dict, name: str) -> Any:
    """A function's property as deployed: its own value, else the one from Globals."""
    own = props(resource)
    if name in own:
        return own[name]
    return ((tpl.get("Globals") or {}).get("Function") or {}).get(name)


def as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def referenced_ids(value: Any) -> set[str]:
    """Logical IDs a value points at through Ref, Fn::GetAtt or Fn::Sub."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                target = inner[0] if isinstance(inner, list) else str(inner).split(".", 1)[0]
                found.add(target)
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                found |= {m.split(".", 1)[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}
                if isinstance(inner, list) and len(inner) > 1:
                    found |= referenced_ids(inner[1])
            else:
                found |= referenced_ids(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= referenced_ids(inner)
    return found


# ------------------------------------------------------------------ rules: functions and build


def check_runtime(tpl: dict) -> list[str]:
    problems = []
    functions = resources(tpl, "AWS::Serverless::Function")
    if not any(name in functions for name in DESIGN_FUNCTIONS):
        problems.append("none of the functions DESIGN.md names is in the template")
    for name, fn in functions.items():
        runtime = function_property(tpl, fn, "Runtime")
        arch = function_property(tpl, fn, "Architectures")
        if runtime != "python3.13":
            problems.append(f"{name}: Runtime is {runtime!r}, not python3.13")
        if arch != ["arm64"]:
            problems.append(f"{name}: Architectures is {arch!r}, not [arm64]")
    for name in DESIGN_FUNCTIONS:
        if name in resources(tpl) and name not in functions:
            problems.append(f"{name}: is not an AWS::Serverless::Function")
    return problems


def check_build_methods(tpl: dict, root: Path = ROOT) -> list[str]:
    problems = []
    for name, fn in resources(tpl, "AWS::Serverless::Function").items():
        if (fn.get("Metadata") or {}).get("BuildMethod") != "makefile":
            problems.append(f"{name}: Metadata.BuildMethod is not makefile (sam build would need a local python3.13)")
        code_uri = props(fn).get("CodeUri")
        if not isinstance(code_uri, str):
            problems.append(f"{name}: CodeUri is not a local folder")
            continue
        folder = root / code_uri
        for needed in ("Makefile", "app.py"):
            if not (folder / needed).is_file():
                problems.append(f"{name}: {code_uri}/{needed} is missing")
        makefile = folder / "Makefile"
        target = rf"(FUNCTION\s*:?=\s*{name}\s*$|build-{name}\s*:)"  # via functions/function.mk, or its own
        if makefile.is_file() and not re.search(target, makefile.read_text(), re.M):
            problems.append(f"{name}: {code_uri}/Makefile has no build-{name} target")
    for name, layer in resources(tpl, "AWS::Serverless::LayerVersion").items():
        if (layer.get("Metadata") or {}).get("BuildMethod") != "makefile":
            problems.append(f"{name}: Metadata.BuildMethod is not makefile")
        folder = root / str(props(layer).get("ContentUri"))
        makefile = folder / "Makefile"
        if not makefile.is_file() or f"build-{name}:" not in makefile.read_text():
            problems.append(f"{name}: {folder.relative_to(root)}/Makefile has no build-{name} target")
    return problems


def test_every_function_runs_python313_on_arm64(template):
    assert check_runtime(template) == []


def test_globals_set_the_runtime_once(template):
    function_globals = template["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]


def test_every_function_and_layer_builds_with_make(template):
    assert check_build_methods(template) == []


# ------------------------------------------------------------------ rules: IAM

# Actions that read or write data; none may be granted on every resource.
DATA_ACTION_PATTERNS = (
    "dynamodb:*",
    "sqs:*",
    "ses:*",
    "s3:*",
    "kms:decrypt",
    "kms:encrypt",
    "kms:generatedatakey*",
    "secretsmanager:getsecretvalue",
)
# One concrete action per pattern, to catch granted wildcards such as "kms:*" or "*".
DATA_ACTION_SAMPLES = (
    "dynamodb:getitem",
    "sqs:sendmessage",
    "ses:sendemail",
    "s3:getobject",
    "kms:decrypt",
    "kms:encrypt",
    "kms:generatedatakey",
    "secretsmanager:getsecretvalue",
)


POLLED_EVENT_TYPES = ("SQS", "DynamoDB", "Kinesis", "MQ", "MSK", "SelfManagedKafka", "DocumentDB")


def is_data_action(action: str) -> bool:
    action = action.lower()
    return any(fnmatch.fnmatchcase(action, p) for p in DATA_ACTION_PATTERNS) or any(
        fnmatch.fnmatchcase(sample, action) for sample in DATA_ACTION_SAMPLES
    )


def identity_policy_documents(tpl: dict) -> Iterator[tuple[str, dict]]:
    """Every identity policy document in the template, as (where, document).

    Key policies (AWS::KMS::Key) are left out on purpose: there Resource "*" means the key itself.
    """
    for name, res in resources(tpl).items():
        kind, p = res.get("Type"), props(res)
        if kind in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            for i, policy in enumerate(as_list(p.get("Policies"))):
                if isinstance(policy, dict) and "Statement" in policy:
                    yield f"{name}.Policies[{i}]", policy
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            yield f"{name}.PolicyDocument", p.get("PolicyDocument") or {}
        elif kind == "AWS::IAM::Role":
            for i, policy in enumerate(as_list(p.get("Policies"))):
                yield f"{name}.Policies[{i}]", policy.get("PolicyDocument") or {}


def check_iam(tpl: dict) -> list[str]:
    problems = []
    for where, document in identity_policy_documents(tpl):
        for i, statement in enumerate(as_list(document.get("Statement"))):
            if statement.get("Effect") != "Allow":
                continue
            label = f"{where}.Statement[{i}]"
            if "NotAction" in statement or "NotResource" in statement:
                problems.append(f"{label}: NotAction/NotResource grants more than it names")
            everywhere = any(r == "*" for r in as_list(statement.get("Resource")))
            data_actions = [a for a in as_list(statement.get("Action")) if isinstance(a, str) and is_data_action(a)]
            if everywhere and data_actions:
                problems.append(f"{label}: {data_actions} on Resource '*'")
    # SAM policy templates put their argument into an ARN: "*" there widens it to everything.
    for name, fn in resources(tpl, "AWS::Serverless::Function", "AWS::Serverless::StateMachine").items():
        for policy in as_list(props(fn).get("Policies")):
            # A managed policy of the stack (`!Ref ConnectorAccessPolicy`) is checked as a resource.
            if isinstance(policy, dict) and "Statement" not in policy and "Ref" not in policy:
                for template_name, args in policy.items():
                    for arg, value in (args or {}).items():
                        if isinstance(value, str) and "*" in value:
                            problems.append(f"{name}: {template_name}.{arg} is {value!r}")
    # For these event types SAM attaches a managed policy (AWSLambdaSQSQueueExecutionRole, ...)
    # that lets the poller read every queue or stream in the account: the template declares an
    # AWS::Lambda::EventSourceMapping instead, beside a statement naming the one source.
    for name, fn in resources(tpl, "AWS::Serverless::Function").items():
        for event_name, event in (props(fn).get("Events") or {}).items():
            if event.get("Type") in POLLED_EVENT_TYPES:
                problems.append(f"{name}.{event_name}: a SAM {event['Type']} event grants its poller Resource '*'")
    return problems


def test_no_data_action_is_granted_on_every_resource(template):
    assert check_iam(template) == []


def check_log_encryption(tpl: dict) -> list[str]:
    """A log group encrypted with a key of ours needs the key to let CloudWatch Logs use it,
    for this account's log groups only; otherwise the log group cannot be created."""
    problems = []
    keys = resources(tpl, "AWS::KMS::Key")
    for name, group in resources(tpl, "AWS::Logs::LogGroup").items():
        for key in referenced_ids(props(group).get("KmsKeyId")) & set(keys):
            statements = as_list(props(keys[key]).get("KeyPolicy", {}).get("Statement"))
            logs = [s for s in statements if s.get("Effect") == "Allow" and "logs." in json.dumps(s.get("Principal"))]
            scoped = [
                s
                for s in logs
                if "kms:EncryptionContext:aws:logs:arn" in json.dumps(s.get("Condition"))
                and "${AWS::AccountId}:log-group:" in json.dumps(s.get("Condition"))
            ]
            if not scoped:
                problems.append(f"{name}: {key}'s policy does not let CloudWatch Logs use it for this account")
            if len(scoped) != len(logs):
                problems.append(f"{key}: CloudWatch Logs may use it without an encryption-context condition")
    return problems


def test_log_groups_can_use_their_key(template):
    assert check_log_encryption(template) == []


# ------------------------------------------------------------------ rules: data stores


def check_rights_table(tpl: dict) -> list[str]:
    table = tpl.get("Resources", {}).get("RightsTable")
    if table is None:
        return ["RightsTable is missing"]
    p, problems = props(table), []
    ttl = p.get("TimeToLiveSpecification") or {}
    if ttl.get("AttributeName") != "expires_at" or ttl.get("Enabled") is not True:
        problems.append("TTL is not enabled on expires_at")
    if (p.get("StreamSpecification") or {}).get("StreamViewType") != "NEW_AND_OLD_IMAGES":
        problems.append("stream is not NEW_AND_OLD_IMAGES")
    if (p.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled") is not True:
        problems.append("point-in-time recovery is off")
    sse = p.get("SSESpecification") or {}
    if sse.get("SSEEnabled") is not True or sse.get("SSEType") != "KMS" or not sse.get("KMSMasterKeyId"):
        problems.append("not encrypted with our KMS key")
    indexes = {i.get("IndexName") for i in p.get("GlobalSecondaryIndexes") or []}
    for index in ("GSI1", "GSI2"):
        if index not in indexes:
            problems.append(f"{index} is missing")
    for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
        if table.get(policy) != "Retain":
            problems.append(f"{policy} is not Retain")
    return problems


def test_rights_table_keeps_its_promises(template):
    assert check_rights_table(template) == []


def dead_letter_queues(tpl: dict) -> set[str]:
    queues = resources(tpl, "AWS::SQS::Queue")
    targets = set()
    for queue in queues.values():
        redrive = props(queue).get("RedrivePolicy") or {}
        targets |= referenced_ids(redrive.get("deadLetterTargetArn"))
    named = {name for name in queues if re.search(r"dead.?letter|dlq", name, re.I)}
    return (targets | named) & set(queues)


def check_queues(tpl: dict) -> list[str]:
    problems = []
    queues = resources(tpl, "AWS::SQS::Queue")
    dlqs = dead_letter_queues(tpl)
    for name, queue in queues.items():
        if name in dlqs:
            continue
        redrive = props(queue).get("RedrivePolicy") or {}
        target = referenced_ids(redrive.get("deadLetterTargetArn")) & dlqs
        if not target or not redrive.get("maxReceiveCount"):
            problems.append(f"{name}: no RedrivePolicy to a dead-letter queue of this template")
    alarmed = set()
    for alarm in resources(tpl, "AWS::CloudWatch::Alarm").values():
        p = props(alarm)
        if p.get("Namespace") == "AWS/SQS":
            alarmed |= referenced_ids(p.get("Dimensions"))
    for name in sorted(dlqs - alarmed):
        problems.append(f"{name}: dead-letter queue without an alarm")
    return problems


def test_every_queue_has_a_dead_letter_queue_with_an_alarm(template):
    assert dead_letter_queues(template), "no dead-letter queue found"
    assert check_queues(template) == []


# ------------------------------------------------------------------ rules: logs, API, outputs


def check_logs(tpl: dict) -> list[str]:
    problems = []
    groups = resources(tpl, "AWS::Logs::LogGroup")
    for name, group in groups.items():
        if not props(group).get("RetentionInDays"):
            problems.append(f"{name}: no RetentionInDays")
    # A function without its own log group writes to one Lambda creates, kept forever.
    for name, fn in resources(tpl, "AWS::Serverless::Function").items():
        target = (function_property(tpl, fn, "LoggingConfig") or {}).get("LogGroup")
        if not referenced_ids(target) & set(groups):
            problems.append(f"{name}: LoggingConfig.LogGroup is not a log group of this template")
    return problems


def test_every_log_group_expires(template):
    assert resources(template, "AWS::Logs::LogGroup")
    assert check_logs(template) == []


def check_api(tpl: dict) -> list[str]:
    problems = []
    apis = resources(tpl, "AWS::Serverless::Api")
    if not apis:
        problems.append("no AWS::Serverless::Api")
    for name, api in apis.items():
        throttled = [
            s
            for s in props(api).get("MethodSettings") or []
            if s.get("ResourcePath") == "/*"
            and s.get("HttpMethod") == "*"
            and s.get("ThrottlingRateLimit") is not None
            and s.get("ThrottlingBurstLimit") is not None
        ]
        if not throttled:
            problems.append(f"{name}: no throttling for every method (MethodSettings /* *)")
    # An Api event without RestApiId lands on SAM's implicit API, which has no throttling.
    for name, fn in resources(tpl, "AWS::Serverless::Function").items():
        for event_name, event in (props(fn).get("Events") or {}).items():
            api = referenced_ids((event.get("Properties") or {}).get("RestApiId"))
            if event.get("Type") == "Api" and not api & set(apis):
                problems.append(f"{name}.{event_name}: not on a throttled API of this template")
    return problems


def test_the_rest_api_is_throttled(template):
    assert check_api(template) == []


def check_outputs(tpl: dict) -> list[str]:
    secret_ids = set(resources(tpl, "AWS::SecretsManager::Secret", "AWS::IAM::AccessKey"))
    secret_ids |= {name for name, p in (tpl.get("Parameters") or {}).items() if p.get("NoEcho")}
    problems = []
    for name, output in (tpl.get("Outputs") or {}).items():
        value = output.get("Value")
        leaked = referenced_ids(value) & secret_ids
        if leaked:
            problems.append(f"output {name}: exposes {sorted(leaked)}")
        if re.search(r"\{\{resolve:(secretsmanager|ssm-secure):", json.dumps(value)):
            problems.append(f"output {name}: resolves a secret")
    return problems


def test_no_output_exposes_a_secret(template):
    assert check_outputs(template) == []


# ------------------------------------------------------------------ sample events


def api_routes(tpl: dict) -> dict[str, set[tuple[str, str]]]:
    """CodeUri folder -> {(method, path)} for every Api event."""
    routes: dict[str, set[tuple[str, str]]] = {}
    for fn in resources(tpl, "AWS::Serverless::Function").values():
        for event in (props(fn).get("Events") or {}).values():
            if event.get("Type") == "Api":
                p = event["Properties"]
                routes.setdefault(Path(props(fn)["CodeUri"]).name, set()).add((p["Method"].upper(), p["Path"]))
    return routes


def test_every_api_route_has_a_sample_event(template):
    for folder, routes in api_routes(template).items():
        covered = {
            (event["httpMethod"], event["resource"])
            for event in (json.loads(f.read_text()) for f in (ROOT / "events" / folder).glob("*.json"))
        }
        assert routes - covered == set(), f"events/{folder}/ lacks a sample for these routes"


def test_every_queue_triggered_function_has_a_sample_event(template):
    for name, fn in resources(template, "AWS::Serverless::Function").items():
        if any(e.get("Type") == "SQS" for e in events_of(template, name).values()):
            folder = ROOT / "events" / Path(props(fn)["CodeUri"]).name
            samples = [json.loads(f.read_text()) for f in folder.glob("*.json")]
            assert any(r.get("eventSource") == "aws:sqs" for s in samples for r in s.get("Records", [])), (
                f"{name}: no SQS sample event in {folder.relative_to(ROOT)}"
            )


# ------------------------------------------------------------------ samconfig


def test_samconfig_environments():
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert config["version"] == 0.1
    for env, stage in (("default", "dev"), ("dev", "dev"), ("prod", "prod")):
        deploy = config[env]["deploy"]["parameters"]
        merged = {**config[env].get("global", {}).get("parameters", {}), **deploy}
        assert merged["stack_name"] == f"rightsdesk-{stage}"
        assert merged["region"] == "eu-central-1"
        assert merged["capabilities"] == "CAPABILITY_IAM"
        assert merged["resolve_s3"] is True
        assert f"Stage={stage}" in merged["parameter_overrides"].split()
    assert config["prod"]["deploy"]["parameters"]["confirm_changeset"] is True


# ------------------------------------------------------------------ what sam build made


@pytest.fixture(scope="module")
def layer() -> Path:
    python = BUILD / "CoreLayer" / "python"
    if not python.is_dir():
        pytest.fail(f"{python.relative_to(ROOT)} is missing: run `make build` first")
    return python


def test_layer_holds_the_core_package_with_its_data(layer):
    assert (layer / "rightsdesk" / "__init__.py").is_file()
    source = ROOT / "layers" / "core" / "rightsdesk"
    shipped = {
        f.relative_to(source)
        for f in source.rglob("*")
        if f.is_file() and "__pycache__" not in f.parts and "tests" not in f.relative_to(source).parts
    }
    missing = sorted(str(f) for f in shipped if not (layer / "rightsdesk" / f).is_file())
    assert missing == [], "source files (templates/, locales/ included) missing from the layer"


ELF_MACHINE_AARCH64 = 183


def elf_machine(path: Path) -> int | None:
    header = path.read_bytes()[:20]
    if header[:4] != b"\x7fELF" or header[5] != 1:  # little-endian ELF only
        return None
    return int.from_bytes(header[18:20], "little")


def test_layer_was_built_for_python313_on_arm64(layer):
    assert list(layer.glob("pydantic_core/*cpython-313-aarch64*.so")), "no arm64/cp313 pydantic_core binary"
    binaries = list(layer.rglob("*.so")) + list(layer.rglob("*.so.*"))
    foreign = [str(so.relative_to(layer)) for so in binaries if elf_machine(so) != ELF_MACHINE_AARCH64]
    assert foreign == [], "binaries that are not arm64 Linux ones"
    other_python = [str(so.relative_to(layer)) for so in binaries if re.search(r"cpython-3(?!13-)\d+", so.name)]
    assert other_python == [], "extension modules for another Python than 3.13"


def test_layer_holds_no_caches_tests_or_scripts(layer):
    clutter = [
        str(p.relative_to(layer)) for p in layer.rglob("*") if p.name in ("__pycache__", "tests") or p.suffix == ".pyc"
    ]
    clutter += [str(p.relative_to(layer)) for p in (layer / "bin",) if p.exists()]
    assert clutter == []


def test_functions_ship_only_their_python_files(template):
    total_layer = sum(f.stat().st_size for f in (BUILD / "CoreLayer").rglob("*") if f.is_file())
    for name in resources(template, "AWS::Serverless::Function"):
        built = BUILD / name
        assert (built / "app.py").is_file(), f"{name}: app.py not in {built.relative_to(ROOT)}"
        others = [str(f.relative_to(built)) for f in built.rglob("*") if f.is_file() and f.suffix != ".py"]
        assert others == [], f"{name}: ships non-Python files"
        size = sum(f.stat().st_size for f in built.rglob("*") if f.is_file())
        assert size + total_layer < LAMBDA_UNZIPPED_LIMIT, f"{name}: function and layer exceed 250 MB unzipped"


# ------------------------------------------------------------------ the checks can fail


def _node(tpl: dict, path: str) -> Any:
    for key in path.split("."):
        tpl = tpl[key]
    return tpl


def _parent(tpl: dict, path: str) -> tuple[dict, str]:
    parent, _, last = path.rpartition(".")
    return _node(tpl, parent), last


def set_(path: str, value: Any) -> Callable[[dict], None]:
    def mutate(tpl: dict) -> None:
        node, key = _parent(tpl, path)
        node[key] = value

    return mutate


def delete(path: str) -> Callable[[dict], None]:
    def mutate(tpl: dict) -> None:
        node, key = _parent(tpl, path)
        del node[key]

    return mutate


def append(path: str, item: Any) -> Callable[[dict], None]:
    return lambda tpl: _node(tpl, path).append(item)


def drop(path: str, unwanted: Callable[[Any], bool]) -> Callable[[dict], None]:
    def mutate(tpl: dict) -> None:
        node, key = _parent(tpl, path)
        node[key] = [item for item in node[key] if not unwanted(item)]

    return mutate


def allow(action: str, resource: Any) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


WILDCARD_ROLE = {
    "Type": "AWS::IAM::Role",
    "Properties": {"Policies": [{"PolicyName": "p", "PolicyDocument": {"Statement": [allow("kms:*", ["*"])]}}]},
}
NOTIFIER = "Resources.NotifierFunction.Properties"
TABLE = "Resources.RightsTable.Properties"

# name -> (rule, how to break the template so that the rule must complain)
MUTATIONS: dict[str, tuple[Callable[[dict], list[str]], Callable[[dict], None]]] = {
    "function on python3.12": (check_runtime, set_(f"{NOTIFIER}.Runtime", "python3.12")),
    "function on x86_64": (check_runtime, set_("Globals.Function.Architectures", ["x86_64"])),
    "function built by SAM's python builder": (check_build_methods, set_("Resources.PublicApiFunction.Metadata", {})),
    "function folder without app.py": (check_build_methods, set_(f"{NOTIFIER}.CodeUri", "events")),
    "inline statement on '*'": (
        check_iam,
        append(f"{NOTIFIER}.Policies", {"Statement": [allow("dynamodb:GetItem", "*")]}),
    ),
    "role with kms:* on '*'": (check_iam, set_("Resources.ExtraRole", WILDCARD_ROLE)),
    "policy template on '*'": (check_iam, append(f"{NOTIFIER}.Policies", {"S3ReadPolicy": {"BucketName": "*"}})),
    "queue trigger as a SAM event": (
        check_iam,
        set_(
            f"{NOTIFIER}.Events",
            {"Mail": {"Type": "SQS", "Properties": {"Queue": {"Fn::GetAtt": ["MailQueue", "Arn"]}}}},
        ),
    ),
    "key policy without CloudWatch Logs": (
        check_log_encryption,
        drop("Resources.DataKey.Properties.KeyPolicy.Statement", lambda s: "logs." in json.dumps(s["Principal"])),
    ),
    "no TTL": (check_rights_table, delete(f"{TABLE}.TimeToLiveSpecification")),
    "keys-only stream": (check_rights_table, set_(f"{TABLE}.StreamSpecification.StreamViewType", "KEYS_ONLY")),
    "no PITR": (check_rights_table, delete(f"{TABLE}.PointInTimeRecoverySpecification")),
    "AWS-owned key": (check_rights_table, set_(f"{TABLE}.SSESpecification", {"SSEEnabled": False})),
    "no GSI2": (check_rights_table, drop(f"{TABLE}.GlobalSecondaryIndexes", lambda i: i["IndexName"] == "GSI2")),
    "table deleted with the stack": (check_rights_table, set_("Resources.RightsTable.DeletionPolicy", "Delete")),
    "queue without redrive": (check_queues, delete("Resources.MailQueue.Properties.RedrivePolicy")),
    "dead-letter queue without alarm": (check_queues, delete("Resources.MailDeadLetterAlarm")),
    "log group kept forever": (check_logs, delete("Resources.NotifierLogGroup.Properties.RetentionInDays")),
    "function on Lambda's default log group": (check_logs, delete(f"{NOTIFIER}.LoggingConfig")),
    "API without throttling": (check_api, delete("Resources.PublicApi.Properties.MethodSettings")),
    "route on the implicit API": (
        check_api,
        delete("Resources.PublicApiFunction.Properties.Events.Form.Properties.RestApiId"),
    ),
    "secret in an output": (check_outputs, set_("Outputs.Key", {"Value": {"Fn::Sub": "${HashKeySecret}"}})),
    "resolved secret in an output": (
        check_outputs,
        set_("Outputs.Key", {"Value": "{{resolve:secretsmanager:x:SecretString}}"}),
    ),
}


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_the_checks_catch(template, mutation):
    check, mutate = MUTATIONS[mutation]
    assert check(template) == [], "the template itself must pass before a broken copy can tell anything"
    broken = copy.deepcopy(template)
    mutate(broken)
    assert check(broken) != []


def test_the_loader_understands_short_tags(tmp_path):
    source = tmp_path / "template.yaml"
    source.write_text("a: !GetAtt X.Arn\nb: !Sub 'x-${Y}'\nc: !If [C, !Ref Z, n]\n")
    tpl = read_template(source)
    assert tpl == {
        "a": {"Fn::GetAtt": ["X", "Arn"]},
        "b": {"Fn::Sub": "x-${Y}"},
        "c": {"Fn::If": ["C", {"Ref": "Z"}, "n"]},
    }
    assert referenced_ids(tpl) == {"X", "Y", "Z"}


def test_every_polled_source_is_read_only_by_the_function_it_feeds(template):
    """An event source mapping polls with its function's role: that role names the source, and
    the poller's actions appear on no other resource."""
    reads = {"SQS": "sqs:ReceiveMessage", "DynamoDB": "dynamodb:GetRecords"}
    for name in resources(template, "AWS::Serverless::Function"):
        for event_name, event in events_of(template, name).items():
            kind = event.get("Type")
            if kind not in reads:
                continue
            source = event["Properties"]["Queue" if kind == "SQS" else "Stream"]
            granted = granted_resources(template, name, reads[kind])
            assert granted, f"{name}.{event_name}: its role cannot {reads[kind]}"
            assert all(referenced_ids(r) == referenced_ids(source) for r in granted), (
                f"{name}.{event_name}: {reads[kind]} reaches more than {source}"
            )


def granted_resources(tpl: dict, function: str, action: str) -> list:
    """Where a function's inline statements and SAM policy templates allow `action`."""
    found: list = []
    for policy in as_list(props(tpl["Resources"][function]).get("Policies")):
        if not isinstance(policy, dict):
            continue
        if "Statement" in policy:
            found += [
                s["Resource"]
                for s in as_list(policy["Statement"])
                if s.get("Effect") == "Allow" and action in as_list(s.get("Action"))
            ]
        elif action == "sqs:ReceiveMessage" and "SQSPollerPolicy" in policy:
            found.append(policy["SQSPollerPolicy"]["QueueName"])
    return found
