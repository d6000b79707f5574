"""Settings read once from the environment (template.yaml sets them; the local runner too)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache

SUPPORTED_LOCALES = ("en", "de", "sl")
DEFAULT_LOCALE = "en"


@dataclass(frozen=True)
class Settings:
    stage: str = "local"
    table_name: str = "rightsdesk-rights"
    idempotency_table: str = "rightsdesk-idempotency"
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
    "codes_per_address_per_hour", "submissions_per_source_per_minute", "failed_codes_per_address_per_hour",
    "failed_codes_per_source_per_hour", "subject_mails_per_request_per_day",
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
        idempotency_table=env.get("IDEMPOTENCY_TABLE", "rightsdesk-idempotency"),
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
