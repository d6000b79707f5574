"""What leaves the stack: the mail kinds and the notifier that sends them, and the dispatcher of
webhooks. It composes every domain, so it sits on top and nothing in the core imports it."""
