"""How a connector reaches its store: a boto3 session on credentials of the role it names.

rightsdesk assumes the definition's role (sts:AssumeRole; cross-account works the same) with a
session name that says who acts and for which request (`rightsdesk-<request id>`), never who the
subject is: the name appears in the store's CloudTrail. The factory is injectable (`SessionFactory`)
so tests build sessions on moto's STS, and the orchestration can cache per execution.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

SessionFactory = Callable[[Any, str], Any]  # (definition, request_id) -> boto3.Session

SESSION_SECONDS = 900  # the shortest STS allows: a connector step is short, and retried anew
_NAME_UNSAFE = re.compile(r"[^\w+=,.@-]")


def session_name(request_id: str) -> str:
    """`rightsdesk-<request id>`, in RoleSessionName's alphabet and length (2-64)."""
    return ("rightsdesk-" + _NAME_UNSAFE.sub("-", request_id))[:64]


def assumed_role_session(definition: Any, request_id: str, *, sts_client: Any = None) -> Any:
    """A boto3 session on temporary credentials of `definition.role_arn`."""
    import boto3

    if not definition.role_arn:
        raise ValueError("this connector assumes no role")
    region = definition.region
    sts = sts_client or boto3.session.Session(region_name=region).client("sts")
    parameters: dict[str, Any] = {
        "RoleArn": definition.role_arn,
        "RoleSessionName": session_name(request_id),
        "DurationSeconds": SESSION_SECONDS,
    }
    if definition.external_id:
        parameters["ExternalId"] = definition.external_id
    credentials = sts.assume_role(**parameters)["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region or sts.meta.region_name,
    )
