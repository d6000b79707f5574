"""Account lifecycles: activity, inactivity warnings and deletions, cancellations, consent expiry."""
