"""Connectors: carrying a request out where the data lives, and the signed receipts of what they did."""
