"""Create the template's data stores in moto and answer Ref / GetAtt for every resource.

Only the types in CREATORS mean something locally. Everything else (alarms, log groups, aliases, the
API, the layer, the functions themselves) gets a placeholder name and ARN so references still resolve.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from local.intrinsics import Resolver, Unresolvable
from local.template import Template, TemplateError

log = logging.getLogger("local")

PREFIX = "rightsdesk-local-"


def physical_name(logical_id: str) -> str:
    return PREFIX + logical_id


def api_id(logical_id: str) -> str:
    # REST API ids are ten lowercase alphanumerics; derive one so URLs and method ARNs are stable.
    return hashlib.sha1(logical_id.encode()).hexdigest()[:10]


@dataclass
class Physical:
    type: str
    ref: Any
    atts: dict[str, Any] = field(default_factory=dict)


def _referenced_names(node: Any) -> set[str]:
    """Logical ids a property tree points at (Ref, GetAtt, ${X} in Sub)."""
    names: set[str] = set()
    if isinstance(node, list):
        for item in node:
            names |= _referenced_names(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                names.add(value)
            elif key == "Fn::GetAtt":
                names.add(value[0] if isinstance(value, list) else str(value).split(".", 1)[0])
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                names |= {part.split(".", 1)[0] for part in _sub_names(text)}
                names |= _referenced_names(value if isinstance(value, str) else value[1])
            else:
                names |= _referenced_names(value)
    return names


def _sub_names(text: str) -> list[str]:
    return re.findall(r"\$\{([^}!][^}]*)\}", text)


class Resources:
    def __init__(self, template: Template, client: Callable[[str], Any], *, region: str, account_id: str):
        self.template = template
        self.client = client
        self.region = region
        self.account_id = account_id
        self.created: dict[str, Physical] = {}
        self.resolver: Resolver | None = None

    # ------------------------------------------------------------------ lookups
    def ref(self, logical_id: str) -> Any:
        return self._physical(logical_id).ref

    def get_att(self, logical_id: str, attribute: str) -> Any:
        physical = self._physical(logical_id)
        if attribute not in physical.atts:
            raise Unresolvable(f"GetAtt {logical_id}.{attribute} has no local value")
        return physical.atts[attribute]

    def _physical(self, logical_id: str) -> Physical:
        if logical_id in self.created:
            return self.created[logical_id]
        resource_type = self.template.resources[logical_id].get("Type", "")
        if resource_type in CREATORS:
            raise Unresolvable(f"{logical_id} is referenced before it exists (circular reference?)")
        return self._placeholder(logical_id, resource_type)

    def _placeholder(self, logical_id: str, resource_type: str) -> Physical:
        name = physical_name(logical_id)
        if resource_type in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            arn = f"arn:aws:lambda:{self.region}:{self.account_id}:function:{name}"
            return Physical(resource_type, name, {"Arn": arn})
        if resource_type in ("AWS::Serverless::Api", "AWS::ApiGateway::RestApi"):
            return Physical(resource_type, api_id(logical_id), {"RootResourceId": "root"})
        service = resource_type.split("::")[1].lower() if resource_type.count("::") >= 2 else "local"
        return Physical(resource_type, name, {"Arn": f"arn:aws:{service}:{self.region}:{self.account_id}:{name}"})

    def queue_url_by_arn(self, arn: str) -> str | None:
        return next(
            (p.ref for p in self.created.values() if p.type == "AWS::SQS::Queue" and p.atts["Arn"] == arn), None
        )

    def table_by_stream_arn(self, arn: str) -> str | None:
        return next(
            (
                p.ref
                for p in self.created.values()
                if p.type == "AWS::DynamoDB::Table" and p.atts.get("StreamArn") == arn
            ),
            None,
        )

    def state_machines(self) -> list[str]:
        return [p.ref for p in self.created.values() if p.type == "AWS::Serverless::StateMachine"]

    def describe(self) -> dict[str, dict]:
        return {lid: {"type": p.type, "name": p.ref} for lid, p in self.created.items()}

    # ------------------------------------------------------------------ creation
    def provision(self, resolver: Resolver) -> None:
        self.resolver = resolver
        for logical_id in self._creation_order():
            resource = self.template.resources[logical_id]
            if not resolver.active(resource):
                log.debug("%s: condition false, not created", logical_id)
                continue
            creator = CREATORS[resource["Type"]]
            try:
                self.created[logical_id] = creator(self, logical_id, resource.get("Properties") or {})
            except (BotoCoreError, ClientError, KeyError, ValueError) as error:
                raise TemplateError(f"{logical_id} ({resource['Type']}) cannot be created locally: {error}") from error
        for logical_id, resource in self.template.resources.items():
            if resource.get("Type") not in (*CREATORS, *ELSEWHERE):
                log.debug("%s (%s): no local meaning, skipped", logical_id, resource.get("Type"))

    def _creation_order(self) -> list[str]:
        handled = {lid for lid, res in self.template.resources.items() if res.get("Type") in CREATORS}
        order: list[str] = []
        visiting: set[str] = set()

        def visit(logical_id: str) -> None:
            if logical_id in order or logical_id in visiting:
                return
            visiting.add(logical_id)
            properties = self.template.resources[logical_id].get("Properties") or {}
            for dependency in sorted(_referenced_names(properties) & handled):
                visit(dependency)
            visiting.discard(logical_id)
            order.append(logical_id)

        for logical_id in sorted(handled):
            visit(logical_id)
        return order

    def _resolve(self, properties: dict, *keys: str) -> dict:
        assert self.resolver is not None
        return self.resolver.resolve({key: properties[key] for key in keys if key in properties})

    # ------------------------------------------------------------------ one creator per type
    def _table(self, logical_id: str, properties: dict) -> Physical:
        p = self._resolve(
            properties,
            "AttributeDefinitions",
            "KeySchema",
            "BillingMode",
            "ProvisionedThroughput",
            "GlobalSecondaryIndexes",
            "LocalSecondaryIndexes",
            "StreamSpecification",
            "TimeToLiveSpecification",
        )
        name = physical_name(logical_id)
        provisioned = p.get("BillingMode", "PROVISIONED") != "PAY_PER_REQUEST"
        throughput = _throughput(p.get("ProvisionedThroughput"))
        args: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": p["AttributeDefinitions"],
            "KeySchema": p["KeySchema"],
            "BillingMode": "PROVISIONED" if provisioned else "PAY_PER_REQUEST",
        }
        if provisioned:
            args["ProvisionedThroughput"] = throughput
        if p.get("GlobalSecondaryIndexes"):
            args["GlobalSecondaryIndexes"] = [
                _index(index, throughput if provisioned else None) for index in p["GlobalSecondaryIndexes"]
            ]
        if p.get("LocalSecondaryIndexes"):
            args["LocalSecondaryIndexes"] = [_index(index, None) for index in p["LocalSecondaryIndexes"]]
        stream = p.get("StreamSpecification")
        if stream and stream.get("StreamViewType"):
            args["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
        dynamodb = self.client("dynamodb")
        dynamodb.create_table(**args)
        ttl = p.get("TimeToLiveSpecification")
        if ttl and _truthy(ttl.get("Enabled")):
            dynamodb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
            )
        table = dynamodb.describe_table(TableName=name)["Table"]
        atts = {"Arn": table["TableArn"]}
        if table.get("LatestStreamArn"):
            atts["StreamArn"] = table["LatestStreamArn"]
        return Physical("AWS::DynamoDB::Table", name, atts)

    def _queue(self, logical_id: str, properties: dict) -> Physical:
        p = self._resolve(
            properties,
            "VisibilityTimeout",
            "MessageRetentionPeriod",
            "DelaySeconds",
            "MaximumMessageSize",
            "ReceiveMessageWaitTimeSeconds",
            "FifoQueue",
            "ContentBasedDeduplication",
            "RedrivePolicy",
            "RedriveAllowPolicy",
        )
        fifo = _truthy(p.get("FifoQueue"))
        name = physical_name(logical_id) + (".fifo" if fifo else "")
        attributes = {}
        for key, value in p.items():
            if isinstance(value, (dict, list)):
                attributes[key] = json.dumps(value)
            elif isinstance(value, bool):
                attributes[key] = str(value).lower()
            else:
                attributes[key] = str(value)
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return Physical("AWS::SQS::Queue", url, {"Arn": arn, "QueueName": name, "QueueUrl": url})

    def _secret(self, logical_id: str, properties: dict) -> Physical:
        p = self._resolve(properties, "SecretString", "GenerateSecretString", "Description")
        value = p.get("SecretString")
        if value is None:
            value = _generate_secret(p.get("GenerateSecretString") or {})
        args = {"Name": physical_name(logical_id), "SecretString": value}
        if p.get("Description"):
            args["Description"] = p["Description"]
        arn = self.client("secretsmanager").create_secret(**args)["ARN"]
        return Physical("AWS::SecretsManager::Secret", arn, {"Id": arn})

    def _kms_key(self, logical_id: str, properties: dict) -> Physical:
        p = self._resolve(properties, "Description", "KeySpec", "KeyUsage")
        args = {"Description": p.get("Description", logical_id)}
        # The receipt signing key is ECC_NIST_P256 SIGN_VERIFY: created as the template says, or
        # receipts could not be signed locally.
        if p.get("KeySpec"):
            args["KeySpec"] = p["KeySpec"]
        if p.get("KeyUsage"):
            args["KeyUsage"] = p["KeyUsage"]
        metadata = self.client("kms").create_key(**args)["KeyMetadata"]
        return Physical("AWS::KMS::Key", metadata["KeyId"], {"Arn": metadata["Arn"], "KeyId": metadata["KeyId"]})

    def _email_identity(self, logical_id: str, properties: dict) -> Physical:
        identity = str(self._resolve(properties, "EmailIdentity")["EmailIdentity"])
        ses = self.client("ses")
        # moto marks identities verified at once, which is what lets the handlers' sends succeed.
        if "@" in identity:
            ses.verify_email_identity(EmailAddress=identity)
        else:
            ses.verify_domain_identity(Domain=identity)
        return Physical("AWS::SES::EmailIdentity", identity, {})

    def _configuration_set(self, logical_id: str, properties: dict) -> Physical:
        name = physical_name(logical_id)
        self.client("ses").create_configuration_set(ConfigurationSet={"Name": name})
        return Physical("AWS::SES::ConfigurationSet", name, {})

    def _bucket(self, logical_id: str, properties: dict) -> Physical:
        # Bucket names are global and lowercase; encryption, lifecycle and the public access block
        # have no local meaning (moto keeps the objects in memory).
        name = physical_name(logical_id).lower()
        s3 = self.client("s3")
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": self.region})
        return Physical(
            "AWS::S3::Bucket", name, {"Arn": f"arn:aws:s3:::{name}", "DomainName": f"{name}.s3.amazonaws.com"}
        )

    def _state_machine(self, logical_id: str, properties: dict) -> Physical:
        """The state machine from its ASL file, ${Name} replaced by DefinitionSubstitutions; moto
        runs it (local/stack.py turns execution on) with service integrations calling moto itself."""
        p = self._resolve(properties, "DefinitionSubstitutions", "Type")
        uri = properties.get("DefinitionUri")
        if not isinstance(uri, str):
            raise ValueError("only a DefinitionUri file is supported locally")
        definition = (self.template.root / uri).read_text(encoding="utf-8")
        for name, value in (p.get("DefinitionSubstitutions") or {}).items():
            definition = definition.replace("${" + name + "}", str(value))
        name = physical_name(logical_id)
        role = f"arn:aws:iam::{self.account_id}:role/{name}-role"
        arn = self.client("stepfunctions").create_state_machine(
            name=name, definition=definition, roleArn=role, type=str(p.get("Type") or "STANDARD")
        )["stateMachineArn"]
        return Physical("AWS::Serverless::StateMachine", arn, {"Arn": arn, "Name": name})


def _event_bus(self: Resources, logical_id: str, properties: dict) -> Physical:
    """A custom EventBridge bus in moto; the runner routes its rules (local.pollers.EventRulePoller)."""
    name = str(self._resolve(properties, "Name").get("Name") or physical_name(logical_id))
    arn = self.client("events").create_event_bus(Name=name)["EventBusArn"]
    return Physical("AWS::Events::EventBus", name, {"Arn": arn, "Name": name})


CREATORS: dict[str, Callable[[Resources, str, dict], Physical]] = {
    "AWS::DynamoDB::Table": Resources._table,
    "AWS::SQS::Queue": Resources._queue,
    "AWS::SecretsManager::Secret": Resources._secret,
    "AWS::KMS::Key": Resources._kms_key,
    "AWS::SES::EmailIdentity": Resources._email_identity,
    "AWS::SES::ConfigurationSet": Resources._configuration_set,
    "AWS::Events::EventBus": _event_bus,
    "AWS::S3::Bucket": Resources._bucket,
    "AWS::Serverless::StateMachine": Resources._state_machine,
}


# Types the function loader and the gateway stand in for, not created here.
ELSEWHERE = ("AWS::Serverless::Function", "AWS::Serverless::Api")


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _throughput(value: dict | None) -> dict:
    value = value or {}
    return {
        "ReadCapacityUnits": int(value.get("ReadCapacityUnits", 5)),
        "WriteCapacityUnits": int(value.get("WriteCapacityUnits", 5)),
    }


def _index(index: dict, throughput: dict | None) -> dict:
    out = {key: index[key] for key in ("IndexName", "KeySchema", "Projection") if key in index}
    if throughput is not None:
        own = index.get("ProvisionedThroughput")
        out["ProvisionedThroughput"] = _throughput(own) if own else throughput
    return out


def _generate_secret(spec: dict) -> str:
    """GenerateSecretString, the options that shape the value; never logged, only stored in moto."""
    length = int(spec.get("PasswordLength", 32))
    alphabet = ""
    if not _truthy(spec.get("ExcludeLowercase")):
        alphabet += string.ascii_lowercase
    if not _truthy(spec.get("ExcludeUppercase")):
        alphabet += string.ascii_uppercase
    if not _truthy(spec.get("ExcludeNumbers")):
        alphabet += string.digits
    if not _truthy(spec.get("ExcludePunctuation")):
        alphabet += string.punctuation
    if _truthy(spec.get("IncludeSpace")):
        alphabet += " "
    excluded = set(spec.get("ExcludeCharacters", ""))
    alphabet = "".join(ch for ch in alphabet if ch not in excluded) or string.ascii_letters
    value = "".join(secrets.choice(alphabet) for _ in range(length))
    if spec.get("SecretStringTemplate") and spec.get("GenerateStringKey"):
        document = json.loads(spec["SecretStringTemplate"])
        document[spec["GenerateStringKey"]] = value
        return json.dumps(document)
    return value
