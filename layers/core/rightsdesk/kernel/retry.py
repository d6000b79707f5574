"""The step of a retry schedule: one rule for both queues (deliveries to controllers, mails).

Each queue keeps its own delays (rightsdesk.routing.delivery, rightsdesk.outbound.notify); how an
attempt number picks its delay is this one function.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RetrySchedule:
    """After the n-th failed receive the message comes back after delays_seconds[n-1]; the last
    step repeats until the queue's maxReceiveCount sends it to the dead-letter queue."""

    delays_seconds: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.delays_seconds or any(delay <= 0 for delay in self.delays_seconds):
            raise ValueError("a retry schedule needs at least one positive delay")

    def delay(self, attempt: int) -> int:
        """Seconds until the next try after failed attempt number `attempt` (1 = the first receive;
        anything lower counts as the first)."""
        return self.delays_seconds[min(max(attempt, 1), len(self.delays_seconds)) - 1]
