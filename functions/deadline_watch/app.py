"""DeadlineWatchFunction (hourly): deadline notices to controllers, and re-routing of requests the
verification step could not queue. The rules are in rightsdesk.routing.deadline_watch."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from rightsdesk.notices import breach_watch
from rightsdesk.routing import deadline_watch

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    report = deadline_watch.run().as_dict()
    report["breaches"] = breach_watch.run().as_dict()  # operators warned of breach deadlines
    logger.info("deadline watch done", extra=report)
    for notice, count in report["notices"].items():
        metrics.add_metric(name=f"DeadlineNotice_{notice}", unit=MetricUnit.Count, value=count)
    metrics.add_metric(name="RequestsRerouted", unit=MetricUnit.Count, value=report["rerouted"])
    # Levels, not events: the OverdueRequests and BreachDeadlineAtRisk alarms watch their maximum.
    metrics.add_metric(name="OverdueRequests", unit=MetricUnit.Count, value=report["overdue"])
    metrics.add_metric(name="BreachDeadlineAtRisk", unit=MetricUnit.Count, value=report["breaches"]["at_risk"])
    return report
