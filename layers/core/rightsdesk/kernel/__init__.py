"""The kernel: pure rules with no AWS and no storage. Time, errors, statuses, rights, deadlines,
retention periods, identifiers and free text. Everything else may import it; it imports nothing of ours."""
