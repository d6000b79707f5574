"""Who the operator is: the IAM principal behind a CLI run, as the audit trail records it.

An operator action's audit event keeps `actor="operator"` (what every older reader, the subject's
export and the timelines read) and adds who it was: the AWS account, the principal's kind and
name, and a keyed hash of the full caller ARN. The ARN is never stored: the session part of an
assumed role's ARN is whatever the caller chose, and single sign-on puts the person's email address
there (`assumed-role/AWSReservedSSO_Admin_1a2b/jane.doe@example.com`). The hash still tells apart
two people behind one role, and proves a suspected one when an auditor with the hash key hashes
that person's ARN (docs/operations.md, "Who did it").

What is kept of a principal (the name part only where it names an account, never a session):
  arn:aws:iam::<acct>:user/<path>/<name>            user/<name>
  arn:aws:iam::<acct>:root                          root
  arn:aws:sts::<acct>:assumed-role/<role>/<session> role/<role>
  arn:aws:sts::<acct>:federated-user/<name>         federated-user (the name is chosen per session)
  anything else                                     unknown
A name that looks like an email address is withheld too (`user` alone): IAM allows `@` in user names.

The CLI resolves the identity once per run (one STS GetCallerIdentity, read for its `Arn` only; with
--local the OS user, `local:<user>`: rightsdesk_cli.context.Context.operator) and hands it to the core
functions that write audit events as their `actor`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from rightsdesk.platform import hashing

OPERATOR = "operator"
HASH_PURPOSE = "operator_arn"  # keyed_hash's domain separation: never equal to an address's hash
LOCAL_ACCOUNT = "local"
UNKNOWN = "unknown"
ACCOUNT = re.compile(r"\d{12}")
ARN = re.compile(r"arn:(?P<partition>aws[a-z-]*):(?P<service>iam|sts)::(?P<account>[^:]*):(?P<resource>.+)")
# Looks like an email address (or a domain-qualified login): withheld like a session name.
PERSONAL_NAME = re.compile(r"@")


@dataclass(frozen=True)
class OperatorIdentity:
    """The person (or machine) behind an operator action, without anything personal in plain."""

    account: str
    principal: str
    arn_hash: str
    actor: str = OPERATOR  # the audit event's actor word; `acting_as` changes it, not who it is

    def acting_as(self, actor: str) -> OperatorIdentity:
        """The same operator running a machine's job (e.g. the retention sweep run from the CLI)."""
        return replace(self, actor=actor)

    def as_record(self) -> dict[str, str]:
        return {"account": self.account, "principal": self.principal, "arn_hash": self.arn_hash}

    @property
    def label(self) -> str:
        return label(self.account, self.principal, self.arn_hash)


def label(account: str, principal: str, arn_hash: str) -> str:
    """One line for a table cell: principal, account and the hash's start (enough to tell apart)."""
    return f"{principal} @{account} #{arn_hash[:12]}"


# What core functions accept as `actor`: a machine's name ("dispatcher", "subject", ...) or an operator.
Actor = str | OperatorIdentity


# A controller acting through its API key, as audit events and runs name it: "controller:<id>".
CONTROLLER_ACTOR_PREFIX = "controller:"


def controller_actor(controller_id: str) -> str:
    return f"{CONTROLLER_ACTOR_PREFIX}{controller_id}"


def actor_name(actor: Actor) -> str:
    return actor.actor if isinstance(actor, OperatorIdentity) else actor


def operator_of(actor: Actor) -> OperatorIdentity | None:
    return actor if isinstance(actor, OperatorIdentity) else None


def principal_of(arn: str) -> tuple[str, str]:
    """(account, principal) of a caller ARN as STS returns it; pure, nothing personal in the result."""
    match = ARN.fullmatch(arn.strip())
    if not match:
        return UNKNOWN, UNKNOWN
    account = match["account"] if ACCOUNT.fullmatch(match["account"]) else UNKNOWN
    service, parts = match["service"], match["resource"].split("/")
    kind = parts[0]
    if service == "iam" and kind == "root" and len(parts) == 1:
        return account, "root"
    if service == "iam" and kind in ("user", "role") and len(parts) >= 2 and parts[-1]:
        return account, _named(kind, parts[-1])  # the path between is the operator's filing, not who
    if service == "sts" and kind == "assumed-role" and len(parts) >= 3 and parts[1]:
        return account, _named("role", parts[1])  # parts[2:] is the session name: never kept
    if service == "sts" and kind == "federated-user":
        return account, "federated-user"
    return account, UNKNOWN


def _named(kind: str, name: str) -> str:
    return kind if PERSONAL_NAME.search(name) else f"{kind}/{name}"


def from_caller(arn: str) -> OperatorIdentity:
    """The identity of a caller ARN (STS GetCallerIdentity's `Arn`), its keyed hash under the system's key."""
    account, principal = principal_of(arn)
    return OperatorIdentity(account=account, principal=principal, arn_hash=hashing.keyed_hash(HASH_PURPOSE, arn))


def local(user: str) -> OperatorIdentity:
    """The operator of a local run (`--local`): the OS user; moto's STS would answer one fixed
    identity for everybody, so it is not asked."""
    principal = f"local:{user or UNKNOWN}"
    return OperatorIdentity(
        account=LOCAL_ACCOUNT, principal=principal, arn_hash=hashing.keyed_hash(HASH_PURPOSE, principal)
    )
