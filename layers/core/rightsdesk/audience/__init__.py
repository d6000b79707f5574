"""The operator's audience: contacts, consents, suppressions, unsubscribe and newsletters."""
