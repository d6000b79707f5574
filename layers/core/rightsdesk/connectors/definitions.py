"""What an operator declares about one connector: a typed, validated description holding no secrets.

A definition says which store to reach (a table, a bucket, a user pool, an endpoint), through
which IAM role, which identity kinds it needs and which it yields for others, and what erasing
means there. It is stored as a plain dict (`to_dict` / `parse_definition`) and never carries a
credential: the role is assumed at run time, an HTTP signing secret is named by its Secrets
Manager ARN. A new connector runs dry (finds and plans, never writes) until it is enabled.

`needs` and `yields` are what the identity graph (rightsdesk.connectors.identity_graph) orders
connectors by; a definition set whose needs cannot be met is refused there, before anything runs.

Two declarations serve the processor role and Art. 17(3) (docs/connectors.md, "Tenant scoping"
and "Legal exceptions"):
- `tenant_scoped`: the connector holds many controllers' data and acts only within one tenant;
  it needs the seed identity `tenant_id` and every lookup it makes must use `{tenant_id}` (a key
  format, a filter, a prefix), or the definition is refused.
- `keep`: records the operator must keep for a stated legal basis and period (invoices, say);
  each rule's `match` is kind-specific (an attribute condition, an S3 key prefix or pattern).
"""

from __future__ import annotations

import re
import string
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from rightsdesk.kernel.errors import InvalidInput

# The template allows sts:AssumeRole only on roles named so (in the accounts it is given).
ROLE_NAME_PREFIX = "rightsdesk-connector-"
DEFAULT_CEILING = 1000
MAX_CEILING = 100_000
# A scan reads the whole table: allowed only for a small one, and it stops (failing) past this.
DEFAULT_SCAN_ITEM_CAP = 1000
MAX_SCAN_ITEM_CAP = 10_000
# An object is read whole into memory to be checked and rewritten (a Lambda function's memory).
DEFAULT_MAX_OBJECT_BYTES = 64 * 1024 * 1024
MAX_OBJECT_BYTES = 512 * 1024 * 1024
# The S3 index (rightsdesk.connectors.s3_index) reads each new object whole in the indexer, a
# smaller function than the worker: a larger object is filed "unindexed" and read at find time.
DEFAULT_INDEX_OBJECT_BYTES = 16 * 1024 * 1024
MAX_INDEX_OBJECT_BYTES = 128 * 1024 * 1024

# The seed identity a tenant-scoped connector is constrained by (the controller's tenant id).
TENANT_IDENTITY = "tenant_id"
TENANT_PLACEHOLDER = "{" + TENANT_IDENTITY + "}"
MAX_KEEP_RULES = 10
MAX_KEEP_DAYS = 36_500  # a century: any statutory retention period fits

IdentityKind = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
AttributeName = Annotated[str, Field(min_length=1, max_length=255)]
# What a subject may have corrected, as the operator names it (`--field display_name=...`).
SubjectField = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
MAX_RECTIFIABLE = 50
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})$")
_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]{1,512}$")


