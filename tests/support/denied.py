"""Make one AWS operation answer AccessDenied on one client, as IAM would without the permission
(moto does not enforce IAM by default): for tests of what a missing permission looks like."""

from __future__ import annotations

from typing import Any


def deny(client: Any, operation: str) -> None:
    from botocore.awsrequest import AWSResponse

    error = {
        "Error": {"Code": "AccessDeniedException", "Message": "denied"},
        "ResponseMetadata": {"HTTPStatusCode": 400},
    }
    client.meta.events.register(
        f"before-call.{client.meta.service_model.endpoint_prefix}.{operation}",
        lambda **_: (AWSResponse("https://denied.invalid", 400, {}, None), error),
    )
