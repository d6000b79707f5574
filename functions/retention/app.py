"""RetentionFunction (every 10 minutes): the retention sweep. The rules are in rightsdesk.kernel.retention,
the sweep in rightsdesk.retention.sweeper.

A scheduled event's `detail` may carry `max_items` (stop after that many entries, as an operator's
brake) or `dry_run`. The sweep stops well before the Lambda timeout; the next run resumes.
"""

from __future__ import annotations

import time

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from rightsdesk.retention import sweeper

logger = Logger()
metrics = Metrics()

# Leave room to record how far the sweep got before Lambda stops it.
SAFETY_MARGIN_SECONDS = 20


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    detail = (event or {}).get("detail") or {}
    max_items = detail.get("max_items")
    remaining = context.get_remaining_time_in_millis() / 1000
    report = sweeper.sweep(
        dry_run=bool(detail.get("dry_run")),
        max_items=int(max_items) if max_items is not None else None,
        deadline=time.monotonic() + max(remaining - SAFETY_MARGIN_SECONDS, 1),
    )
    summary = report.as_dict()
    # Counts only: the item keys stay out of the logs.
    logger.info(
        "retention sweep done",
        extra={k: v for k, v in summary.items() if k not in ("items", "held")} | {"held": len(report.held)},
    )
    metrics.add_metric(name="SweepItemsRead", unit=MetricUnit.Count, value=report.items_read)
    metrics.add_metric(name="SweepDeleted", unit=MetricUnit.Count, value=report.total("deleted"))
    metrics.add_metric(name="SweepPurged", unit=MetricUnit.Count, value=report.total("purged"))
    metrics.add_metric(name="SweepSkippedHeld", unit=MetricUnit.Count, value=len(report.held))
    metrics.add_metric(name="SweepErrors", unit=MetricUnit.Count, value=report.total("error"))
    # Requests a pull controller never fetched, purged and marked undelivered: its alarm tells the operator.
    metrics.add_metric(name="PullRequestsUndelivered", unit=MetricUnit.Count, value=report.total("undelivered"))
    return summary
