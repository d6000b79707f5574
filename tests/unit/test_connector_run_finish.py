"""The end of a connector run when the run is gone by then: a clear failure of the task, never an
`assert` (asserts vanish under `python -O`, and the hand-back would then fail on None)."""

from __future__ import annotations

import pytest

from rightsdesk.connectors import execution
from rightsdesk.outbound import connector_runs


@pytest.mark.parametrize("finished_view", [None, object()])
def test_a_run_gone_before_its_hand_back_fails_the_step_with_a_word(monkeypatch, finished_view):
    handed_back = []
    monkeypatch.setattr(execution, "latest_item", lambda request_id: None)  # the request's records went
    monkeypatch.setattr(execution, "finish_step", lambda request_id, execution_id: finished_view)
    monkeypatch.setattr(execution, "view", lambda request_id: finished_view)
    monkeypatch.setattr("rightsdesk.own_data.own_requests.after_execution", handed_back.append)

    with pytest.raises(execution.StepFailed) as failed:
        connector_runs.finish("dsr_gone", "exe_gone")

    assert failed.value.code == connector_runs.RUN_GONE == "run_gone"
    assert handed_back == []
