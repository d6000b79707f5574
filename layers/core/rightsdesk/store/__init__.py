"""Storage of the single RightsTable: the items per aggregate, audit events, request lifecycle
transitions, the mail outbox, shared queries, erasure and limit counters."""