class DefinitionError(InvalidInput):
    """A definition (or a set of them) that cannot run: `fields` names what is wrong."""

    code = "invalid_connector_definition"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Definition(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    description: str = Field(default="", max_length=500)
    role_arn: str | None = None
    # sts:AssumeRole's ExternalId, when the role's trust policy asks for one (not a secret).
    external_id: str | None = Field(default=None, min_length=2, max_length=1224, pattern=r"^[\w+=,.@:/-]+$")
    region: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    enabled: bool = False
    ceiling: int = Field(default=DEFAULT_CEILING, ge=1, le=MAX_CEILING)
    # Holds many controllers' data: acts only within the tenant given as the seed `tenant_id`.
    tenant_scoped: bool = False

    @field_validator("role_arn")
    @classmethod
    def _role_in_pattern(cls, value: str | None) -> str | None:
        if value is None:
            return value
        match = _ROLE_ARN.fullmatch(value)
        if not match:
            raise ValueError("role_arn must be an IAM role ARN")
        if not match.group(2).startswith(ROLE_NAME_PREFIX):
            raise ValueError(f"the role's name must start with {ROLE_NAME_PREFIX}")
        return value

    @property
    def dry(self) -> bool:
        """True until the operator enables the connector: it finds and plans, never writes."""
        return not self.enabled

    @property
    def needs(self) -> frozenset[str]:
        raise NotImplementedError

    @property
    def yields(self) -> dict[str, str]:
        """Identity kind -> the attribute (or field) of a found record it is read from."""
        return {}

    @property
    def keep_rules(self) -> tuple[Any, ...]:
        """The declared legal exceptions (Art. 17(3)); kinds that support them override."""
        return ()

    def _tenant_needs(self, kinds: set[str]) -> frozenset[str]:
        return frozenset(kinds | {TENANT_IDENTITY} if self.tenant_scoped else kinds)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class _AwsDefinition(_Definition):
    role_arn: str  # required: every AWS store is reached through an assumed role


# ------------------------------------------------------------------ legal exceptions (Art. 17(3))


class _KeepRule(_Strict):
    """Records kept for a stated legal basis (e.g. "HGB §257: invoices, 10 years") for
    `period_days` from the erasure, then erased (rightsdesk.connectors.kept_records)."""

    basis: str = Field(min_length=3, max_length=300)
    period_days: int = Field(ge=1, le=MAX_KEEP_DAYS)

    @field_validator("basis")
    @classmethod
    def _stated(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("state the legal basis, e.g. 'HGB §257: invoices, 10 years'")
        return value.strip()


class DynamoKeepMatch(_Strict):
    """An attribute condition on the item: exactly one of `equals`, `begins_with`, `exists`."""

    attribute: AttributeName
    equals: str | int | None = None
    begins_with: str | None = Field(default=None, min_length=1, max_length=200)
    exists: Literal[True] | None = None

    @model_validator(mode="after")
    def _one_condition(self) -> DynamoKeepMatch:
        given = [name for name in ("equals", "begins_with", "exists") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("a keep match names one attribute and one of equals, begins_with or exists")
        return self

    def matches(self, item: Any) -> bool:
        if not isinstance(item, dict) or self.attribute not in item:
            return False
        value = item[self.attribute]
        if self.exists:
            return True
        if self.begins_with is not None:
            return isinstance(value, str) and value.startswith(self.begins_with)
        return not isinstance(value, bool) and value == self.equals


class DynamoKeep(_KeepRule):
    match: DynamoKeepMatch


class S3KeepMatch(_Strict):
    """The object's key: `key_prefix` (may name identities, e.g. invoices/{user_id}/) or
    `key_pattern` (a shell-style pattern, e.g. */invoices/*.pdf); exactly one."""

    key_prefix: str | None = Field(default=None, min_length=1, max_length=1024)
    key_pattern: str | None = Field(default=None, min_length=1, max_length=1024)

    @model_validator(mode="after")
    def _one_selector(self) -> S3KeepMatch:
        if (self.key_prefix is None) == (self.key_pattern is None):
            raise ValueError("a keep match names one of key_prefix or key_pattern")
        if self.key_prefix is not None:
            for name in placeholders(self.key_prefix):
                if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", name):
                    raise ValueError("a key_prefix names identities as {user_id}")
        return self

    def matches(self, key: str, identities: Any) -> bool:
        import fnmatch

        if self.key_pattern is not None:
            return fnmatch.fnmatchcase(key, self.key_pattern)
        names = placeholders(self.key_prefix or "")
        if any(not identities.get(name) for name in names):
            return False
        return key.startswith((self.key_prefix or "").format(**{name: identities[name] for name in names}))


class S3Keep(_KeepRule):
    match: S3KeepMatch


# ------------------------------------------------------------------ DynamoDB


class DynamoLookup(_Strict):
    """How the subject's items are found: `attribute` holds `value_format` filled with the identity.

    On the table's partition key (no index) or a GSI's partition key (`index_name`): a query. An
    attribute that is neither needs `allow_scan` (a small table only; capped by `scan_item_cap`)."""

    identity: IdentityKind
    attribute: AttributeName
    index_name: str | None = Field(default=None, min_length=3, max_length=255)
    value_format: str = Field(default="{value}", max_length=200)
    value_type: Literal["S", "N"] = "S"
    allow_scan: bool = False

    @field_validator("value_format")
    @classmethod
    def _one_placeholder(cls, value: str) -> str:
        names = [name for _, name, _, _ in string.Formatter().parse(value) if name is not None]
        if sorted(names) not in (["value"], sorted(["value", TENANT_IDENTITY])):
            raise ValueError(
                "value_format must hold {value} exactly once (and {tenant_id} at most once), e.g. USER#{value}"
            )
        return value

    @property
    def tenant_in_key(self) -> bool:
        return TENANT_PLACEHOLDER in self.value_format


class DynamoTenantFilter(_Strict):
    """A tenant-scoped table whose lookup key does not hold the tenant: the items must also have
    `attribute` equal to `value_format` filled with the tenant id (a filter on the query, and a
    condition on every erase write)."""

    attribute: AttributeName
    value_format: str = Field(default=TENANT_PLACEHOLDER, max_length=200)

    @field_validator("value_format")
    @classmethod
    def _tenant_placeholder(cls, value: str) -> str:
        if placeholders(value) != [TENANT_IDENTITY]:
            raise ValueError("value_format must hold {tenant_id} exactly once, e.g. TENANT#{tenant_id}")
        return value


class DynamoErase(_Strict):
    """`delete_item` deletes the subject's items; `remove_attributes` removes the named attributes;
    `overwrite_attributes` sets them to `overwrite_value` (for attributes a schema requires)."""

    mode: Literal["delete_item", "remove_attributes", "overwrite_attributes"] = "delete_item"
    attributes: list[AttributeName] = Field(default_factory=list, max_length=100)
    overwrite_value: str = Field(default="[erased]", max_length=100)


class DynamoDbDefinition(_AwsDefinition):
    kind: Literal["dynamodb"] = "dynamodb"
    table_name: str = Field(pattern=r"^[a-zA-Z0-9_.-]{3,255}$")
    partition_key: AttributeName
    sort_key: AttributeName | None = None
    lookup: DynamoLookup
    scan_item_cap: int = Field(default=DEFAULT_SCAN_ITEM_CAP, ge=1, le=MAX_SCAN_ITEM_CAP)
    erase: DynamoErase = Field(default_factory=DynamoErase)
    # Attributes to export (None: the whole item).
    export_attributes: list[AttributeName] | None = None
    yields_from: dict[IdentityKind, AttributeName] = Field(default_factory=dict, alias="yields")
    tenant_filter: DynamoTenantFilter | None = None
    keep: list[DynamoKeep] = Field(default_factory=list, max_length=MAX_KEEP_RULES)
    # Rectification: the subject-facing field -> the item's attribute it is written to.
    rectifiable: dict[SubjectField, AttributeName] = Field(default_factory=dict, max_length=MAX_RECTIFIABLE)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _consistent(self) -> DynamoDbDefinition:
        lookup = self.lookup
        if self.tenant_scoped and not (lookup.tenant_in_key or self.tenant_filter):
            raise ValueError("a tenant-scoped table needs {tenant_id} in lookup.value_format or a tenant_filter")
        if not self.tenant_scoped and (lookup.tenant_in_key or self.tenant_filter):
            raise ValueError("{tenant_id} and tenant_filter need tenant_scoped: true")
        on_table_key = lookup.index_name is None and lookup.attribute == self.partition_key
        if lookup.index_name is None and not on_table_key and not lookup.allow_scan:
            raise ValueError(
                "a lookup on an attribute that is no key needs an index_name (or allow_scan for a small table)"
            )
        if lookup.allow_scan and lookup.index_name is not None:
            raise ValueError("allow_scan applies to a lookup without an index")
        keys = {self.partition_key, self.sort_key} - {None}
        if self.erase.mode != "delete_item":
            if not self.erase.attributes:
                raise ValueError(f"erase mode {self.erase.mode} needs the attributes to erase")
            if keys & set(self.erase.attributes):
                raise ValueError("key attributes cannot be removed or overwritten; use delete_item")
        # A correction never rewrites what says whose (or which tenant's) item it is, nor an identity
        # the item yields for other connectors.
        guarded = keys | {lookup.attribute} | set(self.yields_from.values())
        if self.tenant_filter:
            guarded.add(self.tenant_filter.attribute)
        if guarded & set(self.rectifiable.values()):
            raise ValueError("rectifiable attributes cannot be key, lookup, tenant or yielded attributes")
        return self

    @property
    def needs(self) -> frozenset[str]:
        return self._tenant_needs({self.lookup.identity})

    @property
    def yields(self) -> dict[str, str]:
        return dict(self.yields_from)

    @property
    def keep_rules(self) -> tuple[DynamoKeep, ...]:
        return tuple(self.keep)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


# ------------------------------------------------------------------ S3


class RowFiles(_Strict):
    """JSON Lines or CSV objects under `prefix` whose rows name the subject in `field` (a JSON
    top-level key or a CSV header column): those rows are removed by a conditional rewrite.

    `index: true`: the subject's objects are found through the index kept from the bucket's
    object-created notifications (rightsdesk.connectors.s3_index), never by reading the prefix."""

    prefix: str = Field(min_length=1, max_length=1024)
    format: Literal["jsonl", "csv"]
    field: AttributeName
    identity: IdentityKind
    index: StrictBool = False

    @field_validator("prefix")
    @classmethod
    def _only_tenant_placeholder(cls, value: str) -> str:
        names = placeholders(value)
        if names and (names != [TENANT_IDENTITY] or value.startswith("{") or not value.endswith("/")):
            raise ValueError("a row-file prefix may name {tenant_id} once, after a fixed part, ending with /")
        return value

    @property
    def tenant_in_prefix(self) -> bool:
        return TENANT_PLACEHOLDER in self.prefix


def placeholders(template: str) -> list[str]:
    """The identity kinds a prefix template names: users/{user_id}/ -> [user_id]."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]


class S3Definition(_AwsDefinition):
    kind: Literal["s3"] = "s3"
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    # Per-subject prefixes, e.g. "users/{user_id}/": every object (every version) under one goes.
    subject_prefixes: list[str] = Field(default_factory=list, max_length=20)
    row_files: list[RowFiles] = Field(default_factory=list, max_length=20)
    max_object_bytes: int = Field(default=DEFAULT_MAX_OBJECT_BYTES, ge=1, le=MAX_OBJECT_BYTES)
    # Objects the indexer reads whole; a larger one is filed unindexed and read by every find.
    index_max_object_bytes: int = Field(default=DEFAULT_INDEX_OBJECT_BYTES, ge=1, le=MAX_INDEX_OBJECT_BYTES)
    # Tries of one conditional rewrite when the object keeps changing under it.
    rewrite_attempts: int = Field(default=5, ge=1, le=20)
    keep: list[S3Keep] = Field(default_factory=list, max_length=MAX_KEEP_RULES)

    @model_validator(mode="before")
    @classmethod
    def _not_rectifiable(cls, document: Any) -> Any:
        # Rewriting row files or objects for a correction is out of scope (docs/connectors.md).
        if isinstance(document, dict) and "rectifiable" in document:
            raise ValueError("an S3 connector is not rectifiable: its objects are not rewritten for a correction")
        return document

    @field_validator("subject_prefixes")
    @classmethod
    def _prefix_templates(cls, templates: list[str]) -> list[str]:
        for template in templates:
            names = placeholders(template)
            if not names or any(not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", name) for name in names):
                raise ValueError("a subject prefix names at least one identity, e.g. users/{user_id}/")
            if not template.endswith("/") or template.startswith("{"):
                raise ValueError("a subject prefix starts with a fixed part and ends with /, e.g. users/{user_id}/")
        return templates

    @model_validator(mode="after")
    def _something_to_do(self) -> S3Definition:
        if not self.subject_prefixes and not self.row_files:
            raise ValueError("an S3 connector needs subject_prefixes or row_files")
        with_tenant = [TENANT_IDENTITY in placeholders(t) for t in self.subject_prefixes]
        with_tenant += [rows.tenant_in_prefix for rows in self.row_files]
        if self.tenant_scoped and not all(with_tenant):
            raise ValueError("a tenant-scoped bucket needs {tenant_id} in every subject prefix and row-file prefix")
        if not self.tenant_scoped and any(with_tenant):
            raise ValueError("{tenant_id} in a prefix needs tenant_scoped: true")
        return self

    @property
    def indexed_row_files(self) -> tuple[RowFiles, ...]:
        """The row-file declarations found through the S3 index."""
        return tuple(files for files in self.row_files if files.index)

    @property
    def index_object_limit(self) -> int:
        """The largest object the indexer reads (never more than a find may read)."""
        return min(self.index_max_object_bytes, self.max_object_bytes)

    @property
    def needs(self) -> frozenset[str]:
        kinds = {name for template in self.subject_prefixes for name in placeholders(template)}
        return self._tenant_needs(kinds | {rows.identity for rows in self.row_files})

    @property
    def keep_rules(self) -> tuple[S3Keep, ...]:
        return tuple(self.keep)


# ------------------------------------------------------------------ Cognito

DEFAULT_SCRUB_ATTRIBUTES = (
    "email",
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "phone_number",
    "address",
    "birthdate",
    "picture",
)


COGNITO_NOT_RECTIFIABLE = frozenset({"email", "sub", "email_verified", "phone_number_verified", "username"})


class CognitoDefinition(_AwsDefinition):
    kind: Literal["cognito"] = "cognito"
    user_pool_id: str = Field(pattern=r"^[\w-]+_[0-9a-zA-Z]+$")
    # delete: AdminDeleteUser. disable_and_scrub: AdminDisableUser, then the attributes go
    # (email and phone_number, often required, are overwritten with a placeholder instead).
    erase_mode: Literal["delete", "disable_and_scrub"] = "delete"
    scrub_attributes: list[AttributeName] = Field(default_factory=lambda: list(DEFAULT_SCRUB_ATTRIBUTES))
    yields_from: dict[IdentityKind, AttributeName] = Field(
        default_factory=lambda: {"cognito_sub": "sub"}, alias="yields"
    )
    # Rectification: the subject-facing field -> the user attribute (`name`, `locale`, `custom:...`).
    rectifiable: dict[SubjectField, AttributeName] = Field(default_factory=dict, max_length=MAX_RECTIFIABLE)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("rectifiable")
    @classmethod
    def _correctable_attributes(cls, value: dict[str, str]) -> dict[str, str]:
        # email finds the user (and signs them in), sub is immutable: neither is corrected here.
        refused = set(value.values()) & COGNITO_NOT_RECTIFIABLE
        if refused:
            raise ValueError("email, sub and the verified flags cannot be rectifiable")
        return value

    @model_validator(mode="after")
    def _not_tenant_scoped(self) -> CognitoDefinition:
        # A user pool has no tenant condition to constrain a lookup by: one pool per tenant is
        # not modelled, so a tenant-scoped pool would use {tenant_id} nowhere.
        if self.tenant_scoped:
            raise ValueError("a Cognito connector cannot be tenant-scoped: its lookup has no {tenant_id}")
        return self

    @property
    def needs(self) -> frozenset[str]:
        return frozenset({"email"})

    @property
    def yields(self) -> dict[str, str]:
        return dict(self.yields_from)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


# ------------------------------------------------------------------ HTTP


class HttpDefinition(_Definition):
    """The product's own endpoint: a Standard Webhooks-signed POST per action, answered at once."""

    kind: Literal["http"] = "http"
    url: str = Field(min_length=8, max_length=2048, pattern=r"^https?://")
    needs_kinds: list[IdentityKind] = Field(min_length=1, max_length=10, alias="needs")
    # Identity kind -> the field of the find answer's `yields` object it comes from.
    yields_from: dict[IdentityKind, AttributeName] = Field(default_factory=dict, alias="yields")
    # The signing secret is kept in Secrets Manager; the definition names it only.
    signing_secret_arn: str
    # Rectification: the subject-facing field -> the name the product receives it under (`rectify`).
    rectifiable: dict[SubjectField, AttributeName] = Field(default_factory=dict, max_length=MAX_RECTIFIABLE)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("signing_secret_arn")
    @classmethod
    def _secret_arn(cls, value: str) -> str:
        if not _SECRET_ARN.fullmatch(value):
            raise ValueError("signing_secret_arn must be a Secrets Manager secret ARN")
        return value

    @model_validator(mode="after")
    def _tenant_named(self) -> HttpDefinition:
        # The product's endpoint is constrained by the tenant only if it is sent one.
        if self.tenant_scoped and TENANT_IDENTITY not in self.needs_kinds:
            raise ValueError("a tenant-scoped endpoint needs tenant_id")
        return self

    @property
    def needs(self) -> frozenset[str]:
        return frozenset(self.needs_kinds)

    @property
    def yields(self) -> dict[str, str]:
        return dict(self.yields_from)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


ConnectorDefinition = Annotated[
    DynamoDbDefinition | S3Definition | CognitoDefinition | HttpDefinition, Field(discriminator="kind")
]
KINDS = ("dynamodb", "s3", "cognito", "http")
_ADAPTER: TypeAdapter[Any] = TypeAdapter(ConnectorDefinition)


def parse_definition(
    document: dict[str, Any],
) -> DynamoDbDefinition | S3Definition | CognitoDefinition | HttpDefinition:
    """A definition from its stored (or typed) dict; DefinitionError names each bad field."""
    try:
        return _ADAPTER.validate_python(document)
    except ValidationError as error:
        fields: dict[str, str] = {}
        for problem in error.errors():
            if problem.get("type") in ("union_tag_invalid", "union_tag_not_found"):
                fields["kind"] = "kind must be one of " + ", ".join(KINDS)
                continue
            location = ".".join(str(part) for part in problem.get("loc", ()) if part not in KINDS) or "definition"
            # The message says what a valid value looks like; it never repeats the value given.
            fields.setdefault(location, str(problem.get("msg", "invalid")).removeprefix("Value error, "))
        raise DefinitionError("the connector definition is not valid", fields=fields) from None


def account_of(role_arn: str) -> str:
    """The AWS account a role lives in (the template's AssumeRole allow-list is per account)."""
    match = _ROLE_ARN.fullmatch(role_arn)
    if not match:
        raise ValueError("not an IAM role ARN")
    return match.group(1)
