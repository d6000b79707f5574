"""Routing: the controller registry, delivery to controllers (webhook, email, pull), payloads,
the controller API's request operations, deadline watch and takeover of an offboarded controller's requests."""
