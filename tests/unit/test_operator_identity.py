"""Who the operator is: what the audit trail keeps of a caller ARN, and what it never keeps."""

from __future__ import annotations

import hashlib
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rightsdesk.platform import hashing, operator_identity
from rightsdesk.platform.operator_identity import OperatorIdentity, actor_name, from_caller, local, principal_of
from rightsdesk.store import audit

ACCOUNT = "123456789012"
JANE = f"arn:aws:sts::{ACCOUNT}:assumed-role/Operator/jane.doe@example.com"


@pytest.mark.parametrize(
    ("arn", "account", "principal"),
    [
        # IAM users: the user name names the account the operator was given; the path is filing only
        (f"arn:aws:iam::{ACCOUNT}:user/alice", ACCOUNT, "user/alice"),
        (f"arn:aws:iam::{ACCOUNT}:user/ops/eu/alice", ACCOUNT, "user/alice"),
        # ...unless it is an email address (IAM allows @ in user names): withheld like a session name
        (f"arn:aws:iam::{ACCOUNT}:user/jane.doe@example.com", ACCOUNT, "user"),
        # assumed roles: the role name, never the session name (single sign-on puts the email there)
        (
            f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_AdministratorAccess_1a2b3c/jane.doe@example.com",
            ACCOUNT,
            "role/AWSReservedSSO_AdministratorAccess_1a2b3c",
        ),
        (
            f"arn:aws:sts::{ACCOUNT}:assumed-role/RightsdeskOperator/botocore-session-1733300000",
            ACCOUNT,
            "role/RightsdeskOperator",
        ),
        # services: an EC2 instance profile and a Lambda function run as assumed roles too
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/ops-runner/i-0abc123def4567890", ACCOUNT, "role/ops-runner"),
        (
            f"arn:aws:sts::{ACCOUNT}:assumed-role/rightsdesk-cron-role/rightsdesk-cron",
            ACCOUNT,
            "role/rightsdesk-cron-role",
        ),
        # federated users: the name is chosen per GetFederationToken call, like a session name
        (f"arn:aws:sts::{ACCOUNT}:federated-user/jane.doe", ACCOUNT, "federated-user"),
        (f"arn:aws:iam::{ACCOUNT}:root", ACCOUNT, "root"),
        # other partitions
        (f"arn:aws-cn:sts::{ACCOUNT}:assumed-role/Ops/jane", ACCOUNT, "role/Ops"),
        (f"arn:aws-us-gov:iam::{ACCOUNT}:user/bob", ACCOUNT, "user/bob"),
        # what STS never returns, or nonsense: nothing of it is kept
        (f"arn:aws:sts::{ACCOUNT}:user/moto", ACCOUNT, "unknown"),  # moto's default identity
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/OnlyRole", ACCOUNT, "unknown"),
        (f"arn:aws:iam::{ACCOUNT}:group/admins", ACCOUNT, "unknown"),
        ("arn:aws:sts::not-an-account:assumed-role/Ops/jane", "unknown", "role/Ops"),
        ("jane.doe@example.com", "unknown", "unknown"),
        ("", "unknown", "unknown"),
    ],
)
def test_what_is_kept_of_a_caller_arn(arn, account, principal):
    assert principal_of(arn) == (account, principal)


# AWS's alphabet for a role session name ([\w+=,.@-], 2 to 64 characters)
SESSION_NAMES = st.text(alphabet=string.ascii_letters + string.digits + "_+=,.@-", min_size=2, max_size=64)


@given(session=SESSION_NAMES)
def test_no_session_name_survives_into_the_identity(session):
    arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/Operator/{session}"

    identity = from_caller(arn)

    assert identity.principal == "role/Operator"
    kept = " ".join(identity.as_record().values())
    assert f"Operator/{session}" not in kept and arn not in kept


def test_the_arn_is_kept_as_a_keyed_hash_that_tells_two_people_behind_one_role_apart():
    jane = from_caller(JANE)
    john = from_caller(f"arn:aws:sts::{ACCOUNT}:assumed-role/Operator/john.roe@example.com")

    assert (jane.account, jane.principal) == (john.account, john.principal)
    assert jane.arn_hash != john.arn_hash
    # the same person hashes the same way every run, so an auditor holding the key can confirm a suspicion
    assert jane.arn_hash == from_caller(JANE).arn_hash == hashing.keyed_hash(operator_identity.HASH_PURPOSE, JANE)
    # keyed: nobody without the hash key can test guesses against it
    assert jane.arn_hash != hashlib.sha256(JANE.encode()).hexdigest()
    assert jane.arn_hash != hashing.email_hash("jane.doe@example.com")


def test_a_local_run_names_the_os_user_and_no_account():
    identity = local("ada")

    assert (identity.account, identity.principal, identity.actor) == ("local", "local:ada", "operator")
    assert identity.arn_hash == hashing.keyed_hash(operator_identity.HASH_PURPOSE, "local:ada")
    assert local("").principal == "local:unknown"


def test_an_operator_running_a_machine_job_keeps_who_they_are():
    operator = from_caller(f"arn:aws:iam::{ACCOUNT}:user/alice")

    sweeping = operator.acting_as("retention-sweeper")

    assert actor_name(sweeping) == "retention-sweeper" and actor_name(operator) == "operator"
    assert sweeping.as_record() == operator.as_record()
    assert actor_name("dispatcher") == "dispatcher"


def test_an_audit_event_of_an_operator_records_who_and_a_machines_event_stays_as_it_was():
    operator = from_caller(JANE)

    by_operator = audit.event("REQ#dsr_x", action="legal_hold_placed", actor=operator)
    by_machine = audit.event("REQ#dsr_x", action="status_changed", actor="dispatcher")

    assert by_operator.actor == "operator"
    assert audit.operator_view(by_operator) == {
        "account": ACCOUNT,
        "principal": "role/Operator",
        "arn_hash": operator.arn_hash,
    }
    assert "jane" not in str(by_operator.serialize())
    assert by_machine.actor == "dispatcher" and by_machine.operator is None
    assert audit.operator_view(by_machine) is None


def test_the_label_is_one_short_line():
    identity = OperatorIdentity(account=ACCOUNT, principal="role/Operator", arn_hash="ab" * 32)

    assert identity.label == f"role/Operator @{ACCOUNT} #{'ab' * 6}"
