"""The end of a connector run (rightsdesk.connectors.execution), and what its request's owner does then.

`finish` seals the run's receipt and closes it, then hands the request back to whoever started it:
a run of the operator's own request completes that request (rightsdesk.own_data.own_requests:
rightsdesk's own data erased, the completion mail with the receipt's summary); a run a controller
asked for (the processor role) sends it `dsr.request.executed`. Both are idempotent, so a retried
finish message does them once: the run is found succeeded and the hand-back is made again.
"""

from __future__ import annotations

from rightsdesk.connectors import execution

RUN_GONE = "run_gone"  # the failure word when the run is no longer there to hand back


def finish(request_id: str, execution_id: str) -> execution.ExecutionView:
    item = execution.latest_item(request_id)
    if item is not None and item.execution_id == execution_id and item.status == execution.SUCCEEDED:
        view = execution.view(request_id)  # a retried finish: the run closed, its hand-back perhaps not
    else:
        view = execution.finish_step(request_id, execution_id)
        item = execution.latest_item(request_id)
    if view is None or item is None:
        # The run was there a moment ago (finish_step closed it): its request's records went
        # meanwhile (an erasure or retention). Nothing is left to hand back; the task fails clearly
        # rather than on an attribute of None (a check that must hold under `python -O` as well).
        raise execution.StepFailed(RUN_GONE)
    if item.initiated_by == "controller":
        from rightsdesk.outbound import executed_webhooks

        executed_webhooks.enqueue(request_id=request_id, execution_id=execution_id)
    else:
        from rightsdesk.own_data import own_requests

        own_requests.after_execution(request_id)
    return view
