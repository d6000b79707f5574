"""The operator's audience: contacts, consents, suppressions, unsubscribe and newsletters."""


def __getattr__(name: str):
    # `audience.forms` (the controller API's GPC signal body, a pydantic model) is imported when a
    # route's signature first names it, not when the API starts: PEP 562's lazy submodule.
    if name == "forms":
        import importlib

        return importlib.import_module(f"{__name__}.forms")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
