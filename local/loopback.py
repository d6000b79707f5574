"""Abuse limits for stacks whose every caller is 127.0.0.1: tests, the fuzz run, `make load`, `make run`.

The production defaults (template parameters Limit*; rightsdesk.store.limits) allow one source a few
dozen submissions a minute and one address three codes an hour. Every local caller shares one
source address and the test suites reuse addresses, so these stacks raise the limits with
`--parameter-overrides`, as a deployment would set them. A stack started without them has the
production defaults (tests/integration/test_abuse_limits.py proves they bite).

`python -m local.loopback` prints them as `Key=Value` words for the command line (the Makefile's
`run` uses it).
"""

from __future__ import annotations

GENEROUS = "100000"

LIMITS: dict[str, str] = {
    "LimitSubmissionsPerSourcePerMinute": GENEROUS,
    "LimitCodesPerAddressPerHour": GENEROUS,
    "LimitFailedCodesPerAddressPerHour": GENEROUS,
    "LimitFailedCodesPerSourcePerHour": GENEROUS,
    "LimitSubjectMailsPerRequestPerDay": GENEROUS,
}


def parameter_overrides() -> list[str]:
    """`--parameter-overrides` and its words, for a `python -m local` command line."""
    return ["--parameter-overrides", *(f"{key}={value}" for key, value in LIMITS.items())]


if __name__ == "__main__":
    print(" ".join(f"{key}={value}" for key, value in LIMITS.items()))
