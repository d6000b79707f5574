"""Intake: a subject's submission, its verification, status and cancellation; subjects and the abuse guard."""
