"""Retention in motion: the sweeper that applies the retention table, and legal holds."""
