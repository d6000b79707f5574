"""Why the operator's own system opened an erasure (the lifecycle: rightsdesk.lifecycle), as
recorded on the request's seed, its audit cause and the annual report's counts, and which of them
start at once instead of waiting the erasure grace period.

A cancellation skips the grace period: the terms promise it is carried out within one business
day, and the owner asked for it. An inactivity erasure was announced by a warning weeks before and
a consent expiry by the policy; both keep the grace period, whose mail is the last chance to keep
the account.
"""

from __future__ import annotations

INACTIVITY = "inactivity"
CANCELLATION = "cancellation"
CONSENT_EXPIRY = "consent_expiry"
CAUSES = (INACTIVITY, CANCELLATION, CONSENT_EXPIRY)

WITHOUT_GRACE = frozenset({CANCELLATION})
