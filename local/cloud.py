"""The fake AWS environment that points every SDK at this process's moto (local/moto_patches.py serves it)."""

from __future__ import annotations

import os

from moto.core import DEFAULT_ACCOUNT_ID

REGION = "eu-central-1"
ACCOUNT_ID = DEFAULT_ACCOUNT_ID


def fake_aws_environment(endpoint: str) -> None:
    """Credentials that can only ever reach moto: boto3, pynamodb and powertools all read these."""
    for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL_")] + ["AWS_PROFILE", "AWS_DEFAULT_PROFILE"]:
        os.environ.pop(name, None)  # a profile or a per-service endpoint would route around moto
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        AWS_SECURITY_TOKEN="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        AWS_ENDPOINT_URL=endpoint,
    )
