"""Which request a stream record names (RequestItem.named_by): the one rule both stream consumers of
requests use (DeadlineWatchFunction's follow-up, OwnRequestsFunction). Only a request item names one."""

from __future__ import annotations

import pytest

from rightsdesk.store.items.requests import ChallengeItem, RequestItem


@pytest.mark.parametrize(
    ("keys", "named"),
    [
        ({"pk": "REQ#dsr_1a2b", "sk": "REQUEST"}, "dsr_1a2b"),
        ({"pk": "REQ#dsr_1a2b", "sk": ChallengeItem.SK}, None),  # the code of a request, not the request
        ({"pk": "REQ#dsr_1a2b", "sk": "AUDIT#2026-12-05T05:00:00Z#1"}, None),
        ({"pk": "CTL#ctl_1", "sk": "REQUEST"}, None),
        ({"pk": "REQ#dsr_1a2b"}, None),
        ({}, None),
    ],
)
def test_only_a_request_item_names_a_request(keys, named):
    assert RequestItem.named_by(keys) == named
