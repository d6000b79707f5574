"""The one reader of the environment in the core: template.yaml sets it, the local runner and tests too.

`settings()` holds what a process reads once. The accessors below it read at each call what is
read on use or set during one function's import only (the local runner sets a function's own
variables while its module imports), so a cached Settings would miss them. No other core module
reads os.environ (tests/unit/test_config_environment.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from rightsdesk.kernel import retention

SUPPORTED_LOCALES = ("en", "de", "sl")
DEFAULT_LOCALE = "en"


@dataclass(frozen=True)
class Settings:
    stage: str = "local"
    table_name: str = "rightsdesk-rights"
    mail_queue_url: str = ""
    delivery_queue_url: str = ""
    hash_key_secret_arn: str = ""
    hash_key: str = ""  # only for tests and the local runner; Lambda reads the secret
    mail_from: str = "privacy@example.com"
    ses_configuration_set: str = ""
    public_base_url: str = ""
    cors_allow_origins: tuple[str, ...] = field(default_factory=tuple)
    max_body_bytes: int = 16 * 1024
    data_key_id: str = ""  # the KMS key that seals webhook secrets
    # Only the local run sets ALLOW_HTTP_WEBHOOKS: its demo receiver is plain http on loopback.
    allow_http_webhooks: bool = False
    # Who the hourly watch warns when a breach deadline is near (template parameter OperatorEmail).
    operator_email: str = ""
    # The operator's own supervisory authority (template parameters SupervisoryAuthority*), named to
    # subjects who complain about the operator's own processing; empty if not configured.
    authority_name: str = ""
    authority_url: str = ""
    authority_email: str = ""
    # Abuse limits (rightsdesk.store.limits; template parameters Limit*): strict per address, generous
    # per source (one office or one mobile carrier can share an address).
    codes_per_address_per_hour: int = 3
    submissions_per_source_per_minute: int = 30
    failed_codes_per_address_per_hour: int = 10
    failed_codes_per_source_per_hour: int = 60
    subject_mails_per_request_per_day: int = 3

    @property
    def is_local(self) -> bool:
        return self.stage == "local"


LIMIT_FIELDS = (
    "codes_per_address_per_hour",
    "submissions_per_source_per_minute",
    "failed_codes_per_address_per_hour",
    "failed_codes_per_source_per_hour",
    "subject_mails_per_request_per_day",
)


def _count(value: str | None, default: int) -> int:
    """A positive whole number from the environment; empty or unset keeps the default."""
    if not value or not value.strip():
        return default
    number = int(value)
    if number < 1:
        raise ValueError("a limit must be at least 1")
    return number


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@lru_cache(maxsize=1)
def settings() -> Settings:
    env = os.environ
    return Settings(
        stage=env.get("RIGHTSDESK_STAGE", "local"),
        table_name=env.get("RIGHTSDESK_TABLE", "rightsdesk-rights"),
        mail_queue_url=env.get("MAIL_QUEUE_URL", ""),
        delivery_queue_url=env.get("DELIVERY_QUEUE_URL", ""),
        hash_key_secret_arn=env.get("HASH_KEY_SECRET_ARN", ""),
        hash_key=env.get("RIGHTSDESK_HASH_KEY", ""),
        mail_from=env.get("MAIL_FROM", "privacy@example.com"),
        ses_configuration_set=env.get("SES_CONFIGURATION_SET", ""),
        public_base_url=env.get("PUBLIC_BASE_URL", "").rstrip("/"),
        cors_allow_origins=_csv(env.get("CORS_ALLOW_ORIGINS", "")),
        data_key_id=env.get("DATA_KEY_ID", ""),
        # Never in a deployed stage, whatever the environment says.
        allow_http_webhooks=env.get("ALLOW_HTTP_WEBHOOKS", "").lower() == "true"
        and env.get("RIGHTSDESK_STAGE", "local") == "local",
        operator_email=env.get("OPERATOR_EMAIL", "").strip(),
        authority_name=env.get("SUPERVISORY_AUTHORITY_NAME", "").strip(),
        authority_url=env.get("SUPERVISORY_AUTHORITY_URL", "").strip(),
        authority_email=env.get("SUPERVISORY_AUTHORITY_EMAIL", "").strip(),
        # LIMIT_<FIELD>, e.g. LIMIT_CODES_PER_ADDRESS_PER_HOUR
        **{name: _count(env.get(f"LIMIT_{name.upper()}"), getattr(Settings, name)) for name in LIMIT_FIELDS},
    )


def reload() -> Settings:
    """Forget the cached settings (tests and the local runner change the environment)."""
    settings.cache_clear()
    return settings()


def variables() -> Mapping[str, str]:
    """The whole environment, live, for what takes a mapping of variables (the local run's endpoints)."""
    return os.environ


DEFAULT_REGION = "eu-central-1"


def aws_region() -> str:
    """The region the core's table and clients use, as boto3 reads it."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def use_region(region: str) -> None:
    """Make `region` the one every SDK client built from now on uses (tests, the CLI, the local runner)."""
    os.environ["AWS_DEFAULT_REGION"] = region


def idempotency_table() -> str:
    """Powertools' idempotency records (read when a function first needs its store)."""
    return os.environ.get("IDEMPOTENCY_TABLE", "rightsdesk-idempotency")


def retention_override_seconds(rule: retention.Rule) -> int | None:
    """A deployment's period for a rule of the retention table (template parameters Retention*,
    env RETENTION_<RULE>_SECONDS); None keeps the table's."""
    value = os.environ.get(f"RETENTION_{rule.value.upper()}_SECONDS")
    return int(value) if value else None


DEFAULT_ACCOUNT_CLASS = "default"


def account_class_days() -> dict[str, tuple[int | None, int | None]]:
    """Each account class's (warning days, deletion days) for rightsdesk.lifecycle: the default class
    from ACCOUNT_WARNING_DAYS / ACCOUNT_DELETION_DAYS (template parameters AccountInactivity*Days;
    empty or unset keeps the retention table's), others from ACCOUNT_CLASSES (template parameter
    AccountClasses), JSON `{"trial": [7, 14], ...}`."""
    import json

    def days(value: str | None) -> int | None:
        return int(value) if value and value.strip() else None

    found: dict[str, tuple[int | None, int | None]] = {
        DEFAULT_ACCOUNT_CLASS: (
            days(os.environ.get("ACCOUNT_WARNING_DAYS")),
            days(os.environ.get("ACCOUNT_DELETION_DAYS")),
        )
    }
    raw = os.environ.get("ACCOUNT_CLASSES", "").strip()
    for name, pair in (json.loads(raw) if raw else {}).items():
        warn, delete = pair
        found[str(name)] = (int(warn), int(delete))
    return found


def lifecycle_site() -> str:
    """The site key of the operator's own site (delivery internal) under which the lifecycle opens
    its erasure requests (template parameter LifecycleSite)."""
    return os.environ.get("LIFECYCLE_SITE", "").strip() or "platform"


def account_sign_in_url() -> str:
    """Where the inactivity warning sends a holder to keep the account (template parameter
    AccountSignInUrl); empty: the mail says to sign in, without a link."""
    return os.environ.get("ACCOUNT_SIGN_IN_URL", "").strip()


# The kernel reads no environment: it asks this module for the deployment's retention periods.
retention.use_overrides(retention_override_seconds)


# What one function reads while its module imports (template.yaml sets these on that function only).


def delivery_max_attempts(default: int) -> int:
    """The DeliveryQueue's maxReceiveCount, as the dispatcher is told it."""
    return int(os.environ.get("DELIVERY_MAX_ATTEMPTS") or default)


def mail_max_attempts(default: int) -> int:
    """The MailQueue's maxReceiveCount, as the notifier is told it."""
    return int(os.environ.get("MAIL_MAX_ATTEMPTS") or default)


def ses_max_send_rate() -> float:
    """SES's account send rate (mails a second); 0 sends unpaced (the local run)."""
    return float(os.environ.get("SES_MAX_SEND_RATE") or 0)


def notifier_concurrency() -> int:
    """How many notifier instances share SES's send rate."""
    return int(os.environ.get("NOTIFIER_CONCURRENCY") or 1)


# Carrying requests out through connectors (rightsdesk.connectors.execution; docs/connectors.md).
# Global variables: whoever starts, stops or steps an execution reads them (the CLI names them too).


def connector_state_machine_arn() -> str:
    """The Standard state machine that runs a request's connectors (ConnectorStateMachine)."""
    return os.environ.get("CONNECTOR_STATE_MACHINE_ARN", "")


def receipt_signing_key_id() -> str:
    """The ECC_NIST_P256 SIGN_VERIFY key that signs erasure receipts (ReceiptSigningKey)."""
    return os.environ.get("RECEIPT_SIGNING_KEY_ID", "")


def export_bucket() -> str:
    """The bucket that holds connector exports too large for a table item (ExportBucket)."""
    return os.environ.get("EXPORT_BUCKET", "")


def erasure_grace_hours() -> float:
    """How long an erasure through connectors waits before it runs (0: at once)."""
    value = os.environ.get("ERASURE_GRACE_HOURS", "")
    return max(0.0, float(value)) if value.strip() else 24.0


def connector_step_timeout_seconds() -> int:
    """How long one connector step may keep failing and being retried before its request parks."""
    return int(os.environ.get("CONNECTOR_STEP_TIMEOUT_SECONDS") or 900)


def connector_task_queue_url() -> str:
    """The queue the connector state machine's tasks arrive on (ConnectorTaskQueue): the worker
    sets a failed step's retry on it."""
    return os.environ.get("CONNECTOR_TASK_QUEUE_URL", "")
