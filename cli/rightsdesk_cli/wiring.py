"""What the notice commands need beyond the table: the queues, and the hash key for contacts.

The core reads MAIL_QUEUE_URL, DELIVERY_QUEUE_URL and HASH_KEY_SECRET_ARN from the environment, as
in Lambda. They are found the way the table is: the local run's fixed names, a deployed stack's
outputs and resources, or (with RIGHTSDESK_TABLE) the environment the operator set.
"""

from __future__ import annotations

import os

from rightsdesk_cli.context import Context
from rightsdesk_cli.errors import CliError

LOCAL_PREFIX = "rightsdesk-local-"
OUTPUTS = {"MAIL_QUEUE_URL": "MailQueueUrl", "DELIVERY_QUEUE_URL": "DeliveryQueueUrl"}
SECRET_RESOURCE = "HashKeySecret"


def connect_mail(state: Context, *, hash_key: bool = False) -> Context:
    """Point the core's outbox (and, if asked, its keyed hashing) at the target; idempotent."""
    state.connect()
    env = os.environ
    if state.local:
        _local(env)
    elif state.stack:
        _stack(env, state.stack, hash_key)
    missing = [name for name in OUTPUTS if not env.get(name)]
    if hash_key and not (env.get("HASH_KEY_SECRET_ARN") or env.get("RIGHTSDESK_HASH_KEY")):
        missing.append("HASH_KEY_SECRET_ARN")
    if missing:
        raise CliError(f"set {', '.join(missing)} (or use --stack / --local)", code="no_target")
    from rightsdesk.platform import aws_clients, config, hashing

    config.reload()
    aws_clients.forget_clients()
    hashing.forget_key()
    return state


def connect_hash_key(state: Context) -> None:
    """Point the core's keyed hashing at the target's hash key (the local run's secret, a key or
    secret the environment names, or the stack's secret); idempotent."""
    env = os.environ
    if state.local:
        health = ((state.local_health or {}).get("resources") or {}).get(SECRET_RESOURCE) or {}
        env["HASH_KEY_SECRET_ARN"] = health.get("name") or LOCAL_PREFIX + SECRET_RESOURCE  # a name works as its id
    elif not (env.get("HASH_KEY_SECRET_ARN") or env.get("RIGHTSDESK_HASH_KEY")):
        if not state.stack:
            raise CliError(
                "set HASH_KEY_SECRET_ARN (or use --stack / --local): operator actions are recorded "
                "with a keyed hash of who ran them",
                code="no_target",
            )
        env["HASH_KEY_SECRET_ARN"] = _hash_key_secret(state.stack)
    else:
        return
    from rightsdesk.platform import config, hashing

    config.reload()
    hashing.forget_key()


def _hash_key_secret(stack: str) -> str:
    """The secret's ARN is no output (outputs are world-readable to the account); its resource is."""
    import boto3

    resource = boto3.client("cloudformation").describe_stack_resource(
        StackName=stack, LogicalResourceId=SECRET_RESOURCE
    )
    return resource["StackResourceDetail"]["PhysicalResourceId"]


def _local(env: os._Environ) -> None:
    import boto3

    sqs = boto3.client("sqs")
    for name, logical_id in (("MAIL_QUEUE_URL", "MailQueue"), ("DELIVERY_QUEUE_URL", "DeliveryQueue")):
        env[name] = sqs.get_queue_url(QueueName=LOCAL_PREFIX + logical_id)["QueueUrl"]
    env["HASH_KEY_SECRET_ARN"] = LOCAL_PREFIX + SECRET_RESOURCE  # a secret's name works as its id


def _stack(env: os._Environ, stack: str, hash_key: bool) -> None:
    import boto3

    cloudformation = boto3.client("cloudformation")
    described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    outputs = {output["OutputKey"]: output["OutputValue"] for output in described.get("Outputs", [])}
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", [])}
    if parameters.get("SenderEmail"):
        env["MAIL_FROM"] = parameters["SenderEmail"]  # the notices' default contact address
    for name, key in OUTPUTS.items():
        if key not in outputs:
            raise CliError(f"stack {stack} has no output {key}; deploy the current template", code="not_rightsdesk")
        env[name] = outputs[key]
    if hash_key:
        env["HASH_KEY_SECRET_ARN"] = _hash_key_secret(stack)


# ------------------------------------------------------------------ connector executions
EXECUTION_OUTPUTS = {
    "CONNECTOR_STATE_MACHINE_ARN": "ConnectorStateMachineArn",
    "RECEIPT_SIGNING_KEY_ID": "ReceiptSigningKeyArn",
}
EXECUTION_RESOURCES = {
    "CONNECTOR_STATE_MACHINE_ARN": "ConnectorStateMachine",
    "RECEIPT_SIGNING_KEY_ID": "ReceiptSigningKey",
    "DATA_KEY_ID": "DataKey",
}


def connect_executions(state: Context) -> Context:
    """Point the core's connector executions (rightsdesk.connectors.execution) at the target: its
    state machine, the receipt signing key, the data key that seals a run's identities, and the
    hash key (outcomes name identities by keyed hash); idempotent."""
    connect_mail(state)
    connect_hash_key(state)
    env = os.environ
    if state.local:
        created = (state.local_health or {}).get("resources") or {}
        for name, logical_id in EXECUTION_RESOURCES.items():
            env[name] = str((created.get(logical_id) or {}).get("name") or "")
    elif state.stack:
        import boto3

        cloudformation = boto3.client("cloudformation")
        described = cloudformation.describe_stacks(StackName=state.stack)["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
        for name, key in EXECUTION_OUTPUTS.items():
            env[name] = outputs.get(key, "")
        env["DATA_KEY_ID"] = cloudformation.describe_stack_resource(StackName=state.stack, LogicalResourceId="DataKey")[
            "StackResourceDetail"
        ]["PhysicalResourceId"]
    missing = [name for name in EXECUTION_RESOURCES if not env.get(name)]
    if missing:
        raise CliError(f"set {', '.join(missing)} (or use --stack / --local)", code="no_target")
    from rightsdesk.platform import aws_clients, config, sealing

    config.reload()
    aws_clients.forget_clients()
    sealing.forget_clients()
    return state
