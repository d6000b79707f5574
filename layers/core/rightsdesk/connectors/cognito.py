"""Cognito user pool connector: the user(s) with the subject's email, their attributes, their erasure.

Find lists users with `email = "<address>"` (ListUsers, paginated), as given and, when different,
in lower case (Cognito compares attribute values exactly). It yields `sub` as `cognito_sub` and
any configured attribute (`custom:user_id`, say) for the identity graph; two users for one
address yield two subs, and the run parks as ambiguous before anything is erased (base).

Erase (`erase_mode`): `delete` is AdminDeleteUser. `disable_and_scrub` disables the user, then
overwrites `email` with a placeholder that names no one (`erased-<keyed hash>@erased.invalid`,
unverified) and deletes the other `scrub_attributes` the user has (a pool's required attributes
other than email cannot be deleted; declare only attributes the pool lets go). Cognito has no
conditional writes, so each user is read again (AdminGetUser) right before it is touched and left
alone if its email is no longer the subject's. A pool whose user names are the addresses
themselves cannot be scrubbed (a user name cannot change): use `delete` there.

Rectify (definition `rectifiable`) sets the declared user attributes (AdminUpdateUserAttributes)
after the same re-read: only attributes whose value differs are written, so a second run writes
nothing; a user whose email is no longer the subject's is left alone.
"""

from __future__ import annotations

from typing import Any

from rightsdesk.connectors.base import (
    Check,
    Connector,
    ConnectorFailure,
    Erased,
    Found,
    Identities,
    Located,
    Rectified,
    checked,
    key_hash,
    probe_value,
)
from rightsdesk.connectors.definitions import CognitoDefinition
from rightsdesk.platform.hashing import keyed_hash, normalize_email

PLACEHOLDER_DOMAIN = "erased.invalid"  # RFC 2606: a domain that cannot receive mail
_KEEP_ON_SCRUB = frozenset({"sub", "email_verified", "phone_number_verified"})


def _attributes(user: dict[str, Any]) -> dict[str, str]:
    entries = user.get("Attributes", user.get("UserAttributes", []))
    return {entry["Name"]: entry.get("Value", "") for entry in entries}


