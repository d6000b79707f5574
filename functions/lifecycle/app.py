"""LifecycleFunction: account lifecycles (rightsdesk.lifecycle).

Two triggers: the product's account events on the stack's bus (AccountEventBus: "Account Activity",
"Account Cancelled"), each recorded with at most one write per account per day; and the hourly
schedule, which runs the lifecycle: inactivity warnings, erasures of accounts past their deletion
threshold or cancelled, consent expiry. A scheduled event's `detail` may carry `dry_run` or
`max_items`. Nothing here logs an address or an account's ids: counts and outcomes only.
"""

from __future__ import annotations

import time

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from rightsdesk.lifecycle import events

logger = Logger()
metrics = Metrics()

# Leave room to record how far the run got before Lambda stops it.
SAFETY_MARGIN_SECONDS = 20


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    if events.is_account_event(event):
        outcome = events.handle(event)
        metrics.add_metric(
            name="AccountEventsRejected" if outcome == events.REJECTED else "AccountEventsReceived",
            unit=MetricUnit.Count,
            value=1,
        )
        logger.info("account event", extra={"detail_type": event.get("detail-type"), "outcome": outcome})
        return {"outcome": outcome}
    from rightsdesk.lifecycle import run  # the run's modules: not at an account event's cold start

    detail = (event or {}).get("detail") or {}
    max_items = detail.get("max_items")
    remaining = context.get_remaining_time_in_millis() / 1000
    report = run.run(
        dry_run=bool(detail.get("dry_run")),
        max_items=int(max_items) if max_items is not None else None,
        deadline=time.monotonic() + max(remaining - SAFETY_MARGIN_SECONDS, 1),
    )
    summary = report.as_dict()
    # Counts only: which accounts stays out of the logs.
    logger.info(
        "lifecycle run done",
        extra={k: v for k, v in summary.items() if k not in ("items", "held")} | {"held": len(report.held)},
    )
    metrics.add_metric(name="LifecycleItemsRead", unit=MetricUnit.Count, value=report.items_read)
    metrics.add_metric(name="LifecycleWarned", unit=MetricUnit.Count, value=report.counts["warned"])
    metrics.add_metric(name="LifecycleErasuresOpened", unit=MetricUnit.Count, value=report.counts["erasure_opened"])
    metrics.add_metric(name="LifecycleErrors", unit=MetricUnit.Count, value=report.counts["error"])
    return {k: v for k, v in summary.items() if k != "items"} | {"items": len(report.items)}
