"""Plumbing the handlers share around powertools and SQS, kept out of the rules.

- An idempotent function whose store is built on its first call, not at import: powertools'
  DynamoDB store creates its client when built, a cost a cold start need not pay before it knows it
  needs it. Records are keyed on the wrapped function's module and name: renaming either forgets
  what was stored.
- Sending a received message back after a delay (the retry schedules of the dispatcher and the
  notifier): the message's visibility timeout, changed in place.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from functools import lru_cache
from typing import Any

log = logging.getLogger(__name__)


def idempotent_on_first_use(function: Callable, *, data_keyword_argument: str, config: Any) -> Callable[[], Callable]:
    """An accessor for `function` made idempotent on `data_keyword_argument` (powertools'
    idempotent_function with the IDEMPOTENCY_TABLE store), built when first asked for."""

    @lru_cache(maxsize=1)
    def idempotent() -> Callable:
        from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, idempotent_function

        persistence = DynamoDBPersistenceLayer(table_name=os.environ.get("IDEMPOTENCY_TABLE", "rightsdesk-idempotency"))
        return idempotent_function(function, data_keyword_argument=data_keyword_argument,
                                   persistence_store=persistence, config=config)

    return idempotent


@lru_cache(maxsize=1)
def _sqs():
    import boto3

    return boto3.client("sqs")


def come_back_after(queue_url: str, receipt_handle: str, seconds: int) -> None:
    """The received message becomes visible again in `seconds`. If that fails, the queue's own
    visibility timeout brings it back instead: later than planned, never lost."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        _sqs().change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds)
    except (ClientError, BotoCoreError) as error:
        log.warning("could not schedule the retry", extra={"error_type": type(error).__name__})
