"""What follows a verification once it is stored: the request routed to its controller, and the
subject's confirmation with the status link.

The table's stream is the verification's outbox. DeadlineWatchFunction reads the write that moves
a request from identity_unverified to verified (its `Verified` event source mapping) and queues both
from here; the subject's answer waits on neither, and a verification whose container died just
after its transaction loses neither. A record the mapping cannot hand on is retried, then its
coordinates go to a watched dead-letter queue; the hourly sweep (rightsdesk.routing.deadline_watch)
still re-routes any request left verified. Both messages are safe to repeat: the dispatcher keys a
route on the request (one delivery id, one webhook-id) and the notifier sends each mail id once.
"""

from __future__ import annotations

from rightsdesk.platform import overlap
from rightsdesk.store import outbox


def follow_up(request_id: str) -> None:
    """Queue the routing while queueing the confirmation."""
    overlap.both(lambda: outbox.enqueue_delivery(request_id=request_id, event="route"), lambda: confirm(request_id))


def confirm(request_id: str) -> None:
    """The confirmation with the status link: the notifier derives the token again when it sends
    it (rightsdesk.outbound.mail_kinds), so the token is in no queue message."""
    outbox.enqueue_mail("request_verified", request_id=request_id, mail_id=f"verified-{request_id}")
