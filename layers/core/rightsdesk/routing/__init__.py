"""Routing: the controller registry, delivery to controllers (webhook, email, pull), payloads,
the controller API's request operations, deadline watch and takeover of an offboarded controller's requests."""


def __getattr__(name: str):
    # `routing.controller_forms` (the controller API's body models, pydantic) is imported when a
    # route's signature first names it, not when the API starts: PEP 562's lazy submodule. So is
    # `routing.delivery_log` by the controller API's delivery routes (their first call).
    if name in ("controller_forms", "delivery_log"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
