"""Plumbing the handlers share around powertools and SQS, kept out of the rules.

- An idempotent function whose idempotency utility, config and store are imported and built on its
  first call, not at import: powertools' idempotency package imports boto3 (and its DynamoDB store
  builds a client), a cost a cold start need not pay before it knows it needs it. Records are keyed
  on the wrapped function's module and name: renaming either forgets what was stored. With
  `payload_validation_jmespath`, a key reused with other data is refused (IdempotencyKeyReused, a
  422) instead of answered with the first call's result.
- Sending a received message back after a delay (the retry schedules of the dispatcher and the
  notifier): the message's visibility timeout, changed in place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from rightsdesk.kernel.errors import IdempotencyKeyReused
from rightsdesk.platform import aws_clients
from rightsdesk.platform.config import idempotency_table

log = logging.getLogger(__name__)


class AlreadyInProgress(Exception):
    """The same idempotency key is being processed by another invocation right now."""


class IdempotentOnFirstUse:
    """`function` made idempotent on `data_keyword_argument` by powertools' idempotent_function with
    the IDEMPOTENCY_TABLE store; `config` are IdempotencyConfig's arguments. Call it with keyword
    arguments, as the function itself."""

    def __init__(self, function: Callable, *, data_keyword_argument: str, **config: Any) -> None:
        self._function = function
        self._data_keyword_argument = data_keyword_argument
        self._config_arguments = config
        self._config: Any = None
        self._idempotent: Callable | None = None
        self._lambda_context: Any = None

    def register_lambda_context(self, lambda_context: Any) -> None:
        """Each invocation's context: an in-progress record expires with the invocation's time left."""
        self._lambda_context = lambda_context

    def _build(self) -> Callable:
        from aws_lambda_powertools.utilities.idempotency import (
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            idempotent_function,
        )

        self._config = IdempotencyConfig(**self._config_arguments)
        persistence = DynamoDBPersistenceLayer(table_name=idempotency_table())
        return idempotent_function(
            self._function,
            data_keyword_argument=self._data_keyword_argument,
            persistence_store=persistence,
            config=self._config,
        )

    def __call__(self, **arguments: Any) -> Any:
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyValidationError,
        )

        if self._idempotent is None:
            self._idempotent = self._build()
        if self._lambda_context is not None:
            self._config.register_lambda_context(self._lambda_context)
        try:
            return self._idempotent(**arguments)
        except IdempotencyAlreadyInProgressError:
            raise AlreadyInProgress() from None
        except IdempotencyValidationError:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used with a different request; use a new key for a new request",
                fields={"idempotency-key": "reused_with_other_body"},
            ) from None


def come_back_after(queue_url: str, receipt_handle: str, seconds: int) -> None:
    """The received message becomes visible again in `seconds`. If that fails, the queue's own
    visibility timeout brings it back instead: later than planned, never lost."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        aws_clients.client("sqs").change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )
    except (ClientError, BotoCoreError) as error:
        log.warning("could not schedule the retry", extra={"error_type": type(error).__name__})