class CognitoConnector(Connector):
    kind = "cognito"
    definition: CognitoDefinition

    def __init__(self, definition: CognitoDefinition, session: Any):
        super().__init__(definition, session)
        self.client = session.client("cognito-idp")

    @property
    def pool(self) -> str:
        return self.definition.user_pool_id

    def _located(self, user: dict[str, Any]) -> Located:
        created = user.get("UserCreateDate")
        data = {
            **_attributes(user),
            "username": user["Username"],
            "enabled": bool(user.get("Enabled", True)),
            "status": user.get("UserStatus"),
            "created": created.isoformat() if hasattr(created, "isoformat") else created,
        }
        return Located(key=f"{self.pool}/{user['Username']}", handle=user["Username"], data=data)

    def find(self, identities: Identities) -> Found:
        email = identities.get("email")
        if not email:
            return Found(self.id, dict(identities))
        if '"' in email or "\\" in email:
            raise ConnectorFailure("unsupported_identity_value")  # cannot be quoted in a ListUsers filter
        users: dict[str, dict[str, Any]] = {}
        for candidate in dict.fromkeys((email, email.lower())):
            paginator = self.client.get_paginator("list_users")
            for page in paginator.paginate(UserPoolId=self.pool, Filter=f'email = "{candidate}"'):
                for user in page.get("Users", []):
                    users[user["Username"]] = user
        return self._found(identities, [self._located(user) for user in users.values()])

    def export(self, found: Found) -> list[dict[str, Any]]:
        return [dict(record.data or {}) for record in found.records]

    def _current(self, username: str) -> dict[str, str] | None:
        try:
            return _attributes(self.client.admin_get_user(UserPoolId=self.pool, Username=username))
        except self.client.exceptions.UserNotFoundException:
            return None

    def erase(self, found: Found) -> Erased:
        email = normalize_email(found.identities.get("email", ""))
        erased = gone = changed = 0
        touched = []
        for record in found.records:
            username = str(record.handle)
            touched.append(key_hash(self.id, record.key))
            current = self._current(username)
            if current is None:
                gone += 1
                continue
            if normalize_email(current.get("email", "")) != email:
                # scrubbed by an earlier run, or the address changed hands: not this subject's now
                if current.get("email", "").endswith("@" + PLACEHOLDER_DOMAIN):
                    gone += 1
                else:
                    changed += 1
                continue
            if self.definition.erase_mode == "delete":
                try:
                    self.client.admin_delete_user(UserPoolId=self.pool, Username=username)
                except self.client.exceptions.UserNotFoundException:
                    gone += 1
                    continue
            else:
                self._scrub(username, current, record)
            erased += 1
        return Erased(erased=erased, already_gone=gone, changed_hands=changed, touched=tuple(touched))

    def rectify(self, found: Found, changes: Any) -> Rectified:
        email = normalize_email(found.identities.get("email", ""))
        rectified = unchanged = gone = changed = 0
        touched = []
        for record in found.records:
            username = str(record.handle)
            touched.append(key_hash(self.id, record.key))
            current = self._current(username)
            if current is None:
                gone += 1
                continue
            if normalize_email(current.get("email", "")) != email:
                changed += 1
                continue
            differing = [
                {"Name": name, "Value": str(value)} for name, value in changes.items() if current.get(name) != value
            ]
            if not differing:
                unchanged += 1
                continue
            try:
                self.client.admin_update_user_attributes(
                    UserPoolId=self.pool, Username=username, UserAttributes=differing
                )
            except self.client.exceptions.UserNotFoundException:
                gone += 1
                continue
            rectified += 1
        return Rectified(
            rectified=rectified, unchanged=unchanged, already_gone=gone, changed_hands=changed, touched=tuple(touched)
        )

    def _scrub(self, username: str, current: dict[str, str], record: Located) -> None:
        if normalize_email(username) == normalize_email(current.get("email", "")):
            raise ConnectorFailure("username_is_personal", key_hash=key_hash(self.id, record.key))
        self.client.admin_disable_user(UserPoolId=self.pool, Username=username)
        placeholder = f"erased-{keyed_hash('cognito_placeholder', record.key)[:24]}@{PLACEHOLDER_DOMAIN}"
        self.client.admin_update_user_attributes(
            UserPoolId=self.pool,
            Username=username,
            UserAttributes=[{"Name": "email", "Value": placeholder}, {"Name": "email_verified", "Value": "false"}],
        )
        doomed = [
            name
            for name in self.definition.scrub_attributes
            if name in current and name not in _KEEP_ON_SCRUB and name != "email"
        ]
        if doomed:
            self.client.admin_delete_user_attributes(UserPoolId=self.pool, Username=username, UserAttributeNames=doomed)

    def probe(self) -> list[Check]:
        """ListUsers for an address nobody has; AdminGetUser and the erase call on a user that
        does not exist (UserNotFoundException proves the permission)."""
        nobody = probe_value()
        missing = "UserNotFoundException"
        checks = [
            checked("cognito-idp:ListUsers", lambda: self.find({"email": f"{nobody}@{PLACEHOLDER_DOMAIN}"})),
            checked(
                "cognito-idp:AdminGetUser",
                lambda: self.client.admin_get_user(UserPoolId=self.pool, Username=nobody),
                missing,
            ),
        ]
        if self.definition.erase_mode == "delete":
            checks.append(
                checked(
                    "cognito-idp:AdminDeleteUser",
                    lambda: self.client.admin_delete_user(UserPoolId=self.pool, Username=nobody),
                    missing,
                )
            )
        else:
            checks.append(
                checked(
                    "cognito-idp:AdminDisableUser",
                    lambda: self.client.admin_disable_user(UserPoolId=self.pool, Username=nobody),
                    missing,
                )
            )
        if self.definition.rectifiable:
            attribute = next(iter(self.definition.rectifiable.values()))
            checks.append(
                checked(
                    "cognito-idp:AdminUpdateUserAttributes",
                    lambda: self.client.admin_update_user_attributes(
                        UserPoolId=self.pool, Username=nobody, UserAttributes=[{"Name": attribute, "Value": "probe"}]
                    ),
                    missing,
                )
            )
        return checks
