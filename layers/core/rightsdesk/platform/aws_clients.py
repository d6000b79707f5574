"""The core's AWS clients (SQS, SES, KMS): botocore clients, one per service, built on first use.

botocore rather than boto3: the core calls client methods only, and `import boto3` adds s3transfer
and boto3's resource layer to every cold start that loads a module holding a client (about 15 ms,
a seventh of bare boto3). pynamodb already brings botocore. Credentials, region and
`AWS_ENDPOINT_URL` are read from the environment exactly as boto3 reads them.
"""

from __future__ import annotations

import threading
from functools import cache, lru_cache
from typing import Any

_building = threading.Lock()


@lru_cache(maxsize=1)
def _session() -> Any:
    import botocore.session

    return botocore.session.get_session()


@cache
def client(service: str) -> Any:
    with _building:  # a botocore session is not safe to build clients from in two threads at once
        return _session().create_client(service)


def forget_clients() -> None:
    """Drop every client: the next call builds one for the environment as it is now (tests and the
    local runner point the core at a new moto)."""
    client.cache_clear()
    _session.cache_clear()
